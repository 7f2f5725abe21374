"""The cached guest image: a Debian 12 minbase with its own kernel, systemd and sshd (a copy of
the shared tree of tests/lab/vmroot.py, made its own), packed into a raw ext4 disk without a
loop mount.

`ensure_image()` returns the cache dir holding disk.raw, vmlinuz, initrd.img and the
id_ed25519 key whose public half root's authorized_keys holds. The build runs under an
exclusive lock into a temp dir renamed into place when complete (a killed build leaves no
half image)."""

import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

from tests.lab import vmroot

CACHE_DIR = pathlib.Path(os.environ.get("BERTH_VM_CACHE", "/var/cache/berth-vm"))
SUITE = "bookworm"
#: Bump when the customisation below changes: a new cache key forces a rebuild.
RECIPE = "3"
DISK_SIZE = "3G"
MARKER = "complete"

NETWORK = """\
[Match]
Name=en* eth*

[Network]
DHCP=yes
"""
FSTAB = "/dev/vda / ext4 defaults 0 1\n"
# One ed25519 host key, made at build time: under emulation `ssh-keygen -A` at first boot (an
# RSA key above all) took minutes. Every VM of the image shares it; they are throwaway test
# machines reached only through loopback.
SSHD_CONF = "PermitRootLogin prohibit-password\nUseDNS no\nHostKey /etc/ssh/ssh_host_ed25519_key\n"


class VMError(Exception):
    """A VM could not be built, booted or reached; the message says what to do."""


def tools_missing() -> list:
    """The machine's tools a VM needs that are not installed."""
    return [t for t in ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "ssh")
            if not shutil.which(t)]


def cache_key() -> str:
    """The cached image's name for this recipe and the shared tree it is made from."""
    h = hashlib.sha256(repr((RECIPE, vmroot.key())).encode()).hexdigest()[:12]
    return f"{SUITE}-{h}"


def _run(argv, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        raise VMError(f"{' '.join(map(str, argv[:3]))}... exited {p.returncode}: {p.stderr[-1500:]}")
    return p


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def customise(root: pathlib.Path, pubkey: str) -> None:
    """Make a debootstrap tree bootable as a VM reached by key over ssh."""
    (root / "etc/hostname").write_text("berth-vm\n")
    (root / "etc/fstab").write_text(FSTAB)
    (root / "etc/machine-id").write_text("")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@berth-vm", "-f",
          str(root / "etc/ssh/ssh_host_ed25519_key")])
    _write(root / "etc/ssh/sshd_config.d/berth-vm.conf", SSHD_CONF)
    _write(root / "etc/systemd/network/50-dhcp.network", NETWORK)
    auth = root / "root/.ssh/authorized_keys"
    _write(auth, pubkey)
    auth.parent.chmod(0o700)
    auth.chmod(0o600)
    _run(["chroot", str(root), "systemctl", "enable", "systemd-networkd", "ssh"])
    _run(["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online.service"])


def ensure_image(log=sys.stderr) -> pathlib.Path:
    """The cache dir of a complete image, built first when missing (VMError if it cannot be)."""
    missing = tools_missing()
    if missing:
        raise VMError(f"missing {', '.join(missing)}: apt-get install qemu-system-x86 qemu-utils "
                      "debootstrap e2fsprogs openssh-client (tests/run.sh does)")
    final = CACHE_DIR / cache_key()
    if (final / MARKER).exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / MARKER).exists():
            return final
        tmp = CACHE_DIR / f".tmp-{final.name}-{os.getpid()}"
        print(f"berth vm: building the guest image {final} (once)", file=log)
        try:
            shutil.rmtree(final, ignore_errors=True)
            tmp.mkdir()
            rootfs = vmroot.copy_rootfs(tmp / "rootfs", log)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "berth-vm", "-f",
                  str(tmp / "id_ed25519")])
            customise(rootfs, (tmp / "id_ed25519.pub").read_text())
            shutil.copy(next(rootfs.glob("boot/vmlinuz-*")), tmp / "vmlinuz")
            shutil.copy(next(rootfs.glob("boot/initrd.img-*")), tmp / "initrd.img")
            _run(["mkfs.ext4", "-q", "-F", "-L", "berth-vm", "-d", str(rootfs),
                  str(tmp / "disk.raw"), DISK_SIZE])
            shutil.rmtree(rootfs)
            (tmp / MARKER).write_text(vmroot.key() + "\n")
            os.rename(tmp, final)
        except BaseException:
            subprocess.run(["rm", "-rf", "--one-file-system", str(tmp)])
            raise
        for old in CACHE_DIR.glob(f"{SUITE}-*"):  # images of older recipes (~1 GB each)
            if old != final:
                subprocess.run(["rm", "-rf", "--one-file-system", str(old)])
    return final


if __name__ == "__main__":
    print(ensure_image())
