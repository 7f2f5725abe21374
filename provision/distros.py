"""Which OS a target runs, whether provision supports it, and its end-of-life status."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from provision.errors import UnsupportedError

EL_IDS = {"centos", "rhel", "rocky", "almalinux", "ol"}
DEB_IDS = {"debian", "ubuntu"}
SUPPORTED = "CentOS 7, RHEL/Rocky/Alma/Oracle 8-9, Debian 11-12, Ubuntu 20.04+"

# (id, major) -> (end of life, repos dead after EOL, note)
EOL = {
    ("centos", 7): (
        datetime.date(2024, 6, 30),
        True,
        "mirrorlist.centos.org is gone; use vault (default) or --mirror",
    ),
    ("centos", 8): (datetime.date(2021, 12, 31), True, "use vault.centos.org or move to Rocky/Alma"),
    ("rhel", 7): (datetime.date(2024, 6, 30), False, "ELS subscription only"),
    ("ol", 7): (datetime.date(2024, 12, 31), False, "extended support only"),
    ("debian", 11): (datetime.date(2026, 8, 31), True, "repos move to archive.debian.org; use --mirror"),
    ("ubuntu", 20): (datetime.date(2025, 5, 31), False, "ESM only"),
    ("rhel", 8): (datetime.date(2029, 5, 31), False, ""),
    ("rocky", 8): (datetime.date(2029, 5, 31), False, ""),
    ("almalinux", 8): (datetime.date(2029, 3, 1), False, ""),
}
DEBIAN_CODENAMES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}


@dataclass
class Platform:
    """The target's OS as provision sees it."""

    id: str  # os-release ID (centos, debian, ...)
    family: str  # "el" or "debian"
    version: str  # VERSION_ID
    major: int
    pretty: str
    codename: str  # Debian/Ubuntu suite, "" on EL
    overridden: bool = False

    @property
    def is_el7(self) -> bool:
        return self.family == "el" and self.major == 7

    def eol(self, today: datetime.date | None = None) -> tuple[bool, bool, str]:
        """(end of life?, repos dead?, note) for this release."""
        today = today or datetime.date.today()
        entry = EOL.get((self.id, self.major))
        if not entry:
            return False, False, ""
        date, dead, note = entry
        past = today > date
        return past, past and dead, f"end of life since {date.isoformat()}" + (f": {note}" if note else "")


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version or "")
    return int(m.group(1)) if m else 0


def detect(os_release: dict[str, str], distro_like: str | None = None) -> Platform:
    """Classify ``/etc/os-release``; raise :class:`UnsupportedError` with the override hint."""
    dist_id = os_release.get("ID", "").lower()
    version = os_release.get("VERSION_ID", "")
    major = _major(version)
    pretty = os_release.get("PRETTY_NAME") or f"{dist_id} {version}".strip() or "unknown"
    codename = os_release.get("VERSION_CODENAME", "") or os_release.get("UBUNTU_CODENAME", "")
    if distro_like:
        if distro_like not in ("el", "debian"):
            raise UnsupportedError(f"--distro-like must be 'el' or 'debian', not {distro_like!r}")
        if distro_like == "el":
            return Platform(dist_id or "el", "el", version, major or 8, pretty, "", overridden=True)
        return Platform(
            dist_id or "debian",
            "debian",
            version,
            major,
            pretty,
            codename or DEBIAN_CODENAMES.get(str(major), "stable"),
            overridden=True,
        )
    ok = (
        (dist_id == "centos" and major == 7)
        or (dist_id in EL_IDS - {"centos"} and 7 <= major <= 9)
        or (dist_id == "debian" and major >= 11)
        or (dist_id == "ubuntu" and major >= 20)
    )
    if not ok:
        what = pretty if dist_id else "unknown distribution (no usable /etc/os-release)"
        raise UnsupportedError(
            f"unsupported OS {what}: provision supports {SUPPORTED}; if this one is "
            f"compatible, pass --distro-like el|debian"
        )
    family = "el" if dist_id in EL_IDS else "debian"
    if family == "debian" and not codename:
        codename = DEBIAN_CODENAMES.get(str(major), "")
    return Platform(dist_id, family, version, major, pretty, codename)
