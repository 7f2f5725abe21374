"""Package mirror presets (one ``--mirror`` option) and the base URLs each repo kind uses.

A custom mirror URL must lay out its trees like the public mirrors do:
``URL/centos-vault/7.9.2009/os/x86_64``, ``URL/docker-ce/linux/centos/7/...``,
``URL/debian``, ``URL/debian-security``, ``URL/ubuntu``.
"""

from __future__ import annotations

import urllib.parse

from provision.errors import InputError

EL7_RELEASE = "7.9.2009"

PRESETS = {
    "official": {
        "vault": "https://vault.centos.org",
        "docker-ce": "https://download.docker.com",
        "debian": "http://deb.debian.org/debian",
        "debian-security": "http://security.debian.org/debian-security",
        "ubuntu": "http://archive.ubuntu.com/ubuntu",
        "ubuntu-security": "http://security.ubuntu.com/ubuntu",
    },
}
for _name, _host in (
    ("aliyun", "https://mirrors.aliyun.com"),
    ("tencent", "https://mirrors.cloud.tencent.com"),
    ("ustc", "https://mirrors.ustc.edu.cn"),
):
    PRESETS[_name] = {
        "vault": f"{_host}/centos-vault",
        "docker-ce": f"{_host}/docker-ce",
        "debian": f"{_host}/debian",
        "debian-security": f"{_host}/debian-security",
        "ubuntu": f"{_host}/ubuntu",
        "ubuntu-security": f"{_host}/ubuntu",
    }


def validate_url(url: str, what: str = "mirror") -> str:
    """Return ``url`` without a trailing slash, or raise :class:`InputError` saying why it is bad."""
    parsed = urllib.parse.urlparse(url)
    if (
        parsed.scheme not in ("http", "https", "file")
        or (parsed.scheme != "file" and not parsed.netloc)
        or any(c in url for c in " \t\n\"'<>")
    ):
        raise InputError(
            f"invalid {what} URL {url!r}: use http(s)://host/path, file:///path or a preset "
            f"({', '.join(PRESETS)})"
        )
    if parsed.scheme != "file":
        try:
            parsed.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise InputError(f"invalid {what} URL {url!r}: bad port") from None
    return url.rstrip("/")


def resolve(mirror: str | None) -> dict[str, str]:
    """Base URLs per repo kind for ``--mirror`` (a preset name or a custom URL; None = official)."""
    if not mirror:
        return dict(PRESETS["official"])
    if mirror in PRESETS:
        return dict(PRESETS[mirror])
    base = validate_url(mirror)
    return {
        "vault": f"{base}/centos-vault",
        "docker-ce": f"{base}/docker-ce",
        "debian": f"{base}/debian",
        "debian-security": f"{base}/debian-security",
        "ubuntu": f"{base}/ubuntu",
        "ubuntu-security": f"{base}/ubuntu",
    }
