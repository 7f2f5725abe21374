"""The two engines provision installs, as one small type: each knows its service, unit, config
file, binaries, default socket and data root, and how its CLI is asked for JSON. Everything
that differs between ``--engine berth`` and ``--engine docker`` is read from here."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from provision.bundle import BIN_DIR, LIB_DIR
from provision.errors import InputError

UNIT_DIR = "/etc/systemd/system"
# direct mode (systemd is not PID 1): both engines run as a daemon with this pid file and log
PIDFILE = "/run/berthd.pid"
DIRECT_LOG = "/var/log/berthd.log"
STATE_FILE = f"{LIB_DIR}/provision-state.json"  # the install record (steps/record.py)

# the OS packages berth's engine needs (names differ: iproute on EL, iproute2 on Debian)
BERTH_PACKAGES = {
    "el": ["python3", "iptables", "iproute", "util-linux", "tar"],
    "debian": ["python3", "iptables", "iproute2", "util-linux", "tar"],
}
# EL hosts running SELinux: the policy that has container_t and lxc_contexts, which berthd's
# labels come from (docker-ce requires it too)
EL_SELINUX = ["container-selinux"]
DEBIAN_DOCKER = ["docker.io"]
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


@dataclass(frozen=True)
class EngineKind:
    """One engine provision can install and drive."""

    name: str  # the --engine value: berth or docker
    service: str  # systemd unit name without .service
    unit: str  # the unit file provision writes ("" when the package ships it)
    config_file: str  # its daemon.json
    client: str  # the CLI that talks to the daemon (the probe and uninstall use it)
    daemon: str  # the daemon binary
    default_socket: str
    default_data_root: str
    json_format: str  # the client's flag for JSON output of `info`/`inspect`
    image_inspect: str  # the client's subcommand that inspects an image
    el_repo: bool  # installed from the Docker CE yum repo on EL (docker-ce.repo written)

    @property
    def installs_bundle(self) -> bool:
        """True for berth: provision ships the engine itself (bundle, wrappers, unit)."""
        return bool(self.unit)

    def socket(self, config: dict) -> str:
        """The first unix socket the engine listens on, from its (merged) daemon.json."""
        for h in config.get("hosts") or []:
            if isinstance(h, str) and h.startswith("unix://"):
                return h[len("unix://") :]
        return self.default_socket

    def cli(self, sock: str) -> str:
        """The client command line that talks to the daemon on ``sock``."""
        return f"{self.client} -H unix://{shlex.quote(sock)}"

    def daemon_cmd(self, config_file: str) -> str:
        """The daemon's command line in direct mode (without the pid file)."""
        if self.installs_bundle:
            return f"{self.daemon} --config-file {config_file}"
        return self.daemon

    def validate_cmd(self, config_file: str) -> str:
        """The command that checks a new daemon.json before a restart ("" when there is none)."""
        if self.installs_bundle:
            return f"{self.daemon} --validate --config-file {shlex.quote(config_file)}"
        return ""


BERTH = EngineKind(
    name="berth",
    service="berthd",
    unit=f"{UNIT_DIR}/berthd.service",
    config_file="/etc/berth/daemon.json",
    client=f"{BIN_DIR}/berth",
    daemon=f"{BIN_DIR}/berthd",
    default_socket="/run/berth.sock",
    default_data_root="/var/lib/berth",
    json_format="-f json",
    image_inspect="inspect",
    el_repo=False,
)
DOCKER = EngineKind(
    name="docker",
    service="docker",
    unit="",
    config_file="/etc/docker/daemon.json",
    client="docker",
    daemon="dockerd",
    default_socket="/var/run/docker.sock",
    default_data_root="/var/lib/docker",
    json_format="--format '{{json .}}'",
    image_inspect="image inspect",
    el_repo=True,
)
KINDS = {k.name: k for k in (BERTH, DOCKER)}


def engine_kind(name: str) -> EngineKind:
    """The kind for an ``--engine`` value; InputError naming the choices otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(f"--engine must be one of {', '.join(KINDS)}, not {name!r}") from None


def package_names() -> list[str]:
    """Every package name whose installed state the engine steps compare against."""
    names: list[str] = []
    for lst in list(BERTH_PACKAGES.values()) + [EL_SELINUX, DEBIAN_DOCKER, OLD_DOCKER, EL_PREREQS, EL_DOCKER]:
        names += [n for n in lst if n not in names]
    return names


PENDING_DIR = "/run/berth-provision"  # see provision/steps/pending.py


def pending_marker(service: str) -> str:
    """The file saying a restart of ``service`` is owed (provision/steps/pending.py)."""
    return f"{PENDING_DIR}/{service}.restart-pending"


def proof_record(service: str) -> str:
    """The file naming the engine process the last full verification passed on
    (provision/steps/probe.py); under /run, so a reboot forgets it."""
    return f"{PENDING_DIR}/{service}.verified"


def identity_command(service: str) -> str:
    """sh printing which engine process runs, as the engine facts read it: systemd's
    ``MainPID`` and ``ActiveEnterTimestamp`` of ``service``, or the direct-mode daemon's pid."""
    return (
        f"if [ -d /run/systemd/system ]; then systemctl show {shlex.quote(service)} -p MainPID "
        f"-p ActiveEnterTimestamp; fi; p=; [ -r {PIDFILE} ] && read -r p < {PIDFILE}; "
        'if [ -n "$p" ] && [ -d /proc/$p ]; then echo "direct_pid=$p"; fi'
    )
