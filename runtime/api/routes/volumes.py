"""Volume routes: `/volumes/...`."""

from runtime.api import bodycheck
from runtime.api.backend.volumes import VolumeBackend


def list_(req, v):
    """`GET /volumes?filters=`: {"Volumes": [...], "Warnings": []}."""
    return 200, {"Volumes": req.backend.volume_list(filters=req.filters()), "Warnings": []}


def create(req, v):
    """`POST /volumes/create` {"Name", "Driver", "DriverOpts", "Labels"}: 201 Volume."""
    body = bodycheck.check(req.json_object("volume config"), bodycheck.VOLUME_CREATE, "CreateOptions")
    return 201, req.backend.volume_create(name=body.get("Name") or None, driver=body.get("Driver") or "local",
                                          driver_opts=body.get("DriverOpts") or None,
                                          labels=body.get("Labels") or None)


def inspect(req, v):
    """`GET /volumes/{name}`."""
    return 200, req.backend.volume_inspect(v["name"])


def remove(req, v):
    """`DELETE /volumes/{name}?force=`: 409 while in use."""
    req.backend.volume_remove(v["name"], force=req.flag("force"))
    return 204, None


def prune(req, v):
    """`POST /volumes/prune?filters=`."""
    return 200, req.backend.volume_prune(filters=req.filters())


BACKEND = VolumeBackend
ROUTES = [
    ("GET", "/volumes", list_),
    ("POST", "/volumes/create", create),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]
