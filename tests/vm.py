"""One throwaway QEMU VM (software emulation) running Debian 12 with its own kernel: for what
only a real kernel shows here, such as a cgroup v2 hierarchy with its controllers (this
machine is hybrid v1; see /work/shared/notes/vm.md).

`ensure_image()` builds the guest disk once (from the shared tree of tests/lab/vmroot.py) and
caches it; `VM(workdir).boot()` starts a copy-on-write overlay of it, reachable only through
an ssh port forwarded to 127.0.0.1 (`restrict=on`: the guest has no other network).

    python -m tests.vm        # build the cached image (what the `vm` tests need first)
"""

import fcntl
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

from tests.lab import vmroot
from tests.lab.sysutil import LabError, run, unmount_under

QEMU = shutil.which("qemu-system-x86_64")
CACHE = pathlib.Path(os.environ.get("BERTH_VM_CACHE", "/var/cache/berth-test/vm-bookworm-1"))
MARKER = ".complete"
NETWORK = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"
#: The kernel command line: under emulation on a loaded machine a unit can take minutes to start,
#: so systemd waits long before failing one (networkd timed out at load ~50), and what the tests
#: never use is masked.
APPEND = ["root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0", "quiet",
          "systemd.default_timeout_start_sec=900", "systemd.mask=serial-getty@ttyS0.service",
          "systemd.mask=apt-daily.timer", "systemd.mask=apt-daily-upgrade.timer",
          "systemd.mask=e2scrub_reap.service", "systemd.mask=man-db.timer"]


def missing() -> "str | None":
    """Why no VM can run here (a tool that is missing), or None."""
    for tool, pkg in (("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"),
                      ("debootstrap", "debootstrap"), ("mkfs.ext4", "e2fsprogs"), ("ssh", "openssh-client")):
        if not shutil.which(tool):
            return f"{tool} is missing: apt-get install {pkg}"
    return None


def _built() -> bool:
    """Whether the cached guest is complete and made from the current shared tree."""
    try:
        return (CACHE / MARKER).read_text().split() == [vmroot.key()]
    except OSError:
        return False


def ensure_image(log=sys.stderr) -> pathlib.Path:
    """The cached guest (disk.raw, vmlinuz, initrd.img, ssh key), built first if missing (from
    the shared tree of tests/lab/vmroot.py: a copy, then a minute)."""
    if _built():
        return CACHE
    why = missing()
    if why:
        raise LabError(why)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / ".vm-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _built():
            return CACHE
        tmp = CACHE.parent / f".tmp-vm-{os.getpid()}"
        rootfs = tmp / "rootfs"
        print(f"berth vm: building the guest image {CACHE} (once)", file=log)
        try:
            tmp.mkdir(parents=True)
            vmroot.copy_rootfs(rootfs, log)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id_ed25519")])
            _customise(rootfs, (tmp / "id_ed25519.pub").read_text())
            boot = rootfs / "boot"
            shutil.copy(next(boot.glob("vmlinuz-*")), tmp / "vmlinuz")
            shutil.copy(next(boot.glob("initrd.img-*")), tmp / "initrd.img")
            run(["mkfs.ext4", "-q", "-F", "-d", str(rootfs), str(tmp / "disk.raw"), "3G"])
            run(["rm", "-rf", "--one-file-system", str(rootfs)])
            (tmp / MARKER).write_text(vmroot.key() + "\n")
            if CACHE.exists():
                shutil.rmtree(CACHE)
            os.rename(tmp, CACHE)
        except BaseException:
            unmount_under(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return CACHE


def _customise(root: pathlib.Path, pubkey: str) -> None:
    (root / "etc/hostname").write_text("berth-vm\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    ssh = root / "root/.ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text(pubkey)
    (ssh / "authorized_keys").chmod(0o600)
    (root / "etc/systemd/network/50-vm.network").write_text(NETWORK)
    (root / "etc/ssh/sshd_config.d/berth-vm.conf").write_text("UseDNS no\n")
    run(["chroot", str(root), "systemctl", "enable", "systemd-networkd", "ssh"])
    run(["chroot", str(root), "systemctl", "mask", "systemd-networkd-wait-online.service"])
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VM(object):
    """One booted guest: a qcow2 overlay of the cached disk under workdir, ssh on 127.0.0.1."""

    def __init__(self, workdir, memory_mb=1024):
        self.dir = pathlib.Path(workdir)
        self.memory_mb = memory_mb
        self.image = ensure_image()
        self.port = _free_port()
        self.proc = None

    def boot(self, timeout=900.0) -> "VM":
        """Start QEMU and wait until ssh runs a command in the guest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        disk = self.dir / "vm.qcow2"
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image / "disk.raw"),
             str(disk)])
        argv = [QEMU, "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max", "-m", str(self.memory_mb),
                "-smp", "2", "-display", "none", "-nodefaults", "-no-reboot",
                "-serial", "file:%s" % (self.dir / "console.log"),
                "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
                "-append", " ".join(APPEND),
                "-drive", "file=%s,if=virtio,format=qcow2" % disk,
                "-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22" % self.port,
                "-device", "virtio-net-pci,netdev=n0"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode()
                raise LabError("qemu exited %s: %s" % (self.proc.returncode, err))
            if self.ssh("true", check=False, timeout=30).returncode == 0:
                return self
            time.sleep(2)
        raise LabError("the VM did not answer ssh within %.0f s: see %s"
                       % (timeout, self.dir / "console.log"))

    def ssh_argv(self, *extra) -> list:
        """The ssh command line reaching the guest as root (extra options before the host)."""
        return ["ssh", "-q", "-p", str(self.port), "-i", str(self.image / "id_ed25519"),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=60", "-o", "BatchMode=yes"] + list(extra) + ["root@127.0.0.1"]

    def ssh(self, command, input=None, check=True, timeout=120) -> subprocess.CompletedProcess:
        """Run a shell command in the guest (bytes in and out)."""
        try:
            p = subprocess.run(self.ssh_argv() + [command], input=input, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            if check:
                raise
            return subprocess.CompletedProcess(command, 255, b"", b"timeout")
        if check and p.returncode != 0:
            raise LabError("in the VM, %r exited %d: %s" % (command, p.returncode, p.stderr.decode()[-2000:]))
        return p

    def forward_socket(self, local, remote, timeout=300.0) -> subprocess.Popen:
        """An ssh process forwarding the unix socket `local` here to `remote` in the guest
        (tried again while the guest's sshd is too slow to answer: an emulated CPU on a loaded
        machine)."""
        argv = self.ssh_argv("-N", "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
                             "-L", "%s:%s" % (local, remote))
        deadline = time.time() + timeout
        while True:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            while not os.path.exists(local) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.1)
            if os.path.exists(local):
                return proc
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if time.time() >= deadline:
                raise LabError("ssh -L %s:%s failed (exit %s): %s"
                               % (local, remote, proc.returncode, proc.stderr.read().decode()))
            time.sleep(2)

    def stop(self) -> None:
        """Power the guest off (SIGTERM to our QEMU, SIGKILL after 20 s) and remove the overlay."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            (self.dir / "vm.qcow2").unlink()
        except OSError:
            pass


if __name__ == "__main__":
    print(ensure_image())
