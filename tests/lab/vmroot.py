"""The one Debian 12 tree with its own kernel that every VM image of the tests starts from: the
guest of tests/powercut/image.py (the power-cut campaign's and the cgroup v2 test's) and the
Vagrant box (tests/lab/vmbox.py). One debootstrap (2-5 min) on a new machine rather than one per image;
each image copies the tree and makes it its own (host name, keys, users, units).

`ensure_rootfs()` returns the cached tree, building it first when missing, under an exclusive
lock into a temp dir renamed into place when complete (a killed build leaves no half tree).
"""

import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

from .rootfs import SUITE, debootstrap, find_mirror
from .sysutil import LabError, run, unmount_under

CACHE_DIR = pathlib.Path(os.environ.get("BERTH_VMROOT_CACHE", "/var/cache/berth-vmroot"))
#: What any of the images needs: a kernel with real modules, systemd, sshd, and what the engine
#: and `provision host` want on a Debian host (present, so provision installs nothing); the
#: apparmor package as on a stock Debian or Ubuntu install (the kernel runs AppArmor: with the
#: parser there, berthd confines containers with its profile).
INCLUDES = sorted([
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "kmod", "procps",
    "python3", "iptables", "iproute2", "e2fsprogs", "util-linux", "tar", "apparmor",
])
#: Bump when the build below changes: a new key rebuilds the tree and every image made from it.
RECIPE = "1"


def key(mirror: "str | None" = None) -> str:
    """The tree's name for this recipe and mirror (images made from it put it in their own key)."""
    mirror = mirror or find_mirror()
    h = hashlib.sha256(repr((SUITE, INCLUDES, RECIPE, mirror)).encode()).hexdigest()[:12]
    return f"{SUITE}-{h}"


def ensure_rootfs(log=sys.stderr) -> pathlib.Path:
    """The cached tree (a directory), built first when missing; LabError if it cannot be."""
    for tool in ("debootstrap", "chroot"):
        if not shutil.which(tool):
            raise LabError(f"{tool} is missing: apt-get install debootstrap")
    mirror = find_mirror()
    final = CACHE_DIR / key(mirror)
    if (final / "etc/os-release").exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "etc/os-release").exists():
            return final
        tmp = CACHE_DIR / f".tmp-{final.name}-{os.getpid()}"
        print(f"berth vm: debootstrap of {SUITE} with its kernel into {final} (once, 2-5 min)", file=log)
        try:
            debootstrap(INCLUDES, tmp, mirror)
            for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            os.rename(tmp, final)
        except BaseException:
            unmount_under(tmp)
            subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)])
            raise
        for old in CACHE_DIR.glob(f"{SUITE}-*"):  # trees of older recipes or mirrors (~700 MB each)
            if old != final:
                subprocess.run(["rm", "-rf", "--one-file-system", str(old)])
    return final


def copy_rootfs(dest: pathlib.Path, log=sys.stderr) -> pathlib.Path:
    """A private copy of the tree at dest (which must not exist), for one image to customise."""
    src = ensure_rootfs(log)
    run(["cp", "-a", "--reflink=auto", str(src), str(dest)])
    return dest
