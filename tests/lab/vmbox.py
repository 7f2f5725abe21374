"""A local Vagrant box for the libvirt provider: Debian bookworm with its own kernel
(linux-image-amd64, real modules), booted by direct kernel boot under QEMU's software emulation.

`ensure_box()` returns the path of the finished `.box` file, building it first if needed
(debootstrap + mkfs.ext4 -d + qemu-img, 2-6 min, once). It is cached outside the repository
under the same lock-then-rename discipline as the lab's base rootfs. The box follows Vagrant's
conventions: a `vagrant` user with passwordless sudo that takes Vagrant's public insecure key
(Vagrant replaces it with a key of its own at the first boot).
"""

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile

from .rootfs import KEYRING, find_mirror
from .sysutil import LabError, run

CACHE_DIR = pathlib.Path(os.environ.get("BERTH_VAGRANT_CACHE", "/var/cache/berth-vagrant"))
SUITE = "bookworm"
INCLUDES = [
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "kmod",
    # what `provision host` wants on a Debian host: present, so it installs nothing
    "python3", "iptables", "iproute2", "procps",
]
RECIPE = "1"
DISK_GB = 3
#: The kernel command line the box boots with (eth0 for the libvirt management network).
CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"

NETWORK = """\
[Match]
Name=en* eth*

[Network]
DHCP=yes
"""
# Host keys are made at each VM's first boot, not baked into the box (every VM its own).
SSH_DROPIN = """\
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""
SSHD_CONF = "UseDNS no\n"
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


def box_path(mirror: "str | None" = None) -> pathlib.Path:
    """Where the box for this recipe lives (it may not exist yet)."""
    mirror = mirror or find_mirror()
    h = hashlib.sha256(repr((SUITE, sorted(INCLUDES), RECIPE, CMDLINE, mirror)).encode()).hexdigest()[:12]
    return CACHE_DIR / f"berth-{SUITE}-{h}.box"


def ensure_box(log=sys.stderr) -> pathlib.Path:
    """Return the cached box file, building it first if it is missing."""
    for tool in ("debootstrap", "mkfs.ext4", "qemu-img", "chroot"):
        if not shutil.which(tool):
            raise LabError(f"{tool} is missing: apt-get install debootstrap e2fsprogs qemu-utils")
    mirror = find_mirror()
    final = box_path(mirror)
    if final.exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        print(f"berth vm: building the box {final} from {mirror} (once, 2-6 min)", file=log)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix=".tmp-") as tmp:
            work = pathlib.Path(tmp)
            rootfs = work / "rootfs"
            keyring = [f"--keyring={KEYRING}"] if os.path.exists(KEYRING) else []
            run(["debootstrap", "--variant=minbase", *keyring, "--include=" + ",".join(INCLUDES),
                 SUITE, str(rootfs), mirror])
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
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


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
