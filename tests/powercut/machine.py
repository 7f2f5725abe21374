"""One running VM: its root a copy-on-write overlay of the cached image, an optional raw data
disk (/dev/vdb in the guest), ssh through a loopback port forward, an HMP monitor on a unix
socket (system_reset = a power cut and reboot), and optional guest->host forwards to
loopback services (guestfwd). Only the QEMU process this object started is ever signalled."""

import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import time

from .image import VMError

RELAY = str(pathlib.Path(__file__).with_name("relay.py"))
#: The kernel command line: under emulation on a loaded machine a unit can take minutes to start,
#: so systemd waits long before failing one (networkd timed out at load ~50), and the units the
#: tests never use are masked (each costs seconds of an emulated boot). SELinux is the guest's
#: LSM (no policy until test_selinux.py loads one; AppArmor is then off, which the other tests
#: here do not use).
APPEND = ["root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0", "no_timer_check", "quiet",
          "security=selinux", "selinux=1",
          "systemd.default_timeout_start_sec=900", "systemd.mask=serial-getty@ttyS0.service",
          "systemd.mask=apt-daily.timer", "systemd.mask=apt-daily-upgrade.timer",
          "systemd.mask=e2scrub_reap.service", "systemd.mask=man-db.timer"]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VM:
    """A QEMU TCG guest in ``workdir`` booted from ``image`` (see image.ensure_image).

    ``data_disk``: the size of a raw ext4 disk attached as /dev/vdb (made once, kept across
    boots). ``forwards``: {guest port on 10.0.2.100: host loopback port}.
    """

    def __init__(self, workdir, image, data_disk: "str | None" = None, forwards: "dict | None" = None,
                 memory: int = 1024, cpus: int = 2):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.image = pathlib.Path(image)
        self.key = str(self.image / "id_ed25519")
        self.forwards = forwards or {}
        self.memory, self.cpus = memory, cpus
        self.root = self.dir / "root.qcow2"
        self.data = self.dir / "data.raw" if data_disk else None
        self.monitor = self.dir / "monitor.sock"
        self.console = self.dir / "console.log"
        self.known_hosts = self.dir / "known_hosts"
        self.proc = None
        self.port = None
        if not self.root.exists():
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                            str(self.image / "disk.raw"), str(self.root)], check=True)
        if self.data and not self.data.exists():
            subprocess.run(["truncate", "-s", data_disk, str(self.data)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "berth-data", str(self.data)], check=True)

    def argv(self) -> list:
        """The QEMU command line."""
        net = f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22"
        for guest_port, host_port in sorted(self.forwards.items()):
            net += f",guestfwd=tcp:10.0.2.100:{guest_port}-cmd:{sys.executable} {RELAY} {host_port}"
        argv = ["qemu-system-x86_64", "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
                "-m", str(self.memory), "-smp", str(self.cpus), "-display", "none", "-nodefaults",
                "-serial", f"file:{self.console}", "-kernel", str(self.image / "vmlinuz"),
                "-initrd", str(self.image / "initrd.img"),
                "-append", " ".join(APPEND),
                "-drive", f"file={self.root},if=virtio,format=qcow2",
                "-netdev", net, "-device", "virtio-net-pci,netdev=n0",
                "-monitor", f"unix:{self.monitor},server=on,wait=off"]
        if self.data:
            argv += ["-drive", f"file={self.data},if=virtio,format=raw,cache=writeback"]
        return argv

    def start(self, timeout: float = 900) -> float:
        """Boot and wait for ssh; returns the seconds it took."""
        self.port = free_port()
        if self.known_hosts.exists():
            self.known_hosts.unlink()
        with open(self.dir / "qemu.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self.wait_ssh(timeout)

    def wait_ssh(self, timeout: float = 900) -> float:
        """Poll a real ssh login until it works (the forward accepts TCP before the guest is
        up); returns the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise VMError(f"qemu exited {self.proc.returncode}: {self._tail(self.dir / 'qemu.log')}")
            if self.ssh("true", check=False, timeout=20).returncode == 0:
                return time.monotonic() - t0
            time.sleep(2)
        raise VMError(f"the VM did not answer ssh in {timeout:.0f} s; console: {self._tail(self.console)}")

    @staticmethod
    def _tail(path) -> str:
        try:
            return pathlib.Path(path).read_text(errors="replace")[-1500:]
        except OSError:
            return "(none)"

    def _ssh_options(self) -> list:
        return ["ssh", "-i", self.key, "-p", str(self.port), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]

    def ssh_argv(self, cmd: str) -> list:
        """The ssh command line running ``cmd`` as root in the guest (one shared connection)."""
        return self._ssh_options() + [
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self.dir}/ssh-%p.ctl",
            "-o", "ControlPersist=120", "root@127.0.0.1", cmd]

    def ssh(self, cmd, check: bool = True, timeout: float = 300, input: "bytes | None" = None):
        """Run ``cmd`` (a shell string or an argv list) in the guest; CompletedProcess (text)."""
        if not isinstance(cmd, str):
            cmd = shlex.join(cmd)
        try:
            p = subprocess.run(self.ssh_argv(cmd), input=input, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            if check:
                raise VMError(f"`{cmd[:200]}` in the VM did not finish in {timeout:.0f} s") from None
            return subprocess.CompletedProcess(cmd, 255, "", "timed out")
        out = subprocess.CompletedProcess(cmd, p.returncode, p.stdout.decode(errors="replace"),
                                          p.stderr.decode(errors="replace"))
        if check and p.returncode != 0:
            raise VMError(f"`{cmd[:200]}` in the VM exited {p.returncode}: {out.stderr[-1500:]} "
                          f"{out.stdout[-500:]}")
        return out

    def forward_socket(self, local: str, remote: str, timeout: float = 300) -> subprocess.Popen:
        """An ssh process forwarding the unix socket ``local`` here to ``remote`` in the guest
        (tried again while the guest's sshd is too slow to answer: an emulated CPU on a loaded
        machine). The caller terminates it. Its keepalive allows the guest two minutes without an
        answer (ssh keeps the first value given: this one): a forward dropped after 15 s when the
        emulated guest stalled under CI's load, failing every docker call after it."""
        argv = ["ssh", "-o", "ServerAliveCountMax=24"] + self._ssh_options()[1:] + [
            "-N", "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
            "-L", f"{local}:{remote}", "root@127.0.0.1"]
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            while not os.path.exists(local) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if os.path.exists(local):
                return proc
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if time.monotonic() >= deadline:
                raise VMError(f"ssh -L {local}:{remote} failed (exit {proc.returncode}): "
                              f"{proc.stderr.read().decode(errors='replace')[-1500:]}")
            time.sleep(2)

    def _forget_connection(self) -> None:
        """Close the shared ssh connection (after a reset its peer is gone)."""
        subprocess.run(self.ssh_argv("true")[:-2] + ["-O", "exit", "root@127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        for ctl in self.dir.glob("ssh-*.ctl"):
            ctl.unlink()

    def monitor_command(self, command: str) -> str:
        """Send one HMP command to the monitor; returns what it printed."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.monitor))
            s.recv(4096)  # the banner and prompt
            s.sendall(command.encode() + b"\n")
            time.sleep(0.3)
            return s.recv(65536).decode(errors="replace")

    def power_cut(self) -> None:
        """A hard reset: the guest loses everything it had not written to its disks, and
        boots again (its ssh forward stays on the same port)."""
        self.monitor_command("system_reset")
        self._forget_connection()

    def stop(self) -> None:
        """Power off: SIGTERM to our QEMU (it flushes its disks), SIGKILL if it lingers."""
        if self.proc is None:
            return
        self._forget_connection()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        """Stop and delete every file of this VM (the cached image stays)."""
        self.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"<VM {self.dir} ssh 127.0.0.1:{self.port}>"

    def qemu_pid(self) -> int:
        return self.proc.pid if self.proc else -1

    def wait_gone(self, timeout: float = 20) -> None:
        """Wait for sshd in the guest to stop answering (a reset has taken effect)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and os.path.exists(self.monitor):
            if self.ssh("true", check=False, timeout=5).returncode != 0:
                return
            time.sleep(0.5)
