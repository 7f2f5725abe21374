"""`POST /build`: Docker's classic builder API (the context tar as the body, the options as
query parameters, a JSON message stream back)."""

import base64
import json

from runtime.api.backend.build import BuildBackend
from runtime.api.streams import JSONMessages
from runtime.errors import InvalidParameter

_LIMITS = (("shmsize", "ShmSize"), ("memory", "Memory"), ("memswap", "MemorySwap"),
           ("cpushares", "CpuShares"), ("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota"))


def _json_arg(req, name, kind, default):
    raw = req.arg(name)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParameter("invalid %s: %r is not JSON" % (name, raw)) from None
    if not isinstance(value, kind):
        raise InvalidParameter("invalid %s: a JSON %s is expected" % (name, kind.__name__))
    return value


def _first(req, name):
    # type: (object, str) -> str
    values = req.args(name)
    return values[0] if values else ""


def _registry_config(header):
    # type: (str) -> dict
    """X-Registry-Config: base64url JSON {registry: {username, password, ...}}."""
    if not header:
        return {}
    try:
        data = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        value = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("X-Registry-Config is not base64 JSON") from None
    return value if isinstance(value, dict) else {}


def options(req):
    # type: (object) -> dict
    """The build options from the query (Docker's parameter names). A repeated parameter
    counts by its first value, as Go's FormValue (docker-py sends `dockerfile` twice for a
    Dockerfile outside the context: its name in the tar, then its text)."""
    if req.arg("remote"):
        raise InvalidParameter("building from a remote context (%s) is not supported: send the "
                               "context as a tar body" % req.arg("remote"))
    if req.arg("version") == "2":
        raise InvalidParameter("BuildKit (version=2) is not supported: berth's builder is the "
                               "classic one; set DOCKER_BUILDKIT=0")
    buildargs = _json_arg(req, "buildargs", dict, {})
    host_config = {}
    for name, key in _LIMITS:
        value = req.int_arg(name, 0)
        if value:
            host_config[key] = value
    if req.arg("cpusetcpus"):
        host_config["CpusetCpus"] = req.arg("cpusetcpus")
    if req.arg("ulimits") and _json_arg(req, "ulimits", list, []):
        raise InvalidParameter("build ulimits are not supported")
    hosts = []
    for h in req.args("extrahosts"):
        hosts += [x for x in h.replace(",", " ").split() if x]
    return dict(
        dockerfile=_first(req, "dockerfile") or "Dockerfile", tags=[t for t in req.args("t") if t],
        buildargs={k: v for k, v in buildargs.items() if v is not None},
        labels=_json_arg(req, "labels", dict, {}), target=req.arg("target") or "",
        nocache=req.flag("nocache"), pull=req.flag("pull"), rm=req.flag("rm", True),
        forcerm=req.flag("forcerm"), quiet=req.flag("q"),
        cachefrom=_json_arg(req, "cachefrom", list, []), networkmode=req.arg("networkmode") or "",
        platform=req.arg("platform") or "", extrahosts=hosts, host_config=host_config,
        auth=_registry_config(req.headers.get("X-Registry-Config")))


def build(req, v):
    """`POST /build`: a JSON message stream ({"stream"}, {"aux": {"ID"}}, {"errorDetail"})."""
    opts = options(req)
    req.free_slot()  # a build waits on its steps' containers for minutes
    progress = JSONMessages(req)
    progress.run(lambda progress: req.backend.image_build(req.body, opts, progress))
    progress.finish()
    return None


def prune(req, v):
    """`POST /build/prune?all=&filters=`: the step cache forgotten (the images it pointed at stay:
    `image prune` removes the dangling ones). keep-storage and its kin are refused: the cache
    holds no layers of its own to keep."""
    for name in ("keep-storage", "reserved-space", "max-used-space", "min-free-space"):
        if req.int_arg(name, 0):
            raise InvalidParameter("%s is not supported: berthd's build cache holds no layers of its own "
                                   "(its images are pruned by image prune)" % name)
    return 200, req.backend.build_prune(filters=req.filters())


ROUTES = [
    ("POST", "/build", build),
    ("POST", "/build/prune", prune),
]
BACKEND = BuildBackend
