"""Image routes: `/images/...`, pull and push included."""

from runtime import TYPE_CHECKING
from runtime.api.backend.images import ImageBackend
from runtime.api.registryauth import decode_registry_auth
from runtime.api.streams import JSONMessages, jsonline
from runtime.errors import BerthError, InvalidParameter

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional  # noqa: F401


def list_(req, v):
    """`GET /images/json?all=&filters=`."""
    return 200, req.backend.image_list(all_images=req.flag("all"), filters=req.filters())


def inspect(req, v):
    """`GET /images/{name}/json`."""
    return 200, req.backend.image_inspect(v["name"])


def history(req, v):
    """`GET /images/{name}/history`."""
    return 200, req.backend.image_history(v["name"])


def tag(req, v):
    """`POST /images/{name}/tag?repo=&tag=`: 201."""
    repo = req.arg("repo")
    if not repo:
        raise InvalidParameter("repository name must have at least one component: pass repo=")
    req.backend.image_tag(v["name"], repo, req.arg("tag") or None)
    return 201, b"", "text/plain; charset=utf-8"


def remove(req, v):
    """`DELETE /images/{name}?force=&noprune=`: [{"Untagged"}, {"Deleted"}]."""
    return 200, req.backend.image_remove(v["name"], force=req.flag("force"),
                                         prune=not req.flag("noprune"))


def load(req, v):
    """`POST /images/load?quiet=`: a JSON message stream ("Loaded image: busybox:latest"); an
    archive that cannot be loaded is an error message in that stream, under a 200, as dockerd
    answers (docker-py raises ImageLoadError from it, the docker CLI prints it and exits 1)."""
    try:
        loaded = req.backend.image_load(req.body)
    except BerthError as e:
        return 200, jsonline({"errorDetail": {"message": str(e)}, "error": str(e)}), "application/json"
    lines = []
    for ref in loaded:
        kind = "Loaded image ID: " if ref.startswith("sha256:") else "Loaded image: "
        lines.append(jsonline({"stream": kind + ref + "\n"}))
    return 200, b"".join(lines), "application/json"


def save(req, v):
    """`GET /images/get?names=` and `GET /images/{name}/get`: a docker-save tar."""
    refs = [v["name"]] if "name" in v else req.args("names")
    if not refs:
        raise InvalidParameter("no images to save: pass names=")
    for ref in refs:
        req.backend.image_inspect(ref)  # NotFound before the headers go out
    out = req.start(200, "application/x-tar")
    req.backend.image_save(refs, out)
    out.close()
    return None


def create(req, v):
    """`POST /images/create`: pull (`fromImage=`) or import (`fromSrc=-`)."""
    if req.arg("fromImage"):
        auth = decode_registry_auth(req.headers.get("X-Registry-Auth"))
        req.free_slot()  # a pull waits on the registry (max-concurrent-downloads bounds it)
        progress = JSONMessages(req)
        progress.run(req.backend.image_pull, req.arg("fromImage"), tag=req.arg("tag") or None,
                     auth=auth, platform=req.arg("platform") or None)
        progress.finish()
        return None
    src = req.arg("fromSrc")
    if src is None:
        raise InvalidParameter("fromImage or fromSrc is required")
    if src != "-":
        raise InvalidParameter("importing from a URL is not supported: send the tar as the body (fromSrc=-)")
    repo, tag_ = req.arg("repo") or None, req.arg("tag") or None
    if repo and not tag_ and repo.rfind(":") > repo.rfind("/"):  # docker sends repo=name:tag
        repo, tag_ = repo[:repo.rfind(":")], repo[repo.rfind(":") + 1:]
    image_id = req.backend.image_import(req.body, repo=repo, tag=tag_, changes=req.args("changes") or None,
                                        message=req.arg("message") or None)
    return 200, jsonline({"status": image_id}), "application/json"


def push(req, v):
    """`POST /images/{name}/push?tag=`: a JSON message stream."""
    auth = decode_registry_auth(req.headers.get("X-Registry-Auth"))
    req.free_slot()  # a push waits on the registry (max-concurrent-uploads bounds it)
    progress = JSONMessages(req)
    progress.run(req.backend.image_push, v["name"], tag=req.arg("tag") or None, auth=auth)
    progress.finish()
    return None


def prune(req, v):
    """`POST /images/prune?filters=`."""
    return 200, req.backend.image_prune(filters=req.filters())


BACKEND = ImageBackend
ROUTES = [
    ("GET", "/images/json", list_),
    ("POST", "/images/prune", prune),
    ("POST", "/images/create", create),
    ("POST", "/images/load", load),
    ("GET", "/images/get", save),
    ("GET", "/images/{name:.*}/json", inspect),
    ("GET", "/images/{name:.*}/history", history),
    ("GET", "/images/{name:.*}/get", save),
    ("POST", "/images/{name:.*}/tag", tag),
    ("POST", "/images/{name:.*}/push", push),
    ("DELETE", "/images/{name:.*}", remove),
]
