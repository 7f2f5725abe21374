"""The `run`/`create` flags for the container's process, namespaces, limits and mounts
(docker's syntax), turned into HostConfig and Config fields. The network, restart, health,
security and device flags live beside `run` itself."""

from runtime.cli.client import getenv

if False:  # for the type comments only: importing typing (and re, functools,
    # collections with it) is 4-12 ms of every `berth run`, the CLI's hot path
    from typing import Any, Dict, List  # noqa: F401


class FlagError(Exception):
    """A flag value berth cannot use (the message names the flag and what to write)."""


def add_flags(p):
    """Declare the flags on a run/create parser."""
    for flag, helptext in (("--ulimit", "NAME=SOFT[:HARD], e.g. nofile=1024:2048"),
                           ("--sysctl", "NAME=VALUE (namespaced sysctls only)"),
                           ("--mount", "type=bind|volume|tmpfs,source=...,target=...[,readonly]"),
                           ("--tmpfs", "PATH[:OPTIONS], e.g. /run:size=64m"),
                           ("--cap-add", "add a Linux capability"), ("--cap-drop", "drop a Linux capability"),
                           ("--label-file", "read labels from a file of KEY=VALUE lines"),
                           ("--env-file", "read environment variables from a file of KEY=VALUE lines"),
                           ("--group-add", "an extra group (name or GID)"),
                           ("--volumes-from", "CONTAINER[:ro|rw]: mount another container's volumes"),
                           ("--device-read-bps", "DEVICE:RATE, e.g. /dev/sda:1mb"),
                           ("--device-write-bps", "DEVICE:RATE"), ("--device-read-iops", "DEVICE:N"),
                           ("--device-write-iops", "DEVICE:N")):
        p.add_argument(flag, action="append", default=[], help=helptext)
    p.add_argument("--init", action="store_true", help="run a reaping init as PID 1 that forwards signals")
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument("--oom-kill-disable", action="store_true", help="disable the OOM killer")
    for flag, helptext in (("--pid", "PID namespace: host or container:NAME"),
                           ("--ipc", "IPC namespace: private, shareable, host or container:NAME"),
                           ("--uts", "UTS namespace: host"),
                           ("--cgroupns", "cgroup namespace: host or private"),
                           ("--userns", "user namespace: host (opts out of the daemon's userns-remap)"),
                           ("--cgroup-parent", "parent cgroup of the container"),
                           ("--cpuset-cpus", "CPUs to run on, e.g. 0-1 or 0,2"),
                           ("--cpuset-mems", "memory nodes to use, e.g. 0"),
                           ("--memory-reservation", "memory soft limit, e.g. 32m"),
                           ("--memory-swap", "memory plus swap limit (-1: unlimited swap)"),
                           ("--shm-size", "size of /dev/shm, e.g. 128m"),
                           ("--stop-signal", "signal that stops the container (default SIGTERM)")):
        p.add_argument(flag, help=helptext)
    for flag, helptext in (("--oom-score-adj", "OOM score adjustment (-1000 to 1000)"),
                           ("--memory-swappiness", "memory swappiness (0 to 100)"),
                           ("--cpu-shares", "relative CPU weight"),
                           ("--blkio-weight", "block IO weight (10 to 1000)"),
                           ("--stop-timeout", "seconds to wait for the stop signal before SIGKILL")):
        p.add_argument(flag, type=int, help=helptext)


def _kv_file(path, flag):
    # type: (str, str) -> List[str]
    """docker's --env-file/--label-file: KEY=VALUE lines, # comments and blank lines skipped."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise FlagError("%s %s: %s" % (flag, path, e.strerror)) from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line and flag == "--env-file":
            value = getenv(line)
            if value is not None:
                out.append("%s=%s" % (line, value))
            continue
        out.append(line)
    return out


def ulimit(text):
    # type: (str) -> Dict[str, Any]
    """nofile=1024[:2048] -> {"Name", "Soft", "Hard"}."""
    name, sep, limits = text.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        soft_n = int(soft)
        hard_n = int(hard) if hard else soft_n
    except ValueError:
        raise FlagError("invalid --ulimit %r: use NAME=SOFT[:HARD], e.g. nofile=1024:2048" % text) from None
    if not sep or not name:
        raise FlagError("invalid --ulimit %r: use NAME=SOFT[:HARD], e.g. nofile=1024:2048" % text)
    return {"Name": name, "Soft": soft_n, "Hard": hard_n}


def _truthy(value):
    # type: (str) -> bool
    return value.lower() in ("", "1", "true")


def mount(text, parse_bytes):
    # type: (str, Any) -> Dict[str, Any]
    """--mount's comma-separated key=value list -> a HostConfig.Mounts entry."""
    m = {"Type": "volume"}  # type: Dict[str, Any]
    bind, tmpfs, vol = {}, {}, {}  # type: Dict[str, Any], Dict[str, Any], Dict[str, Any]
    for field in text.split(","):
        key, _, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            m["Type"] = value
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "destination", "dst"):
            m["Target"] = value
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _truthy(value)
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _truthy(value)
        elif key == "bind-create-mountpoint":
            bind["CreateMountpoint"] = _truthy(value)
        elif key == "volume-nocopy":
            vol["NoCopy"] = _truthy(value)
        elif key == "volume-label":
            vol.setdefault("Labels", {})[value.partition("=")[0]] = value.partition("=")[2]
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = parse_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise FlagError("invalid --mount tmpfs-mode %r: use an octal mode, e.g. 1777"
                                % value) from None
        else:
            raise FlagError("invalid --mount field %r in %r (use type, source, target, readonly, "
                            "bind-propagation, bind-nonrecursive, volume-nocopy, tmpfs-size, tmpfs-mode)"
                            % (key, text))
    if not m.get("Target"):
        raise FlagError("invalid --mount %r: target is required" % text)
    for key, value in (("BindOptions", bind), ("TmpfsOptions", tmpfs), ("VolumeOptions", vol)):
        if value:
            m[key] = value
    return m


def _throttles(items, flag, parse_bytes):
    # type: (List[str], str, Any) -> List[Dict[str, Any]]
    out = []
    for text in items:
        path, sep, rate = text.rpartition(":")
        if not sep or not path:
            raise FlagError("invalid %s %r: use DEVICE:RATE, e.g. /dev/sda:1mb" % (flag, text))
        try:
            out.append({"Path": path, "Rate": parse_bytes(rate) if "bps" in flag else int(rate)})
        except ValueError:
            raise FlagError("invalid %s %r: the rate must be a number" % (flag, text)) from None
    return out


def apply(args, config, host, parse_bytes):
    # type: (Any, Dict[str, Any], Dict[str, Any], Any) -> None
    """Put the flags' values into config (Config) and host (HostConfig)."""
    if args.env_file:
        env = [e for path in args.env_file for e in _kv_file(path, "--env-file")]
        config["Env"] = env + (config.get("Env") or [])
    if args.label_file:
        labels = dict(item.partition("=")[::2] for path in args.label_file
                      for item in _kv_file(path, "--label-file"))
        labels.update(config.get("Labels") or {})
        config["Labels"] = labels
    if args.stop_signal:
        config["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        config["StopTimeout"] = args.stop_timeout
    lists = (("Ulimits", [ulimit(u) for u in args.ulimit]), ("CapAdd", args.cap_add),
             ("CapDrop", args.cap_drop), ("GroupAdd", args.group_add), ("VolumesFrom", args.volumes_from),
             ("Mounts", [mount(m, parse_bytes) for m in args.mount]),
             ("BlkioDeviceReadBps", _throttles(args.device_read_bps, "--device-read-bps", parse_bytes)),
             ("BlkioDeviceWriteBps", _throttles(args.device_write_bps, "--device-write-bps", parse_bytes)),
             ("BlkioDeviceReadIOps", _throttles(args.device_read_iops, "--device-read-iops", parse_bytes)),
             ("BlkioDeviceWriteIOps", _throttles(args.device_write_iops, "--device-write-iops", parse_bytes)))
    for key, value in lists:
        if value:
            host[key] = value
    if args.sysctl:
        host["Sysctls"] = dict(s.partition("=")[::2] for s in args.sysctl)
    if args.tmpfs:
        host["Tmpfs"] = dict(t.partition(":")[::2] for t in args.tmpfs)
    for key, value in (("Init", args.init), ("ReadonlyRootfs", args.read_only),
                       ("OomKillDisable", args.oom_kill_disable)):
        if value:
            host[key] = True
    for key, value in (("PidMode", args.pid), ("IpcMode", args.ipc), ("UTSMode", args.uts),
                       ("CgroupnsMode", args.cgroupns), ("UsernsMode", args.userns),
                       ("CgroupParent", args.cgroup_parent),
                       ("CpusetCpus", args.cpuset_cpus), ("CpusetMems", args.cpuset_mems),
                       ("OomScoreAdj", args.oom_score_adj), ("MemorySwappiness", args.memory_swappiness),
                       ("CpuShares", args.cpu_shares), ("BlkioWeight", args.blkio_weight)):
        if value is not None:
            host[key] = value
    for key, value in (("MemoryReservation", args.memory_reservation), ("ShmSize", args.shm_size)):
        if value:
            host[key] = parse_bytes(value)
    if args.memory_swap:
        host["MemorySwap"] = -1 if args.memory_swap.strip() == "-1" else parse_bytes(args.memory_swap)
