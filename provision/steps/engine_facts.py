"""Facts about the container engine on a target: installed bundle, wrappers, unit, service
state and socket. Gathered in the same round trip as the system facts."""

from __future__ import annotations

import json
import shlex

from provision.bundle import BIN_DIR, LIB_DIR
from provision.facts.base import Fact
from provision.facts.system import parse_files, parse_words

UNIT_DIR = "/etc/systemd/system"
BERTHD_UNIT = f"{UNIT_DIR}/berthd.service"
PIDFILE = "/run/berthd.pid"
DIRECT_LOG = "/var/log/berthd.log"
DEFAULT_SOCKET = "/run/berth.sock"
DOCKER_SOCKET = "/var/run/docker.sock"
# the OS packages the engine needs (names differ: iproute on EL, iproute2 on Debian)
ENGINE_PACKAGES = {
    "el": ["python3", "iptables", "iproute", "util-linux", "tar"],
    "debian": ["python3", "iptables", "iproute2", "util-linux", "tar"],
}
DOCKER_PACKAGES = {"debian": ["docker.io"]}
OLD_DOCKER = [
    "docker",
    "docker-client",
    "docker-client-latest",
    "docker-common",
    "docker-latest",
    "docker-latest-logrotate",
    "docker-logrotate",
    "docker-engine",
]
EL_PREREQS = ["yum-utils", "device-mapper-persistent-data", "lvm2"]
EL_DOCKER = ["docker-ce", "docker-ce-cli", "containerd.io"]
ENGINE_FILES = [BERTHD_UNIT, f"{BIN_DIR}/berth", f"{BIN_DIR}/berthd", f"{LIB_DIR}/provision-state.json"]


def package_names() -> list[str]:
    """Every package name whose installed state the engine steps compare against."""
    names: list[str] = []
    for lst in (
        list(ENGINE_PACKAGES.values()) + list(DOCKER_PACKAGES.values()) + [OLD_DOCKER, EL_PREREQS, EL_DOCKER]
    ):
        names += [n for n in lst if n not in names]
    return names


def service_name(engine: str) -> str:
    return "berthd" if engine == "berth" else "docker"


def _files_cmd(paths: list[str]) -> str:
    q = shlex.quote
    return "; ".join(
        f"echo '@file {p}'; if [ -f {q(p)} ]; then stat -c '%a %u %g' {q(p)}; base64 < {q(p)}; "
        f"else echo absent; fi"
        for p in paths
    )


def parse_service(lines: list[str]) -> dict:
    """``systemctl show`` KEY=VALUE lines plus ``pid``/``sock``/``marker`` extras."""
    out: dict = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    if "marker" in out:
        try:
            out["marker"] = json.loads(out["marker"])
        except ValueError:
            out["marker"] = None
    return out


def socket_path(config: dict, engine: str = "berth") -> str:
    """The first unix socket the engine listens on, from its (merged) daemon.json."""
    for h in config.get("hosts") or []:
        if isinstance(h, str) and h.startswith("unix://"):
            return h[len("unix://") :]
    return DEFAULT_SOCKET if engine == "berth" else DOCKER_SOCKET


def engine_facts(engine: str, sockets: list[str]) -> list[Fact]:
    """Facts the engine steps decide from (both engines; cheap when nothing is installed)."""
    svc = service_name(engine)
    q = shlex.quote
    sock_cmd = "; ".join(
        f"if [ -S {q(s)} ]; then echo \"{s} $(stat -c '%U %G %a' {q(s)})\"; fi" for s in sockets
    )
    state = (
        f"if [ -d /run/systemd/system ]; then systemctl show {svc} -p ActiveState -p SubState "
        f"-p MainPID -p UnitFileState -p ActiveEnterTimestamp -p LoadState; fi; "
        f'echo "current=$(readlink {LIB_DIR}/current 2>/dev/null)"; '
        f'echo "marker=$(cat {LIB_DIR}/current/BERTH_INSTALLED 2>/dev/null)"; '
        f"p=$(cat {PIDFILE} 2>/dev/null); "
        f'if [ -n "$p" ] && [ -d /proc/$p ]; then echo "direct_pid=$p"; fi; '
        "echo \"docker_pkg=$( (rpm -q --qf '%{VERSION}-%{RELEASE}' docker-ce || "
        "dpkg-query -W -f='${Version}' docker.io) 2>/dev/null)\"; "
        f'echo "python3=$(/usr/bin/python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\' '
        f'2>/dev/null)"'
    )
    return [
        Fact("engine", state, parse_service, {}),
        Fact("engine_sockets", sock_cmd or "true", parse_words, {}),
        Fact("engine_files", _files_cmd(ENGINE_FILES), parse_files, {}),
    ]


def socket_paths(opts) -> list[str]:
    """The sockets whose owner and mode the facts report (the configured one and the default)."""

    wanted = opts.wanted_daemon_json()
    paths = [socket_path(wanted, opts.engine), DEFAULT_SOCKET if opts.engine == "berth" else DOCKER_SOCKET]
    return list(dict.fromkeys(paths))
