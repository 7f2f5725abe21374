"""Log drivers as dockerd offers them: `json-file` (the default), `local` (dockerd's compact
format, rotated and compressed by default) and `none`. Which driver and options a container
gets (HostConfig.LogConfig merged with daemon.json's `log-driver`/`log-opts`), checked at
create, and where its files are. The monitor writes them (runtime/container/proc/logfile.py);
runtime/container/logs.py reads them."""

import os

from runtime.units import parse_bytes

DRIVERS = ("json-file", "local", "none")
_OPTS = {
    "json-file": ("max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"),
    "local": ("max-size", "max-file", "compress"),
    "none": (),
}
# dockerd's local driver: 20 MB x 5 files, rotated files gzipped
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5", "compress": "true"}


def resolve(log_config, default_driver="json-file", default_opts=None):
    # type: (dict, str, dict) -> dict
    """HostConfig.LogConfig as stored: the daemon's driver when none is given, the daemon's
    log-opts under the container's own when the drivers are the same (dockerd's merge).
    ValueError, one line, for a driver we do not have or an option the driver does not take."""
    log_config = dict(log_config or {})
    driver = log_config.get("Type") or default_driver or "json-file"
    opts = dict(log_config.get("Config") or {})
    if driver == (default_driver or "json-file"):
        for k, v in (default_opts or {}).items():
            opts.setdefault(k, v)
    if driver not in DRIVERS:
        raise ValueError("logger: no log driver named %r is registered" % driver)  # dockerd's words
    for k in sorted(opts):
        if k not in _OPTS[driver]:
            raise ValueError("unknown log opt %r for the %s log driver" % (k, driver))
    settings({"Type": driver, "Config": opts})  # the values
    return {"Type": driver, "Config": opts}


def settings(log_config):
    # type: (dict) -> dict
    """{"driver", "max_size" (0: no limit), "max_file", "compress"} of a stored LogConfig;
    ValueError for a bad value. max-file without max-size is taken, as dockerd takes it: one
    file that is never rotated."""
    driver = log_config.get("Type") or "json-file"
    opts = dict(_LOCAL_DEFAULTS) if driver == "local" else {}
    opts.update(log_config.get("Config") or {})
    size = 0
    if opts.get("max-size") not in (None, "", "-1"):
        try:
            size = parse_bytes(opts["max-size"])
        except ValueError:
            raise ValueError("invalid log opt max-size %r: use a size such as 10m"
                             % opts["max-size"]) from None
        if size <= 0:
            raise ValueError("invalid log opt max-size %r: it must be positive" % opts["max-size"])
    try:
        files = int(opts.get("max-file") or 1)
    except ValueError:
        raise ValueError("invalid log opt max-file %r: use a number of files" % opts["max-file"]) from None
    if files < 1:
        raise ValueError("invalid log opt max-file %r: it cannot be less than 1" % opts["max-file"])
    compress = str(opts.get("compress") or "false").lower()
    if compress not in ("true", "false", "1", "0"):
        raise ValueError("invalid log opt compress %r: use true or false" % opts["compress"])
    compress = compress in ("true", "1")
    if compress and not size:
        raise ValueError("log opt compress needs max-size: rotated files are what is compressed")
    return {"driver": driver, "max_size": size, "max_file": files, "compress": compress}


def path(container_dir, cid, driver):
    # type: (str, str, str) -> str
    """The current log file of a container ("" for none)."""
    if driver == "none":
        return ""
    if driver == "local":
        return os.path.join(container_dir, "local-logs", "container.log")
    return os.path.join(container_dir, cid + "-json.log")
