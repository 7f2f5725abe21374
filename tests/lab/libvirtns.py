"""libvirt for tests, without touching the machine: `virtlogd` and `libvirtd` started by hand
(PID 1 is not systemd) inside a network namespace of our own, so the networks vagrant-libvirt
defines, their bridges, dnsmasq and iptables rules all live (and die) in that namespace.

The daemons see a private copy of /etc/libvirt and a private /run/libvirt (bind mounts in their
own mount namespace), so the settings QEMU needs here (root, no dynamic ownership, no security
driver, no cgroup controllers), every domain, network and pool they define, and the state
libvirtd keeps of what is running go there, never into the machine's. A run killed before it
cleaned up (a session ended mid-suite) so leaves nothing that the next libvirtd would load: the
machine's /run/libvirt once made the next run's `default` pool "already exist". libvirtd's socket
is in the temp dir too; `uri` names it for virsh and Vagrant (LIBVIRT_DEFAULT_URI).
"""

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

from .sysutil import LabError, run

RUN = pathlib.Path("/run/libvirt")
#: What QEMU needs from libvirt on this machine (no systemd, no LSM, cgroups not delegated).
QEMU_CONF = """
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
"""


class LibvirtNamespace:
    """A private libvirtd in network namespace ``name``; a dir storage pool named ``default``."""

    def __init__(self, name: str = ""):
        self.name = name or f"berth-vm-{os.getpid()}"
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="berth-libvirt-"))
        self.pool_dir = self.tmp / "pool"
        self.socket = self.tmp / "sock" / "libvirt-sock"
        #: the connection URI for virsh and vagrant-libvirt (LIBVIRT_DEFAULT_URI)
        self.uri = f"qemu:///system?socket={self.socket}"
        self._made_run = False
        self._pids = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "LibvirtNamespace":
        """Create the namespace, start the daemons, create the pool; raise LabError on failure."""
        for tool in ("libvirtd", "virtlogd", "virsh", "ip", "unshare"):
            if not shutil.which(tool):
                raise LabError(f"{tool} is missing: apt-get install libvirt-daemon-system qemu-system-x86")
        etc = self.tmp / "etc-libvirt"
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        with open(etc / "qemu.conf", "a") as f:
            f.write(QEMU_CONF)
        with open(etc / "libvirtd.conf", "a") as f:
            f.write(f'\nunix_sock_dir = "{self.socket.parent}"\n')
        run_dir = self.tmp / "run"
        for d in (self.pool_dir, self.socket.parent, run_dir):
            d.mkdir()
        if not RUN.exists():  # the mount point only: nothing is written in it
            RUN.mkdir()
            self._made_run = True
        run(["ip", "netns", "add", self.name])
        try:
            self.exec(["ip", "link", "set", "lo", "up"])
            script = (
                f"mount --bind {etc} /etc/libvirt && mount --bind {run_dir} {RUN} && "
                f"virtlogd -d -p {self.tmp}/virtlogd.pid && libvirtd -d -p {self.tmp}/libvirtd.pid"
            )
            self.exec(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
            for f in ("virtlogd.pid", "libvirtd.pid"):
                self._pids.append(int((self.tmp / f).read_text()))
            deadline = time.monotonic() + 60
            while not self._virsh_ok():
                if time.monotonic() > deadline:
                    raise LabError(f"libvirtd in {self.name} did not answer on {self.socket} within 60 s")
                time.sleep(0.5)
            self.virsh("pool-create-as", "default", "dir", "--target", str(self.pool_dir))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop everything started in the namespace (by PID), remove it and the temp dir."""
        ns_pids = self._ns_pids()
        if self.socket.exists() and self._pids:
            for dom in self.domains():
                self.virsh("destroy", dom, check=False)
            for net in self.networks():
                self.virsh("net-destroy", net, check=False)
            self.virsh("pool-destroy", "default", check=False)
        for pid in self._pids + [p for p in ns_pids if p not in self._pids]:
            _kill(pid)
        _wait_gone(self._pids + ns_pids, 20)
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
        if self._made_run:
            try:
                RUN.rmdir()
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- running things in the namespace -------------------------------------------------
    def exec(self, argv, env=None, timeout=None, check=True) -> subprocess.CompletedProcess:
        """Run ``argv`` in the namespace (text output); LabError on failure when ``check``."""
        p = subprocess.run(["ip", "netns", "exec", self.name, *argv], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise LabError(f"{' '.join(argv)} in {self.name} exited {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-3000:]}")
        return p

    def popen(self, argv, **kw) -> subprocess.Popen:
        """Start ``argv`` in the namespace in the background."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def virsh(self, *args, check=True) -> str:
        """``virsh -c URI ARGS`` (this instance's libvirtd); its stdout."""
        p = subprocess.run(["virsh", "-q", "-c", self.uri, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        if check and p.returncode != 0:
            raise LabError(f"virsh {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def domains(self) -> list:
        """Names of every domain libvirt knows (running or defined)."""
        return self.virsh("list", "--all", "--name", check=False).split()

    def networks(self) -> list:
        """Names of every network libvirt knows (active or defined)."""
        return self.virsh("net-list", "--all", "--name", check=False).split()

    def volumes(self) -> list:
        """Names of the volumes in the ``default`` pool."""
        self.virsh("pool-refresh", "default", check=False)
        out = self.virsh("vol-list", "default", check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def _virsh_ok(self) -> bool:
        p = subprocess.run(["virsh", "-c", self.uri, "version"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        return p.returncode == 0

    def _ns_pids(self) -> list:
        p = subprocess.run(["ip", "netns", "pids", self.name], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return [int(x) for x in p.stdout.split()]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _wait_gone(pids, seconds) -> None:
    deadline = time.monotonic() + seconds
    for pid in pids:
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.2)
        if os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
