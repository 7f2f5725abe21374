"""daemon.json: Docker's key names, checked strictly. An unknown key, a wrong type or invalid
JSON is a ConfigError naming the file and the key (or line and column); nothing is applied."""

import json
import os
import socket

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Dict, Optional  # noqa: F401

DEFAULT_CONFIG_FILE = "/etc/berth/daemon.json"
DEFAULT_HOST = "unix:///run/berth.sock"
DEFAULTS = {
    "data-root": "/var/lib/berth",
    "hosts": [DEFAULT_HOST],
    "group": "docker",
    "registry-mirrors": [],
    "insecure-registries": [],
    "max-concurrent-downloads": 3,
    "max-concurrent-uploads": 5,
    "max-concurrent-requests": 0,  # API requests worked on at once; 0: 4 per CPU, at least 8
    "log-level": "info",
    "debug": False,
    "exec-opts": [],
    "live-restore": False,
    "log-driver": "json-file",
    "log-opts": {},
    "cgroup-parent": "",
    "pidfile": "",
    "storage-driver": "",
    "seccomp-profile": "",
    "no-new-privileges": False,
    "selinux-enabled": False,  # labels where the kernel runs SELinux (runtime/container/selinux.py)
    "userns-remap": "",
    # networking (runtime/network): the default bridge, firewall and resolver settings
    "bridge": "berth0",
    "bip": "",
    "fixed-cidr": "",
    "mtu": 0,
    "default-address-pools": [],
    "iptables": True,
    "ip-forward": True,
    "ip-masq": True,
    "icc": True,
    "userland-proxy": False,
    "dns": [],
    "dns-search": [],
    "dns-opts": [],
    "host-gateway-ip": "",
    # TLS of tcp:// hosts (runtime/api/tcp.py); "tls": None is "not set" (see check_listeners)
    "tls": None,
    "tlsverify": False,
    "tlscacert": "",
    "tlscert": "",
    "tlskey": "",
}  # type: Dict[str, Any]
_TYPES = {"tls": bool}  # keys whose default is not of their type
DEFAULT_TLS_PORT, DEFAULT_PLAIN_PORT = 2376, 2375

# Keys SIGHUP may change in a running daemon (dockerd reloads the same ones, among others).
RELOADABLE = ("registry-mirrors", "insecure-registries", "max-concurrent-downloads",
              "max-concurrent-uploads", "debug", "log-level", "live-restore", "log-opts")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal")
CGROUP_DRIVERS = ("cgroupfs", "systemd")
SUPPORTED_CGROUP_DRIVERS = ("cgroupfs",)
STORAGE_DRIVERS = ("", "overlay2", "vfs")  # "": overlay2 if it works on the data root, else vfs


class ConfigError(Exception):
    """daemon.json (or a flag) is unusable; the message names the file and the key or line."""


def _kind(value):
    # type: (Any) -> str
    return {bool: "a boolean", int: "an integer", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _check_value(where, key, value):
    # type: (str, str, Any) -> None
    want = _TYPES.get(key) or type(DEFAULTS[key])
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    if not ok:
        raise ConfigError("%s: %r must be %s, not %s" % (where, key, _kind(want()), json.dumps(value)))
    if key == "default-address-pools":
        if not all(isinstance(x, dict) and set(x) == {"base", "size"} for x in value):
            raise ConfigError('%s: default-address-pools must be a list of {"base": CIDR, "size": N}' % where)
    elif want is list and not all(isinstance(x, str) for x in value):
        raise ConfigError("%s: %r must be a list of strings" % (where, key))
    if key == "log-level" and value not in LOG_LEVELS:
        raise ConfigError("%s: log-level %r is not one of %s" % (where, value, ", ".join(LOG_LEVELS)))
    if key in ("max-concurrent-downloads", "max-concurrent-uploads") and value < 1:
        raise ConfigError("%s: %r must be at least 1, not %d" % (where, key, value))
    if key == "max-concurrent-requests" and value < 0:
        raise ConfigError("%s: max-concurrent-requests must be 0 (4 per CPU) or more, not %d"
                          % (where, value))
    if key == "log-opts" and not all(isinstance(x, str) for x in value.values()):
        raise ConfigError("%s: log-opts values must be strings" % where)
    if key == "exec-opts":
        for opt in value:
            name, sep, val = opt.partition("=")
            if name.strip() != "native.cgroupdriver" or not sep:
                raise ConfigError("%s: exec-opts %r is not supported (only native.cgroupdriver=...)"
                                  % (where, opt))
            if val.strip() not in CGROUP_DRIVERS:
                raise ConfigError("%s: native.cgroupdriver %r is not one of cgroupfs, systemd"
                                  % (where, val.strip()))
            if val.strip() not in SUPPORTED_CGROUP_DRIVERS:  # the engine would refuse to start
                raise ConfigError("%s: the %s cgroup driver is not supported yet: use "
                                  "native.cgroupdriver=cgroupfs in exec-opts" % (where, val.strip()))
    if key == "storage-driver" and value not in STORAGE_DRIVERS:
        raise ConfigError("%s: storage-driver %r is not supported: use overlay2 or vfs (or leave it "
                          "out to choose at start)" % (where, value))
    if key == "seccomp-profile":
        from runtime.container import security  # the compiler only when the key is set
        try:
            security.read_profile_file(value)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise ConfigError("%s: seccomp-profile %r: %s (give a profile file in dockerd's JSON "
                              "format, builtin or unconfined)" % (where, value, why)) from None
    if key == "userns-remap" and value:
        from runtime.container import remap
        try:
            remap.check_value(value)
        except remap.RemapError as exc:
            raise ConfigError("%s: %s" % (where, exc)) from None
    if key == "userland-proxy" and value:
        raise ConfigError("%s: userland-proxy true is not supported: published ports reach containers "
                          "through iptables DNAT and route_localnet (leave it false)" % where)
    if key in ("bip", "fixed-cidr") and value:
        import ipaddress
        try:
            ipaddress.ip_interface(value) if key == "bip" else ipaddress.ip_network(value)
        except ValueError:
            raise ConfigError("%s: %s %r is not an IPv4 CIDR (e.g. 172.17.0.1/16)"
                              % (where, key, value)) from None
    if key == "hosts":
        for host in value:
            if host.startswith("tcp://"):
                try:
                    tcp_address(host, DEFAULT_TLS_PORT)
                except ValueError as exc:
                    raise ConfigError("%s: host %r: %s" % (where, host, exc)) from None
            elif not host.startswith("unix://") or len(host) <= len("unix://"):
                raise ConfigError("%s: host %r is not supported: use unix:///path/to.sock or "
                                  "tcp://ADDRESS:PORT (with TLS)" % (where, host))


def parse(text, where):
    # type: (str, str) -> Dict[str, Any]
    """The keys set in a daemon.json text (not merged with defaults); ConfigError if unusable."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        line, col = getattr(exc, "lineno", "?"), getattr(exc, "colno", "?")
        msg = getattr(exc, "msg", str(exc))
        raise ConfigError("%s: invalid JSON at line %s column %s: %s" % (where, line, col, msg)) from None
    if not isinstance(data, dict):
        raise ConfigError("%s: the top level must be a JSON object" % where)
    unknown = sorted(k for k in data if k not in DEFAULTS)
    if unknown:
        raise ConfigError("%s: the following directives don't match any configuration option: %s"
                          % (where, ", ".join(unknown)))
    for key, value in data.items():
        _check_value(where, key, value)
    if "log-driver" in data or "log-opts" in data:
        from runtime.container import logdriver
        driver = data.get("log-driver", DEFAULTS["log-driver"])
        try:
            logdriver.resolve({"Type": driver}, driver, data.get("log-opts"))
        except ValueError as exc:
            raise ConfigError("%s: %s" % (where, exc)) from None
    return data


def load(path, explicit=False):
    # type: (str, bool) -> Dict[str, Any]
    """The keys set in the file at path; a missing default file is empty, a missing explicit one
    (--config-file) is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError("%s: no such file (check --config-file)" % path) from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc)) from None
    return parse(text, path)


def merged(file_keys, flag_keys):
    # type: (Dict[str, Any], Dict[str, Any]) -> Dict[str, Any]
    """Defaults, overridden by the file, overridden by command-line flags."""
    out = dict(DEFAULTS)
    out.update(file_keys)
    out.update({k: v for k, v in flag_keys.items() if v is not None})
    for key, value in flag_keys.items():
        if value is not None:
            _check_value("command line", key, value)
    if out["debug"]:
        out["log-level"] = "debug"
    return out


def tcp_address(host, default_port):
    # type: (str, int) -> tuple
    """(address, port) of tcp://ADDRESS[:PORT] (an empty address is every interface, an IPv6
    one in brackets); ValueError saying what is wrong."""
    rest = host[len("tcp://"):].rstrip("/")
    if "/" in rest:
        raise ValueError("a tcp host has no path: use tcp://ADDRESS:PORT")
    if rest.startswith("["):
        addr, sep, tail = rest[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise ValueError("an IPv6 address goes in brackets: tcp://[::1]:2376")
        port_text = tail[1:]
    else:
        addr, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not port_text:
        return addr or "0.0.0.0", default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("port %r is not a number from 1 to 65535" % port_text)
    return addr or "0.0.0.0", int(port_text)


def tls_mode(cfg):
    # type: (Dict[str, Any]) -> str
    """How tcp:// hosts are served: "verify" (TLS, client certificates checked against
    tlscacert), "tls" (TLS, any client), or "plain" (only when `tls` is explicitly false)."""
    if cfg.get("tlsverify"):
        return "verify"
    return "plain" if cfg.get("tls") is False else "tls"


def check_listeners(cfg, where):
    # type: (Dict[str, Any], str) -> None
    """A tcp:// host of the merged configuration needs TLS with its files (tlscert, tlskey;
    tlscacert with tlsverify); plain TCP, which gives root on this host to anyone who can reach
    the port, only with an explicit `"tls": false` (`--tls=false`). ConfigError otherwise,
    starting with where (the config file)."""
    tcp = [h for h in cfg["hosts"] if h.startswith("tcp://")]
    if not tcp:
        return
    mode = tls_mode(cfg)
    if mode == "plain":
        return
    if cfg.get("tls") is None and not cfg.get("tlsverify"):
        raise ConfigError("%s: host %s: listening on TCP without TLS lets anyone who reaches the "
                          "port run anything as root here: set tlsverify with tlscacert, tlscert and "
                          "tlskey (or \"tls\": false, --tls=false, to accept that risk)" % (where, tcp[0]))
    need = ["tlscert", "tlskey"] + (["tlscacert"] if mode == "verify" else [])
    missing = [k for k in need if not cfg.get(k)]
    if missing:
        raise ConfigError("%s: host %s with %s needs %s (PEM file paths)"
                          % (where, tcp[0], "tlsverify" if mode == "verify" else "tls", ", ".join(missing)))


def socket_paths(cfg):
    # type: (Dict[str, Any]) -> list
    """The unix socket paths from `hosts`."""
    return [os.path.abspath(h[len("unix://"):]) for h in cfg["hosts"] if h.startswith("unix://")]


def serving_socket(cfg):
    # type: (Dict[str, Any]) -> Optional[str]
    """The unix socket of a berthd that answers for this configuration, or None."""
    for path in socket_paths(cfg):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return path
        except OSError:
            continue
        finally:
            s.close()
    return None


def tcp_hosts(cfg):
    # type: (Dict[str, Any]) -> list
    """The tcp:// hosts as (host, address, port)."""
    port = DEFAULT_PLAIN_PORT if tls_mode(cfg) == "plain" else DEFAULT_TLS_PORT
    return [(h,) + tcp_address(h, port) for h in cfg["hosts"] if h.startswith("tcp://")]


def cgroup_driver(cfg):
    # type: (Dict[str, Any]) -> str
    """The cgroup driver asked for in exec-opts (cgroupfs by default)."""
    for opt in cfg.get("exec-opts") or ():
        name, _, val = opt.partition("=")
        if name.strip() == "native.cgroupdriver":
            return val.strip()
    return "cgroupfs"
