"""A local Vagrant box for the libvirt provider: Debian bookworm with its own kernel
(linux-image-amd64, real modules), booted by direct kernel boot under QEMU's software emulation.

`ensure_box()` returns the path of the finished `.box` file, building it first if needed (a
copy of the shared tree of vmroot.py made a box: mkfs.ext4 -d + qemu-img, a minute, once). It
is cached outside the repository under the same lock-then-rename discipline as the lab's base
rootfs. The box follows Vagrant's conventions: a `vagrant` user with passwordless sudo that
takes Vagrant's public insecure key (Vagrant replaces it with a key of its own at the first
boot).
"""

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile

from . import vmroot
from .sysutil import LabError, run

CACHE_DIR = pathlib.Path(os.environ.get("BERTH_VAGRANT_CACHE", "/var/cache/berth-vagrant"))
SUITE = "bookworm"
RECIPE = "3"
DISK_GB = 3
#: The kernel command line the box boots with (eth0 for the libvirt management network); what a
#: test never uses is masked (each unit costs seconds under emulation), and systemd waits long
#: before failing a slow unit on a loaded machine.
CMDLINE = " ".join([
    "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet", "systemd.default_timeout_start_sec=900",
    "systemd.mask=serial-getty@ttyS0.service", "systemd.mask=apt-daily.timer",
    "systemd.mask=apt-daily-upgrade.timer", "systemd.mask=e2scrub_reap.service", "systemd.mask=man-db.timer",
])

NETWORK = """\
[Match]
Name=en* eth*

[Network]
DHCP=yes
"""
# A host key is made at each VM's first boot, not baked into the box (every VM its own): one
# ed25519 key, as `ssh-keygen -A` (an RSA key above all) takes a minute or more under emulation.
SSH_DROPIN = """\
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -e /etc/ssh/ssh_host_ed25519_key || \
ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
ExecStartPre=/usr/sbin/sshd -t
"""
SSHD_CONF = "UseDNS no\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
# The box's own Vagrantfile: libvirt boots the kernel and initrd shipped inside the box.
BOX_VAGRANTFILE = """\
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "%s"
  end
end
""" % CMDLINE


def vagrant_insecure_key() -> pathlib.Path:
    """The public insecure key shipped with Vagrant (Debian keeps it under its gem dir)."""
    gems = pathlib.Path("/usr/share/rubygems-integration/all/gems")
    found = sorted(gems.glob("vagrant-*/keys/vagrant.pub"))
    found.append(pathlib.Path("/usr/share/vagrant/keys/vagrant.pub"))
    for f in found:
        if f.is_file():
            return f
    raise LabError("Vagrant's keys/vagrant.pub is missing: apt-get install vagrant")


def box_path() -> pathlib.Path:
    """Where the box for this recipe lives (it may not exist yet)."""
    h = hashlib.sha256(repr((RECIPE, CMDLINE, vmroot.key())).encode()).hexdigest()[:12]
    return CACHE_DIR / f"berth-{SUITE}-{h}.box"


def ensure_box(log=sys.stderr) -> pathlib.Path:
    """Return the cached box file, building it first if it is missing."""
    for tool in ("debootstrap", "mkfs.ext4", "qemu-img", "chroot"):
        if not shutil.which(tool):
            raise LabError(f"{tool} is missing: apt-get install debootstrap e2fsprogs qemu-utils")
    final = box_path()
    if final.exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        print(f"berth vm: building the box {final} (once)", file=log)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix=".tmp-") as tmp:
            work = pathlib.Path(tmp)
            rootfs = vmroot.copy_rootfs(work / "rootfs", log)
            customise(rootfs)
            pack(rootfs, work, final)
        for old in CACHE_DIR.glob(f"berth-{SUITE}-*.box"):
            if old != final:
                old.unlink()
    return final


def customise(root: pathlib.Path) -> None:
    """A bootable VM: fstab, DHCP on eth0, sshd, the vagrant user, no baked identity."""
    (root / "etc/hostname").write_text("berth-box\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 berth-box\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/systemd/network/50-dhcp.network", NETWORK)
    _write(root / "etc/systemd/system/ssh.service.d/berth-vm.conf", SSH_DROPIN)
    _write(root / "etc/ssh/sshd_config.d/berth-vm.conf", SSHD_CONF)
    run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", "vagrant"])
    _write(root / "etc/sudoers.d/vagrant", "vagrant ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    ssh_dir = root / "home/vagrant/.ssh"
    _write(ssh_dir / "authorized_keys", vagrant_insecure_key().read_text(), 0o600)
    ssh_dir.chmod(0o700)
    run(["chroot", str(root), "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"])
    run(["chroot", str(root), "systemctl", "enable", "systemd-networkd", "ssh"])
    run(["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online.service"])


def pack(root: pathlib.Path, work: pathlib.Path, dest: pathlib.Path) -> None:
    """The libvirt box: box.img (qcow2), the kernel and initrd, metadata.json, its Vagrantfile."""
    boxdir = work / "box"
    boxdir.mkdir()
    vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
    initrd = sorted((root / "boot").glob("initrd.img-*"))
    if not vmlinuz or not initrd:
        raise LabError(f"no kernel or initrd under {root}/boot: did linux-image-amd64 install?")
    shutil.copyfile(vmlinuz[-1], boxdir / "vmlinuz")
    shutil.copyfile(initrd[-1], boxdir / "initrd.img")
    raw = work / "disk.raw"
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(raw), f"{DISK_GB}G"])
    run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(boxdir / "box.img")])
    raw.unlink()
    (boxdir / "metadata.json").write_text(
        json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GB})
    )
    (boxdir / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    tmp_box = dest.with_name(f".{dest.name}.tmp")
    run(["tar", "-C", str(boxdir), "-cf", str(tmp_box),
         "metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img"])
    os.rename(tmp_box, dest)


def _write(path: pathlib.Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


if __name__ == "__main__":
    # `python -m tests.lab.vmbox` builds the box ahead (tests/run.sh does, beside the VM tests);
    # SIGTERM unwinds, so a build cut short removes its temp dir
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(ensure_box())
