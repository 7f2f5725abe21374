"""Container routes: `/containers/...` and `/commit` (moby's container router, as a table)."""

import base64
import json

from runtime.api import admission, bodycheck
from runtime.api.backend.containers import ContainerBackend
from runtime.api.streams import DEFAULT_DETACH_KEYS, detach_keys, pump
from runtime.framing import frame
from runtime.errors import BerthError, InvalidParameter, NotFound

RAW = "application/vnd.docker.raw-stream"
MUX = "application/vnd.docker.multiplexed-stream"


def stat_header(info):
    # type: (dict) -> str
    """X-Docker-Container-Path-Stat: base64 of the ContainerPathStat JSON."""
    return base64.b64encode(json.dumps(info).encode()).decode()


def has_tty(req, name):
    """Whether the container was created with a TTY (raw streams) or not (framed streams)."""
    return bool((req.backend.container_inspect(name).get("Config") or {}).get("Tty"))


def stream_type(req, tty):
    """The Content-Type of an attach or logs stream."""
    return RAW if tty or req.version < (1, 42) else MUX


def create(req, v):
    """`POST /containers/create?name=`: 201 {"Id", "Warnings"}."""
    config = bodycheck.check(req.json_object("container config"), bodycheck.CONTAINER_CONFIG,
                             "CreateRequest")
    result = req.backend.container_create(config, name=req.arg("name") or None)
    if (config.get("HostConfig") or {}).get("AutoRemove") and req.client_gone():
        # nobody has its id, and a --rm container is not meant to outlive its run: it goes
        # rather than stay created (dockerd leaves it created)
        req.backend.container_remove(result["Id"], force=True)
        raise admission.ClientGone()
    result.setdefault("Warnings", [])
    if result["Warnings"] is None:
        result["Warnings"] = []
    return 201, result


def list_(req, v):
    """`GET /containers/json?all=&limit=&filters=`."""
    limit = req.int_arg("limit", -1)
    return 200, req.backend.container_list(all=req.flag("all"), filters=req.filters(),
                                            limit=-1 if limit is None or limit <= 0 else limit,
                                            encoded=True)


def inspect(req, v):
    """`GET /containers/{name}/json` (with the fields clients index without checking, e.g.
    docker-py's HostConfig.LogConfig.Type, defaulted)."""
    doc = req.backend.container_inspect(v["name"])
    host = doc.setdefault("HostConfig", {}) if isinstance(doc.get("HostConfig", {}), dict) else {}
    log_config = host.get("LogConfig") or {}
    log_config.setdefault("Type", "json-file")
    log_config.setdefault("Config", {})
    host["LogConfig"] = log_config
    return 200, doc


def start(req, v):
    """`POST /containers/{name}/start`: 204, or 304 when already running."""
    req.backend.container_start(v["name"])
    return 204, None


def stop(req, v):
    """`POST /containers/{name}/stop?t=&signal=`: 204, or 304 when not running."""
    timeout = req.int_arg("t", req.int_arg("timeout"))
    req.free_slot()  # a stop waits for the exit (up to t seconds)
    req.backend.container_stop(v["name"], timeout=timeout, signal=req.arg("signal") or None)
    return 204, None


def kill(req, v):
    """`POST /containers/{name}/kill?signal=`."""
    req.free_slot()  # a SIGKILL waits for the exit
    req.backend.container_kill(v["name"], signal=req.arg("signal") or "SIGKILL")
    return 204, None


def restart(req, v):
    """`POST /containers/{name}/restart?t=&signal=`."""
    req.free_slot()  # its stop waits for the exit (up to t seconds)
    req.backend.container_restart(v["name"], timeout=req.int_arg("t", req.int_arg("timeout")),
                                  signal=req.arg("signal") or None)
    return 204, None


def pause(req, v):
    """`POST /containers/{name}/pause`."""
    req.backend.container_pause(v["name"])
    return 204, None


def unpause(req, v):
    """`POST /containers/{name}/unpause`."""
    req.backend.container_unpause(v["name"])
    return 204, None


def update(req, v):
    """`POST /containers/{name}/update`: 200 {"Warnings"}."""
    body = bodycheck.check(req.json_object("update config"), bodycheck.UPDATE_CONFIG, "UpdateConfig")
    return 200, req.backend.container_update(v["name"], body)


def stats(req, v):
    """`GET /containers/{name}/stats?stream=&one-shot=`: one JSON object a second, or one."""
    stream = req.flag("stream", True)
    items = req.backend.container_stats(v["name"], stream=stream, one_shot=req.flag("one-shot"))
    if not stream:
        return 200, next(items)
    req.free_slot()  # one object a second for as long as the client reads
    out = req.start(200, "application/json")
    try:
        for item in items:
            out.write(json.dumps(item).encode() + b"\n")
        out.close()
    finally:
        items.close()
    return None


def top(req, v):
    """`GET /containers/{name}/top?ps_args=`."""
    return 200, req.backend.container_top(v["name"], req.arg("ps_args") or "-ef")


def remove(req, v):
    """`DELETE /containers/{name}?force=&v=`: 409 when running and not forced."""
    req.backend.container_remove(v["name"], force=req.flag("force"), volumes=req.flag("v"))
    return 204, None


def remove_link(req, v):
    """`DELETE /containers/{name}/{alias}?link=1` (`rm --link /web/db`): the legacy link `alias`
    of container `name` goes; a running container keeps what its start wrote, as in dockerd."""
    if not req.flag("link"):
        raise NotFound("No such container: %s/%s" % (v["name"], v["alias"]))
    req.backend.container_remove_link(v["name"], v["alias"])
    return 204, None


def wait(req, v):
    """`POST /containers/{name}/wait?condition=`: the 200 headers go out at once (the waiter is
    registered first), the body {"StatusCode", "Error"} when the condition holds."""
    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidParameter("invalid condition: %r (not-running, next-exit or removed)" % condition)
    waiter = req.backend.container_wait_begin(v["name"], condition)
    req.free_slot()  # it waits for the container
    out = req.start(200, "application/json")
    try:
        result = dict(waiter())
    except BerthError as exc:
        result = {"StatusCode": -1, "Error": {"Message": str(exc)}}
    if result.get("Error") is None:
        result.pop("Error", None)
    out.write(json.dumps(result).encode() + b"\n")
    out.close()
    return None


def logs(req, v):
    """`GET /containers/{name}/logs`: framed unless the container has a TTY; follows when asked."""
    name = v["name"]
    tty = has_tty(req, name)

    def seconds(key):
        text = req.arg(key) or "0"
        try:
            return float(text)
        except ValueError:
            raise InvalidParameter(
                "invalid value for %s: %r (a unix time is expected)" % (key, text)) from None

    stdout, stderr = req.flag("stdout"), req.flag("stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    lines = req.backend.container_logs(
        name, stdout=stdout, stderr=stderr, follow=req.flag("follow"), since=seconds("since"),
        until=seconds("until"), tail=req.arg("tail") or "all", timestamps=req.flag("timestamps"))
    if req.flag("follow"):
        req.free_slot()  # it waits for the container's output
    out = req.start(200, stream_type(req, tty))
    try:
        for stream, line in lines:
            out.write(line if tty else frame(stream, line))
        out.close()
    finally:
        close = getattr(lines, "close", None)
        if close:
            close()
    return None


def attach(req, v):
    """`POST /containers/{name}/attach?detachKeys=`: hijack the connection onto the container's
    stdio (a container not started yet is attached from its first output on); the detach keys
    (default ctrl-p,ctrl-q) on stdin end the session, the container keeps running."""
    name = v["name"]
    tty = has_tty(req, name)
    stdin = req.flag("stdin")
    keys = detach_keys(req.arg("detachKeys") or DEFAULT_DETACH_KEYS) if stdin else None
    peer = req.backend.container_attach(name, stdin=stdin, stdout=req.flag("stdout"),
                                        stderr=req.flag("stderr"), logs=req.flag("logs"),
                                        stream=req.flag("stream"))
    req.hijack(stream_type(req, tty))
    pump(req.http.connection, req.http.rfile, peer, stdin=stdin, keys=keys)
    return None


def resize(req, v):
    """`POST /containers/{name}/resize?h=&w=`."""
    req.backend.container_resize(v["name"], req.int_arg("h", 0), req.int_arg("w", 0))
    return 200, b"", "text/plain; charset=utf-8"


def prune(req, v):
    """`POST /containers/prune?filters=`."""
    return 200, req.backend.container_prune(filters=req.filters())


def rename(req, v):
    """`POST /containers/{name}/rename?name=`: 204."""
    req.backend.container_rename(v["name"], req.arg("name") or "")
    return 204, None


def changes(req, v):
    """`GET /containers/{name}/changes`: [{"Path", "Kind"}] (null when nothing changed)."""
    return 200, req.backend.container_changes(v["name"]) or None


def export(req, v):
    """`GET /containers/{name}/export`: the root filesystem as a tar."""
    write = req.backend.container_export(v["name"])
    out = req.start(200, "application/x-tar")
    write(out)
    out.close()
    return None


STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path(req):
    # type: (object) -> str
    path = req.arg("path")
    if not path:
        raise InvalidParameter("path is required: pass path=")
    return path


def archive_head(req, v):
    """`HEAD /containers/{name}/archive?path=`: the stat header only."""
    info = req.backend.container_archive_stat(v["name"], _path(req))
    req.start(200, "application/json", chunked=False,
              extra={STAT_HEADER: stat_header(info), "Content-Length": "0"})
    return None


def archive_get(req, v):
    """`GET /containers/{name}/archive?path=`: the tar of path, its stat in the header."""
    info, write = req.backend.container_archive_get(v["name"], _path(req))
    out = req.start(200, "application/x-tar", extra={STAT_HEADER: stat_header(info)})
    write(out)
    out.close()
    return None


def archive_put(req, v):
    """`PUT /containers/{name}/archive?path=&noOverwriteDirNonDir=`: extract the body's tar."""
    req.backend.container_archive_put(v["name"], _path(req), req.body,
                                      no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"))
    return 200, None


def commit(req, v):
    """`POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: 201 {"Id"}."""
    container = req.arg("container")
    if not container:
        raise InvalidParameter("container is required: pass container=")
    config = req.json_object("container config")
    image_id = req.backend.image_commit(
        container, repo=req.arg("repo") or None, tag=req.arg("tag") or None,
        changes=req.args("changes") or None, message=req.arg("comment") or None,
        author=req.arg("author") or None, config=config or None, pause=req.flag("pause", True))
    return 201, {"Id": image_id}


BACKEND = ContainerBackend
ROUTES = [
    ("GET", "/containers/json", list_),
    ("POST", "/containers/prune", prune),
    ("POST", "/containers/create", create),
    ("GET", "/containers/{name}/json", inspect),
    ("GET", "/containers/{name}/logs", logs),
    ("POST", "/containers/{name}/start", start),
    ("POST", "/containers/{name}/stop", stop),
    ("POST", "/containers/{name}/kill", kill),
    ("POST", "/containers/{name}/restart", restart),
    ("POST", "/containers/{name}/pause", pause),
    ("POST", "/containers/{name}/unpause", unpause),
    ("POST", "/containers/{name}/update", update),
    ("GET", "/containers/{name}/stats", stats),
    ("GET", "/containers/{name}/top", top),
    ("POST", "/containers/{name}/wait", wait),
    ("POST", "/containers/{name}/attach", attach),
    ("POST", "/containers/{name}/resize", resize),
    ("POST", "/containers/{name}/rename", rename),
    ("GET", "/containers/{name}/changes", changes),
    ("GET", "/containers/{name}/export", export),
    ("HEAD", "/containers/{name}/archive", archive_head),
    ("GET", "/containers/{name}/archive", archive_get),
    ("PUT", "/containers/{name}/archive", archive_put),
    ("DELETE", "/containers/{name}", remove),
    ("DELETE", "/containers/{name}/{alias}", remove_link),
    ("POST", "/commit", commit),
]
