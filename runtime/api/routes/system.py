"""System routes: `/_ping`, `/version`, `/info`, `/auth`, `/berth/check`, `/events`."""

import json
import os
import sys
import time

from runtime import TYPE_CHECKING, __version__
from runtime.api.backend.system import SystemBackend
from runtime.api.version import API_VERSION, MIN_API_VERSION
from runtime.goarch import goarch

if TYPE_CHECKING:
    from typing import Any, Dict, Optional  # noqa: F401

def _build_time():
    # type: () -> str
    """When this engine was built: its files' mtime (0 when run straight from a zipapp,
    where __file__ is inside the archive and has no mtime of its own)."""
    try:
        mtime = os.path.getmtime(__file__)
    except OSError:
        mtime = 0
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00", time.gmtime(mtime))


_BUILD_TIME = _build_time()


def ping(req, v):
    """`GET|HEAD /_ping`: "OK" plus the negotiation headers."""
    h = req.http
    h.send_response(200)
    h.send_header("Content-Type", "text/plain; charset=utf-8")
    h.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
    h.send_header("Pragma", "no-cache")
    h.send_header("Content-Length", "2" if req.method == "GET" else "0")
    h.end_headers()
    if req.method == "GET":
        h.wfile.write(b"OK")
    return None


def version(req, v):
    """`GET /version`."""
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth",
        "GoVersion": "python" + "%d.%d.%d" % sys.version_info[:3],
        "Os": "linux",
        "Arch": goarch(),
        "KernelVersion": os.uname().release,
        "BuildTime": _BUILD_TIME,
    }
    body = {"Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": dict(details)}],
            "Version": __version__}
    body.update(details)
    return 200, body


def info(req, v):
    """`GET /info`: the engine's SystemInfo."""
    return 200, req.backend.system_info()


def df(req, v):
    """`GET /system/df`."""
    return 200, req.backend.system_df()


def auth(req, v):
    """`POST /auth`: check registry credentials."""
    body = req.json_object("auth request")
    creds = {k.lower(): v for k, v in body.items() if v}
    return 200, req.backend.registry_auth(creds)


def check(req, v):
    """`GET /berth/check[?quick=1]`: the data root's checker, read-only (berth's own route)."""
    return 200, req.backend.system_check(quick=req.flag("quick"))


def events_(req, v):
    """`GET /events?since=&until=&filters=`: one JSON message per event, streamed (flushed as
    each happens); ends at `until`, or when the client goes."""
    from runtime import events
    stream = req.backend.system_events(events.parse_time(req.arg("since"), "since"),
                                       events.parse_time(req.arg("until"), "until"), req.filters())
    req.free_slot()  # it waits for events until `until` or the client goes
    out = req.start(200, "application/json")
    try:
        for ev in stream:
            out.write(json.dumps(ev).encode() + b"\n")
        out.close()
    finally:
        stream.close()
    return None



BACKEND = SystemBackend
ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/system/df", df),
    ("POST", "/auth", auth),
    ("GET", "/berth/check", check),
    ("GET", "/events", events_),
]
