"""Exec routes: `/containers/{name}/exec` and `/exec/{id}/...`."""

from runtime.api import bodycheck
from runtime.api.backend.containers import ContainerBackend
from runtime.api.routes.containers import stream_type
from runtime.api.streams import DEFAULT_DETACH_KEYS, detach_keys, pump
from runtime.errors import ExecFailed, InvalidParameter
from runtime.framing import STDOUT, frame


def create(req, v):
    """`POST /containers/{name}/exec` (ExecConfig): 201 {"Id"}."""
    config = bodycheck.check(req.json_object("exec config"), bodycheck.EXEC_CONFIG, "ExecConfig")
    if not config.get("Cmd"):
        raise InvalidParameter("No exec command specified")
    if "detachKeys" in config and "DetachKeys" not in config:  # Go's decoder ignores case
        config["DetachKeys"] = config.pop("detachKeys")      # (docker-py sends this spelling)
    if config.get("DetachKeys"):
        detach_keys(config["DetachKeys"])  # a bad spec is a 400 now, not at start
    return 201, {"Id": req.backend.exec_create(v["name"], config)}


def start(req, v):
    """`POST /exec/{id}/start` {"Detach", "Tty"}: hijacked unless detached; the exec's
    DetachKeys (default ctrl-p,ctrl-q) on its stdin end the session."""
    body = req.json_object("exec start config")
    detach = bool(body.get("Detach"))
    tty = bool(body.get("Tty"))
    try:
        peer = req.backend.exec_start(v["id"], detach=detach, tty=tty)
    except ExecFailed as e:
        if detach:
            raise
        # dockerd answers the start and writes the error on the stream's stdout; the exit
        # code (126/127) is the exec's, for the client's inspect
        req.hijack(stream_type(req, tty))
        text = (str(e) + "\r\n").encode()
        try:
            req.http.connection.sendall(text if tty else frame(STDOUT, text))
        except OSError:
            pass
        return None
    if detach or peer is None:
        return 200, b"", "text/plain; charset=utf-8"
    info = req.backend.exec_inspect(v["id"])
    keys = detach_keys(info.get("DetachKeys") or DEFAULT_DETACH_KEYS) if info.get("OpenStdin") else None
    req.hijack(stream_type(req, tty))
    pump(req.http.connection, req.http.rfile, peer, stdin=True, keys=keys)
    return None


def inspect(req, v):
    """`GET /exec/{id}/json`."""
    return 200, req.backend.exec_inspect(v["id"])


def resize(req, v):
    """`POST /exec/{id}/resize?h=&w=`."""
    req.backend.exec_resize(v["id"], req.int_arg("h", 0), req.int_arg("w", 0))
    return 200, b"", "text/plain; charset=utf-8"


BACKEND = ContainerBackend
ROUTES = [
    ("POST", "/containers/{name}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("GET", "/exec/{id}/json", inspect),
    ("POST", "/exec/{id}/resize", resize),
]
