"""Light lab hosts for fleet-scale benchmarks: no systemd, about 4 MB each.

A light host is a network namespace of its own (one veth into a bridge that lives in a
"fabric" namespace) plus `unshare --mount --uts --ipc --pid` chrooted into an overlay of the
lab's base rootfs, with sshd as its PID 1. Everything network-related lives in namespaces this
module creates: the controller side runs inside the fabric namespace (`fleet.exec(argv)`), so
not a link, address or rule is added to the machine's own namespace.

    with LightFleet(50) as fleet:       # 50 hosts with sshd answering, ~3-10 s
        fleet.exec(["ssh", ...])        # in the fabric namespace, where 10.250.0.0/16 is
        fleet.hosts[0].ip, fleet.key, fleet.known_hosts

No systemd inside (no services); the machine's /sys with its cgroup trees read-only;
non-`net.*` sysctls are the machine's.
"""

import concurrent.futures
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

from . import rootfs
from .sysutil import LabError, children, run, unmount_under

PREFIX = "10.250"
BRIDGE = "br0"
HOST_SCRIPT = """\
set -e
R={root}
mount -t proc proc $R/proc
mount --rbind /dev $R/dev
mount --rbind /sys $R/sys
# the machine's cgroup trees read-only (preflight checks look, nothing here writes)
for m in $(awk -v r="$R/sys/fs/cgroup" 'index($5, r) == 1 {{print $5}}' /proc/self/mountinfo); do
  mount -o remount,bind,ro "$m"
done
mount -t tmpfs tmpfs $R/run
mkdir -p $R/run/sshd
mount -t tmpfs tmpfs $R/tmp
hostname {name}
exec nsenter --net=/run/netns/{netns} chroot $R /usr/sbin/sshd -D -e -o PidFile=none
"""


class LightHost:
    """One light host: its name, address and the namespace its network lives in."""

    def __init__(self, name: str, ip: str, netns: str, root: pathlib.Path):
        self.name, self.ip, self.netns, self.root = name, ip, netns, root
        self.proc = None  # the `unshare` process (its child is the host's PID 1)

    def __repr__(self) -> str:
        return f"LightHost({self.name} {self.ip})"


class LightFleet:
    """``n`` light hosts on a bridge inside a fabric namespace; ``close()`` removes everything."""

    def __init__(self, n: int):
        if n < 1 or n > 4000:
            raise LabError(f"a light fleet has 1 to 4000 hosts, not {n}")
        self.n = n
        self.tag = f"blf{os.getpid()}"
        self.fabric = f"{self.tag}-fabric"
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="berth-light-", dir="/var/tmp"))
        self.key = str(self.dir / "id_ed25519")
        self.known_hosts = str(self.dir / "known_hosts")
        self.gateway = f"{PREFIX}.0.1"
        self.hosts = []
        self._netns = []

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.close()

    def up(self) -> "LightFleet":
        """Create the fabric and every host, wait until each sshd answers a real login."""
        try:
            base = rootfs.ensure_base()
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key])
            hostkeys = self.dir / "hostkeys"
            (hostkeys / "etc/ssh").mkdir(parents=True)
            run(["ssh-keygen", "-A", "-f", str(hostkeys)])  # one set of host keys for every host
            self._add_netns(self.fabric)
            self._ip(self.fabric, "link", "set", "lo", "up")
            self._ip(self.fabric, "link", "add", BRIDGE, "type", "bridge")
            self._ip(self.fabric, "addr", "add", f"{self.gateway}/16", "dev", BRIDGE)
            self._ip(self.fabric, "link", "set", BRIDGE, "up")
            pub = pathlib.Path(self.key + ".pub").read_text()
            hostpub = (hostkeys / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
            lines = []
            for i in range(self.n):
                h = self._make_host(i, base, hostkeys, pub)
                self.hosts.append(h)
                lines.append(f"{h.ip} {hostpub[0]} {hostpub[1]}\n")
            pathlib.Path(self.known_hosts).write_text("".join(lines))
            for h in self.hosts:
                h.proc = subprocess.Popen(
                    ["unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--propagation", "private",
                     "sh", "-c", HOST_SCRIPT.format(root=h.root, name=h.name, netns=h.netns)],
                    stdout=subprocess.DEVNULL, stderr=open(self.dir / f"{h.name}.log", "w"),
                )  # fmt: skip
            self._wait_ssh(120 + 3 * self.n)  # a loaded 2-core machine
        except BaseException:
            self.close()
            raise
        return self

    def _make_host(self, i: int, base: pathlib.Path, hostkeys: pathlib.Path, pub: str) -> LightHost:
        name = f"l{i + 1:03d}"
        ip = f"{PREFIX}.{1 + (i + 10) // 250}.{(i + 10) % 250}"
        netns = f"{self.tag}-{name}"
        d = self.dir / name
        root = d / "root"
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True)
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base},upperdir={d / 'upper'},workdir={d / 'work'}", str(root)])
        for key in (hostkeys / "etc/ssh").iterdir():
            shutil.copy2(key, root / "etc/ssh" / key.name)
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(pub)
        (root / "etc/hostname").write_text(name + "\n")
        self._add_netns(netns)
        veth = f"v{i}"
        self._ip(self.fabric, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        self._ip(self.fabric, "link", "set", veth, "master", BRIDGE, "up")
        self._ip(netns, "link", "set", "lo", "up")
        self._ip(netns, "addr", "add", f"{ip}/16", "dev", "eth0")
        self._ip(netns, "link", "set", "eth0", "up")
        return LightHost(name, ip, netns, root)

    def _wait_ssh(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def wait_one(h):
            while True:
                try:
                    p = self.exec(self.ssh_argv(h, "true"), check=False, timeout=30)
                except subprocess.TimeoutExpired as e:
                    p = subprocess.CompletedProcess(e.cmd, 255, "", "no answer within 30 s")
                if p.returncode == 0:
                    return
                if h.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / f"{h.name}.log").read_text()[-500:]
                    raise LabError(f"light host {h.name} ({h.ip}): sshd did not answer: "
                                   f"{p.stderr.strip()} {log}")
                time.sleep(0.3)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(wait_one, self.hosts))

    def ssh_argv(self, h: LightHost, command: str) -> list:
        """The ssh command line that runs ``command`` as root on ``h`` (to run through exec)."""
        return ["ssh", "-i", self.key, "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                f"root@{h.ip}", command]  # fmt: skip

    def exec(self, argv, check=True, timeout=None, env=None, cwd=None) -> subprocess.CompletedProcess:
        """Run ``argv`` in the fabric namespace (where the hosts are reachable); text output."""
        p = subprocess.run(["ip", "netns", "exec", self.fabric, *argv], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, env=env, cwd=cwd)
        if check and p.returncode != 0:
            raise LabError(f"{' '.join(map(str, argv))} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
        return p

    def popen(self, argv, **kw) -> subprocess.Popen:
        """Start ``argv`` in the fabric namespace in the background."""
        return subprocess.Popen(["ip", "netns", "exec", self.fabric, *argv], **kw)

    def close(self) -> None:
        """Kill every host's processes (by PID: each host's PID 1 takes its namespace with it),
        delete the namespaces, unmount and remove the overlays."""
        for h in self.hosts:
            if h.proc is None:
                continue
            for pid in children(h.proc.pid):  # the host's PID 1 (unshare ignores SIGTERM)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for h in self.hosts:
            if h.proc is not None:
                try:
                    h.proc.wait(10)
                except subprocess.TimeoutExpired:
                    h.proc.kill()
                    h.proc.wait()
        for ns in reversed(self._netns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self._netns = []
        unmount_under(self.dir)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)])

    def _add_netns(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self._netns.append(name)

    @staticmethod
    def _ip(netns: str, *args) -> None:
        run(["ip", "-n", netns, *args])
