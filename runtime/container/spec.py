"""From Docker's ContainerConfig + HostConfig + the image config to what the child needs:
command, environment, capabilities, namespaces, signals. Pure functions, no I/O."""

import signal

from runtime.container.proc import init
from runtime.container.proc import syscalls as sc
from runtime.errors import InvalidParameter

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command(config, image_config):
    # type: (dict, dict) -> list
    """Entrypoint + Cmd as Docker combines them: an Entrypoint given at create drops the image's Cmd."""
    entry = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if isinstance(entry, str):
        entry = [entry]
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    if entry is None:
        entry = image_config.get("Entrypoint") or []
        if not cmd:
            cmd = image_config.get("Cmd") or []
    args = list(entry or []) + list(cmd or [])
    if not args:
        raise InvalidParameter("No command specified: give a command or use an image with CMD or ENTRYPOINT")
    return args


def environment(config, image_config, hostname):
    # type: (dict, dict, str) -> list
    """Image Env overlaid with Config.Env, a default PATH, HOSTNAME and TERM for a TTY."""
    merged = {}  # type: dict
    order = []  # type: list
    for e in (["HOSTNAME=" + hostname] + list(image_config.get("Env") or []) + list(config.get("Env") or [])):
        k = e.partition("=")[0]
        if k not in merged:
            order.append(k)
        merged[k] = e
    if "PATH" not in merged:
        order.insert(0, "PATH")
        merged["PATH"] = DEFAULT_PATH
    if config.get("Tty") and "TERM" not in merged:
        order.append("TERM")
        merged["TERM"] = "TERM=xterm"
    return [merged[k] for k in order]


def capabilities(hc):
    # type: (dict) -> list
    """Docker's default set with HostConfig CapAdd/CapDrop ("ALL" allowed); all for Privileged."""
    every = _host_caps()
    if hc.get("Privileged"):
        return sorted(every)

    def num(name):
        # type: (str) -> int
        key = name.upper()
        key = key[4:] if key.startswith("CAP_") else key
        if key not in init.CAP_NUMBERS:
            raise InvalidParameter("unknown capability: %r" % name)
        return init.CAP_NUMBERS[key]

    caps = set(init.CAP_NUMBERS[c] for c in init.DEFAULT_CAPS)
    drop = hc.get("CapDrop") or []
    if any(c.upper() == "ALL" for c in drop):
        caps = set()
    else:
        caps -= set(num(c) for c in drop)
    add = hc.get("CapAdd") or []
    if any(c.upper() == "ALL" for c in add):
        caps = set(every)
    else:
        caps |= set(num(c) for c in add)
    allowed = set(every)
    return sorted(c for c in caps if c in allowed)


_HOST_CAPS = []  # type: list


def _host_caps():
    # type: () -> list
    """The capabilities this kernel knows and the engine may pass on, read once per process
    (two /proc reads that were a few percent of every create and start)."""
    if not _HOST_CAPS:
        last = sc.cap_last_cap()
        bounding = _bounding_set()
        _HOST_CAPS.extend(n for n in init.CAP_NUMBERS.values() if n <= last and bounding >> n & 1)
    return list(_HOST_CAPS)


def _bounding_set():
    # type: () -> int
    """The engine's own capability bounding set: a container cannot get more (a host may
    withhold some from root, e.g. CAP_SYS_RESOURCE)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << 64) - 1


def network_mode(hc):
    # type: (dict) -> str
    """HostConfig.NetworkMode, checked for form: "default", "bridge", "none", "host",
    "container:<ref>" or a network name/id (which the network service resolves)."""
    mode = hc.get("NetworkMode") or "default"
    if mode.startswith("container:") and not mode[len("container:"):]:
        raise InvalidParameter("network mode container: needs a container name or id (container:NAME)")
    for unsupported in ("ns:", "slirp4netns", "pasta", "private"):
        if mode == unsupported or mode.startswith(unsupported):
            raise InvalidParameter("network mode %r is not supported: use bridge, none, host, "
                                   "container:NAME or a network name" % mode)
    return mode


def ns_flags(mode):
    # type: (str) -> int
    """Namespaces the init unshares itself (the PID namespace is the monitor's unshare)."""
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if mode == "none":  # others join the engine's (bridge, container:) or stay in the host's
        flags |= sc.CLONE_NEWNET
    return flags


def parse_signal(sig):
    # type: (object) -> int
    """"SIGHUP", "HUP", "1" or 1 -> 1; InvalidParameter for anything else."""
    if isinstance(sig, int) or (isinstance(sig, str) and sig.isdigit()):
        n = int(sig)
        if 0 < n < 65:
            return n
    elif isinstance(sig, str):
        name = sig.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return int(getattr(signal.Signals, name))
        except AttributeError:
            pass
    raise InvalidParameter("invalid signal: %r (use a name like SIGTERM or a number)" % (sig,))
