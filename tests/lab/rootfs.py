"""The base rootfs every lab host boots: built once with debootstrap, cached, shared read-only.

`ensure_base()` returns the path of a finished base, building it first if needed. The build
runs under an exclusive lock (two concurrent test runs never both build), into a temp dir that
is renamed into place only when complete (a killed build never leaves a half rootfs behind).
"""

import fcntl
import hashlib
import os
import pathlib
import re
import shutil
import sys

from .paths import CACHE_DIR, SUITE, TESTER_PASSWORD, TESTER_USER
from .state import State, all_labs
from .sysutil import LabError, run, unmount_under

INCLUDES = [
    # testbed.md's set: a bootable systemd host with sshd
    "systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "python3", "procps", "kmod",
    "iptables", "sudo", "ca-certificates", "libpam-systemd",
    # an EL-shaped flavour runs the real rpm/dnf
    "dnf", "rpm",
    # what provisioning steps and their tests commonly call
    "curl", "gnupg", "iputils-ping", "netcat-openbsd", "lsb-release", "less", "xz-utils",
]
#: Bump when the customisation below changes: a new cache key forces a rebuild.
RECIPE = "5"
MARKER = ".berth-lab-complete"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

SSHD_CONF = """\
# berth lab: root logs in by key only; the tester user may use its password
PermitRootLogin prohibit-password
PasswordAuthentication yes
UseDNS no
"""
# Host keys are never baked into the base: each host regenerates its own at boot. The main
# unit's `sshd -t` check must run after that, so the ExecStartPre list is reset and rebuilt.
SSH_DROPIN = """\
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""
# Nested hosts (an engine inside) need the v1 cgroup controllers writable; nspawn mounts them
# read-only. The cgroup namespace scopes each host to its own subtree.
CGROUP_RW_UNIT = """\
[Unit]
Description=berth lab: make cgroup v1 controllers writable (nested hosts only)
ConditionPathExists=/etc/berth-lab/nested
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*; do case "$${d##*/}" in unified|systemd) ;; *) \
mountpoint -q "$$d" && mount -o remount,bind,rw "$$d"; ;; esac; done; true'

[Install]
WantedBy=sysinit.target
"""


def debootstrap(includes, dest, mirror) -> None:
    """A minbase SUITE with these packages into dest, from mirror (LabError when it fails)."""
    # the Debian keyring, also on a non-Debian machine (Ubuntu ships it as a package)
    keyring = [f"--keyring={KEYRING}"] if os.path.exists(KEYRING) else []
    run(["debootstrap", "--variant=minbase", *keyring, "--include=" + ",".join(includes),
         SUITE, str(dest), mirror])


def find_mirror(sources_dir: str = "/etc/apt") -> str:
    """The Debian mirror the machine's apt uses for SUITE (deb.debian.org if none is configured)."""
    root = pathlib.Path(sources_dir)
    files = sorted((root / "sources.list.d").glob("*.sources")) + [root / "sources.list"]
    files += sorted((root / "sources.list.d").glob("*.list"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
                    if m:
                        fields[m.group(1).lower()] = m.group(2).split()
                if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []):
                    if fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris"):
                        return fields["uris"][0].rstrip("/")
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1].rstrip("/")
    return "http://deb.debian.org/debian"


def cache_key(mirror: str) -> str:
    """Name of the cached base for this recipe (suite, package set, customisation version)."""
    h = hashlib.sha256(repr((SUITE, sorted(INCLUDES), RECIPE, mirror)).encode()).hexdigest()[:12]
    return f"{SUITE}-{h}"


def base_path(mirror: "str | None" = None) -> pathlib.Path:
    """Where the base for this recipe lives (it may not exist yet)."""
    return CACHE_DIR / cache_key(mirror or find_mirror())


def ensure_base(log=sys.stderr) -> pathlib.Path:
    """Return the cached base rootfs, building it (75-300 s, once) if it is missing."""
    for tool in ("debootstrap", "systemd-nspawn", "chroot"):
        if not shutil.which(tool):
            raise LabError(f"{tool} is missing: apt-get install debootstrap systemd-container")
    mirror = find_mirror()
    final = base_path(mirror)
    if (final / MARKER).exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / MARKER).exists():
            return final
        _remove_stale(final)
        tmp = CACHE_DIR / f".tmp-{final.name}-{os.getpid()}"
        print(f"berth lab: building base rootfs {final} from {mirror} (once, 1-5 min)", file=log)
        try:
            debootstrap(INCLUDES, tmp, mirror)
            customise(tmp)
            (tmp / MARKER).write_text(mirror + "\n")
            os.rename(tmp, final)
        except BaseException:
            unmount_under(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _prune_old(final)
    return final


def _prune_old(keep: pathlib.Path) -> None:
    """Remove bases of older recipes that no recorded lab host boots from (~440 MB each)."""
    in_use = {r.get("base") for i in all_labs() for r in State(i).read().get("hosts", {}).values()}
    for d in CACHE_DIR.glob(f"{SUITE}-*"):
        if d != keep and str(d) not in in_use and (d / MARKER).exists():
            (d / MARKER).unlink()
            run(["rm", "-rf", "--one-file-system", str(d)])


def _remove_stale(final: pathlib.Path) -> None:
    """Remove half-built leftovers of killed builds (we hold the build lock, so none is live)."""
    for p in list(CACHE_DIR.glob(".tmp-*")) + ([final] if final.exists() else []):
        unmount_under(p)
        run(["rm", "-rf", "--one-file-system", str(p)])


def customise(root: pathlib.Path) -> None:
    """Turn a fresh debootstrap tree into a lab base: blank identity, sshd, tester, networkd."""
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/ssh/sshd_config.d/berth-lab.conf", SSHD_CONF)
    _write(root / "etc/systemd/system/ssh.service.d/berth-lab.conf", SSH_DROPIN)
    _write(root / "etc/systemd/system/berth-lab-cgroup-rw.service", CGROUP_RW_UNIT)
    run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", "-G", "sudo", TESTER_USER])
    run(["chroot", str(root), "chpasswd"], input=f"{TESTER_USER}:{TESTER_PASSWORD}\n")
    run(["chroot", str(root), "systemctl", "enable", "systemd-networkd", "ssh",
         "berth-lab-cgroup-rw.service"])
    # no gateway, no DNS: waiting for "online" would only stall the boot
    run(["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online.service"])
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def _write(path: pathlib.Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
