"""What the user asked for (one object shared by every host of a run) and the template
variables derived from it. Validation of user input happens here, before any host is touched."""

from __future__ import annotations

from dataclasses import dataclass, field

from provision import daemonjson, mirrors
from provision.distros import Platform
from provision.engine_kind import BERTH, EngineKind, engine_kind
from provision.errors import InputError

CHANNELS = ("stable", "test", "edge", "nightly")
MODULES = ["overlay", "br_netfilter"]
SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
    # the ARP table is one for the whole kernel (every container's namespace): the defaults
    # (128/512/1024 entries) overflow at ~30 containers on one network talking to each other
    "net.ipv4.neigh.default.gc_thresh1": "8192",
    "net.ipv4.neigh.default.gc_thresh2": "32768",
    "net.ipv4.neigh.default.gc_thresh3": "65536",
}
# only the initial network namespace has these: a host that is itself a container (LXC, a
# lab host) does not show them, and they are then left to its parent
HOST_ONLY_SYSCTLS = (
    "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3",
)
MODULES_FILE = "/etc/modules-load.d/berth.conf"
SYSCTL_FILE = "/etc/sysctl.d/99-berth.conf"
EL_BASE_REPO = "/etc/yum.repos.d/CentOS-Base.repo"
DOCKER_REPO = "/etc/yum.repos.d/docker-ce.repo"
APT_SOURCES = "/etc/apt/sources.list"
# deb822 distro sources of newer images: disabled (renamed) when --mirror replaces sources.list
APT_DEB822 = ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list.d/ubuntu.sources")


def remap_names(value: str) -> tuple[str, str]:
    """(user, group whose subgid ranges count) of a userns-remap value (``default``: berth)."""
    if value == "default":
        return "berth", "berth"
    user, _, group = value.partition(":")
    return user, group or user


@dataclass
class Options:
    """Everything ``provision host`` / ``check`` was asked to do."""

    engine: str = "berth"
    channel: str = "stable"
    mirror: str | None = None
    registry_mirrors: list[str] = field(default_factory=list)
    daemon_opts: list[str] = field(default_factory=list)
    group: str = "docker"
    gid: int | None = None
    users: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    data_root: str = "/var/lib/berth"
    gpgcheck: bool = True
    distro_like: str | None = None
    min_free_gb: float = 1.0
    bundle: str | None = None  # a prebuilt engine bundle to ship instead of building one
    docker_version: str | None = None  # --engine docker: pin this docker-ce version
    install_engine: bool = True  # False (--no-install): prepare the host only
    userns_remap: str | None = None  # daemon.json userns-remap, with its user, ids and sysctl

    def validate(self) -> None:
        """Raise :class:`InputError` for anything wrong before a host is contacted."""
        engine_kind(self.engine)
        if self.channel not in CHANNELS:
            raise InputError(f"--channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")
        mirrors.resolve(self.mirror)
        self.wanted_daemon_json()
        if not self.data_root.startswith("/"):
            raise InputError(f"--data-root must be an absolute path, not {self.data_root!r}")

    @property
    def kind(self) -> EngineKind:
        """The engine to install (``engine`` is validated by :meth:`validate`)."""
        return engine_kind(self.engine)

    @property
    def daemon_json_path(self) -> str:
        return self.kind.config_file

    def wanted_daemon_json(self) -> dict:
        """The keys provision puts into daemon.json (validated, not yet merged)."""
        wanted: dict = {}
        if self.registry_mirrors:
            wanted["registry-mirrors"] = [
                mirrors.validate_url(u, "registry mirror") for u in self.registry_mirrors
            ]
        for item in self.daemon_opts:
            wanted = daemonjson.deep_merge(wanted, daemonjson.parse_setting(item))
        if self.userns_remap:
            wanted["userns-remap"] = self.userns_remap
        if self.kind is BERTH and self.data_root != "/var/lib/berth" and "data-root" not in wanted:
            wanted["data-root"] = self.data_root
        daemonjson.validate(wanted, self.kind)
        return wanted

    def managed_files(self) -> list[str]:
        """Every file whose current content the facts must bring back."""
        return [
            MODULES_FILE,
            SYSCTL_FILE,
            EL_BASE_REPO,
            DOCKER_REPO,
            APT_SOURCES,
            *APT_DEB822,
            self.daemon_json_path,
            *(("/etc/subuid", "/etc/subgid") if self.userns_remap else ()),
        ]

    def template_vars(self, plat: Platform) -> dict:
        """The variables every template sees (the playbooks get the same ones)."""
        urls = mirrors.resolve(self.mirror)
        ubuntu = plat.id == "ubuntu"
        v = {
            "modules": list(MODULES),
            "sysctls": dict(SYSCTLS),
            "el_release": mirrors.EL7_RELEASE,
            "el_major": plat.major,
            "vault_base": urls["vault"],
            "docker_ce_base": urls["docker-ce"],
            "docker_channel": self.channel,
            "gpgcheck": 1 if self.gpgcheck else 0,
            "distro_id": plat.id,
            "codename": plat.codename,
            "apt_mirror": urls["ubuntu" if ubuntu else "debian"],
            "apt_security": urls["ubuntu-security" if ubuntu else "debian-security"],
            "apt_components": "main restricted universe" if ubuntu else "main",
            "apt_options": "" if self.gpgcheck else "[trusted=yes] ",
        }
        return v
