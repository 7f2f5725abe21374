"""Per-container cgroups, v1 and v2 (runc's Manager idea: create with limits, join, freeze, read
OOM, destroy). The layout is detected, never assumed: a unified hierarchy at /sys/fs/cgroup means
v2; otherwise the v1 controllers are used even when an empty cgroup2 is mounted beside them
(the hybrid layout), as on CentOS 7.

A container's cgroup is `<parent>/<id>` in every hierarchy used; the parent is configurable so
several engines on one machine never share one.
"""

import errno
import os
import time

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Dict, List, Optional  # noqa: F401

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")
# Docker's default device rules: mknod of anything, access only to these (applied with the
# container's own by runtime/container/proc/devices.py)
DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")
V2_CONTROLLERS = ("memory", "cpu", "pids")
# used only by containers that set their fields (HostConfig Cpuset*, Blkio*): the default
# start makes no directory in them
OPTIONAL_CONTROLLERS = ("cpuset", "blkio")
V2_OPTIONAL = {"cpuset": "cpuset", "blkio": "io"}
BLKIO_THROTTLES = (("BlkioDeviceReadBps", "read_bps_device"), ("BlkioDeviceWriteBps", "write_bps_device"),
                   ("BlkioDeviceReadIOps", "read_iops_device"), ("BlkioDeviceWriteIOps", "write_iops_device"))

_mounts_cache = None  # type: Optional[Dict[str, str]]


def v1_mounts():
    # type: () -> Dict[str, str]
    """Controller name -> mount point of each v1 hierarchy, from /proc/self/mountinfo."""
    global _mounts_cache
    if _mounts_cache is not None:
        return _mounts_cache
    found = {}  # type: Dict[str, str]
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if len(fields) < 3 or fields[0] != "cgroup":
                continue
            mnt = pre.split()[4]
            for opt in fields[2].split(","):
                if opt in V1_CONTROLLERS or opt in OPTIONAL_CONTROLLERS:
                    found.setdefault(opt, mnt)
    _mounts_cache = found
    return found


def detect_version(root="/sys/fs/cgroup"):
    # type: (str) -> int
    """2 when the unified hierarchy is mounted at root, else 1."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


def _write(path, value):
    # type: (str, object) -> None
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _write_if(path, value):
    # type: (str, object) -> None
    """_write when the file exists (its controller is enabled; cgroups.unsupported warned)."""
    if os.path.exists(path):
        _write(path, value)


def _read(path):
    # type: (str) -> str
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def write_value(path, value):
    # type: (str, object) -> None
    """Write value (as text) into the cgroup file at path."""
    _write(path, value)


def read_value(path):
    # type: (str) -> str
    """The cgroup file's text, "" when it cannot be read."""
    return _read(path)


def _rmdir(path):
    # type: (str) -> None
    for _ in range(100):
        try:
            os.rmdir(path)
            return
        except OSError as e:
            if e.errno == errno.ENOENT:
                return
            if e.errno != errno.EBUSY:
                raise
        time.sleep(0.01)
    os.rmdir(path)


def _kernel_version():
    # type: () -> tuple
    """The running kernel's (major, minor); (0, 0) when its release cannot be read."""
    try:
        return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return (0, 0)


# read once per process (a start asked up to five times, through self_join)
_KERNEL = _kernel_version()


def _kernel_at_least(major, minor):
    # type: (int, int) -> bool
    """Whether the running kernel's version is at least major.minor."""
    return _KERNEL >= (major, minor)


class CgroupManager(object):
    """One container's cgroup; `dirs` are its directories (one per hierarchy used)."""

    version = 0

    def __init__(self, parent, name, root="/sys/fs/cgroup", extra=()):
        # type: (str, str, str, tuple) -> None
        self.parent = "/" + parent.strip("/")
        self.name = name
        self.root = root
        self.extra = tuple(extra)
        self.dirs = []  # type: List[str]

    def procs_files(self):
        # type: () -> List[str]
        """The cgroup.procs files: a pid written there moves that whole process in."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def move_in(self, pid):
        # type: (int) -> None
        """Move the process pid in (through each cgroup.procs; OSError if one is refused)."""
        for path in self.procs_files():
            _write(path, pid)

    def join_files(self):
        # type: () -> List[str]
        """The files a single-threaded process writes "0" into to enter the cgroup itself
        (runtime/container/proc/init.py join_cgroup): cgroup.procs here, v1's `tasks`
        (CgroupV1)."""
        return self.procs_files()

    def self_join(self):
        # type: () -> bool
        """Whether a process entering by itself (join_files) is cheaper than being moved: only
        where the kernel then skips the threadgroup lock (CgroupV1)."""
        return False

    def exists(self):
        # type: () -> bool
        return any(os.path.isdir(d) for d in self.dirs)

    def pids(self):
        # type: () -> List[int]
        """Every process in the cgroup."""
        out = set()
        for f in self.procs_files():
            out.update(int(x) for x in _read(f).split())
        return sorted(out)

    def destroy(self):
        # type: () -> None
        """Remove the directories; if something is left in them, thaw, kill it, then remove."""
        if not self.exists():
            return
        if self.remove_empty():  # the usual case: PID 1 has exited (thaw + pids: ~0.4 ms more)
            return
        try:
            self.thaw()
        except OSError:
            pass
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        for d in reversed(self.dirs):
            _rmdir(d)

    def remove_empty(self):
        # type: () -> bool
        """One rmdir of each directory (best effort); False when one is still in use (EBUSY)."""
        done = True
        for d in reversed(self.dirs):
            try:
                os.rmdir(d)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    done = False
        return done


class CgroupV1(CgroupManager):
    """cgroup v1: one directory per controller hierarchy."""

    version = 1

    def __init__(self, parent, name, root="/sys/fs/cgroup", extra=()):
        # type: (str, str, str, tuple) -> None
        CgroupManager.__init__(self, parent, name, root, extra)
        mounts = v1_mounts()
        self.paths = {}  # type: Dict[str, str]
        for ctl in V1_CONTROLLERS + self.extra:
            if ctl in mounts:
                self.paths[ctl] = mounts[ctl] + self.parent + "/" + name
        self.dirs = sorted(set(self.paths.values()))

    def join_files(self):
        # type: () -> List[str]
        """Each hierarchy's `tasks` file: "0" written there moves the calling thread only, and
        the kernel (5.5 and later) then skips the cgroup threadgroup lock, whose first writer
        after ~20 ms without one waits for an RCU grace period (6-12 ms on 6.18, holding the
        cgroup mutex: every other cgroup operation waits too). ~0.1 ms a hierarchy instead.
        For a single-threaded process (every process forked in runtime/container/proc: no
        threads there) the one thread is the whole process."""
        return [os.path.join(d, "tasks") for d in self.dirs]

    def self_join(self):
        # type: () -> bool
        """On 5.5 and later only ("cgroup: Optimize single thread migration"): before, a
        thread took the same lock as a process, and the monitor's move of PID 1 overlaps PID
        1's own work, where PID 1 entering by itself would wait for it first."""
        return _kernel_at_least(5, 5)

    def make_dirs(self):
        # type: () -> None
        """The directories, without limits (a cpuset one with its parents' CPUs and nodes:
        a v1 cpuset takes no process while they are empty)."""
        cpuset = self.paths.get("cpuset")
        if cpuset:
            mnt = v1_mounts()["cpuset"]
            cur = mnt
            for part in (self.parent.strip("/") + "/" + self.name).split("/"):
                parent, cur = cur, cur + "/" + part
                os.makedirs(cur, exist_ok=True)
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(cur + "/" + f).strip():
                        _write(cur + "/" + f, _read(parent + "/" + f).strip())
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)

    def create(self, hc):
        # type: (dict) -> List[str]
        """Make the directories and apply HostConfig limits; returns warnings."""
        warnings = []  # type: List[str]
        self.make_dirs()
        mem = self.paths.get("memory")
        memory = int(hc.get("Memory") or 0)
        if mem and memory > 0:
            _write(mem + "/memory.limit_in_bytes", memory)
            swap = int(hc.get("MemorySwap") or 0)
            if os.path.exists(mem + "/memory.memsw.limit_in_bytes"):
                _write(mem + "/memory.memsw.limit_in_bytes", -1 if swap < 0 else (swap or 2 * memory))
            elif swap:
                warnings.append("Your kernel does not support swap limit capabilities; "
                                "memory limited without swap.")
        if mem:
            if int(hc.get("MemoryReservation") or 0) > 0:
                _write(mem + "/memory.soft_limit_in_bytes", int(hc["MemoryReservation"]))
            swappiness = hc.get("MemorySwappiness")
            if swappiness is not None and swappiness != -1:
                _write(mem + "/memory.swappiness", int(swappiness))
            if hc.get("OomKillDisable"):
                _write(mem + "/memory.oom_control", 1)
            if int(hc.get("KernelMemoryTCP") or 0) > 0:
                _write(mem + "/memory.kmem.tcp.limit_in_bytes", int(hc["KernelMemoryTCP"]))
        cpuset = self.paths.get("cpuset")
        if cpuset:
            if hc.get("CpusetCpus"):
                _write(cpuset + "/cpuset.cpus", hc["CpusetCpus"])
            if hc.get("CpusetMems"):
                _write(cpuset + "/cpuset.mems", hc["CpusetMems"])
        blkio = self.paths.get("blkio")
        if blkio:
            _blkio(blkio, hc)
        cpu = self.paths.get("cpu")
        if cpu:
            if hc.get("CpuShares"):
                _write(cpu + "/cpu.shares", int(hc["CpuShares"]))
            period, quota = _cpu_quota(hc)
            if (quota or hc.get("CpuPeriod")) and os.path.exists(cpu + "/cpu.cfs_quota_us"):  # CFS_BANDWIDTH
                _write(cpu + "/cpu.cfs_period_us", period)
                if quota:
                    _write(cpu + "/cpu.cfs_quota_us", quota)
        pids = self.paths.get("pids")
        if pids and int(hc.get("PidsLimit") or 0) > 0:
            _write(pids + "/pids.max", int(hc["PidsLimit"]))
        return warnings

    def freeze(self):
        # type: () -> None
        """Freeze every process and wait until the kernel says FROZEN."""
        path = self.paths["freezer"] + "/freezer.state"
        for _ in range(1000):
            _write(path, "FROZEN")
            if _read(path).strip() == "FROZEN":
                return
            time.sleep(0.002)
        raise OSError(errno.EBUSY, "the freezer did not reach FROZEN")

    def thaw(self):
        # type: () -> None
        if "freezer" in self.paths and os.path.isdir(self.paths["freezer"]):
            _write(self.paths["freezer"] + "/freezer.state", "THAWED")

    def frozen(self):
        # type: () -> bool
        return _read(self.paths.get("freezer", "/nonexistent") + "/freezer.state").strip() == "FROZEN"

    def oom_killed(self, exit_code=137):
        # type: (int) -> bool
        """Whether the kernel OOM-killed something in the cgroup."""
        mem = self.paths.get("memory")
        if not mem:
            return False
        fields = dict(line.split() for line in _read(mem + "/memory.oom_control").splitlines() if " " in line)
        if "oom_kill" in fields:  # kernel 4.13+
            return int(fields["oom_kill"]) > 0
        # kernel 3.10 has no counter: hitting the limit is the evidence (the monitor also
        # requires the process to have died of SIGKILL)
        return exit_code == 137 and int(_read(mem + "/memory.failcnt") or 0) > 0


class CgroupV2(CgroupManager):
    """cgroup v2: one directory in the unified hierarchy."""

    version = 2

    def __init__(self, parent, name, root="/sys/fs/cgroup", extra=()):
        # type: (str, str, str, tuple) -> None
        CgroupManager.__init__(self, parent, name, root, extra)
        self.path = root + self.parent + "/" + name
        self.dirs = [self.path]

    def make_dirs(self):
        # type: () -> None
        """The directory, enabling controllers on the way down (once: those writes take the
        kernel's cgroup mutex)."""
        if os.path.isdir(self.path):
            return
        available = set(_read(self.root + "/cgroup.controllers").split())
        ctls = V2_CONTROLLERS + tuple(V2_OPTIONAL[c] for c in self.extra)
        wanted = " ".join("+" + c for c in ctls if c in available)
        cur = self.root
        for part in (self.parent.strip("/") + "/" + self.name).split("/"):
            if wanted:
                try:
                    _write(cur + "/cgroup.subtree_control", wanted)
                except OSError:
                    pass
            cur = cur + "/" + part
            os.makedirs(cur, exist_ok=True)

    def create(self, hc):
        # type: (dict) -> List[str]
        """Make the directory and apply limits."""
        self.make_dirs()
        if int(hc.get("MemoryReservation") or 0) > 0:
            _write_if(self.path + "/memory.low", int(hc["MemoryReservation"]))
        for field, name in (("CpusetCpus", "cpuset.cpus"), ("CpusetMems", "cpuset.mems")):
            if hc.get(field):
                _write_if(self.path + "/" + name, hc[field])
        for field, _ in BLKIO_THROTTLES:
            kind = ("r" if "Read" in field else "w") + ("bps" if "Bps" in field else "iops")
            for line in hc.get("_" + field) or []:
                dev, _, rate = line.partition(" ")
                _write_if(self.path + "/io.max", "%s %s=%s" % (dev, kind, rate))
        if hc.get("BlkioWeight"):
            _write_if(self.path + "/io.weight", "default %d" % int(hc["BlkioWeight"]))
        memory = int(hc.get("Memory") or 0)
        if memory > 0:
            _write_if(self.path + "/memory.max", memory)
            swap = int(hc.get("MemorySwap") or 0)
            if os.path.exists(self.path + "/memory.swap.max"):
                swap_max = "max" if swap < 0 else (swap - memory if swap else memory)
                _write(self.path + "/memory.swap.max", swap_max)
        if hc.get("CpuShares"):
            shares = int(hc["CpuShares"])
            _write_if(self.path + "/cpu.weight", 1 + ((shares - 2) * 9999) // 262142)
        period, quota = _cpu_quota(hc)
        if quota or hc.get("CpuPeriod"):
            _write_if(self.path + "/cpu.max", "%s %d" % (quota or "max", period))
        if int(hc.get("PidsLimit") or 0) > 0:
            _write_if(self.path + "/pids.max", int(hc["PidsLimit"]))
        return []

    def freeze(self):
        # type: () -> None
        _write(self.path + "/cgroup.freeze", 1)
        for _ in range(1000):
            if "frozen 1" in _read(self.path + "/cgroup.events"):
                return
            time.sleep(0.002)
        raise OSError(errno.EBUSY, "the cgroup did not freeze")

    def thaw(self):
        # type: () -> None
        if os.path.isdir(self.path):
            _write(self.path + "/cgroup.freeze", 0)

    def frozen(self):
        # type: () -> bool
        return _read(self.path + "/cgroup.freeze").strip() == "1"

    def oom_killed(self, exit_code=137):
        # type: (int) -> bool
        for line in _read(self.path + "/memory.events").splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v) > 0
        return False


def _blkio(path, hc):
    # type: (str, dict) -> None
    """v1 blkio: weight (where the kernel has a weight file) and the device throttles
    ("_Blkio..." hold them as "major:minor rate" lines, made at start)."""
    weight = int(hc.get("BlkioWeight") or 0)
    if weight:
        for name in ("blkio.weight", "blkio.bfq.weight"):
            if os.path.exists(path + "/" + name):
                _write(path + "/" + name, weight)
                break
    for field, name in BLKIO_THROTTLES:
        for line in hc.get("_" + field) or []:
            _write(path + "/blkio.throttle." + name, line)


def optional_controllers(hc):
    # type: (dict) -> List[str]
    """The optional controllers this HostConfig needs."""
    out = []
    if hc.get("CpusetCpus") or hc.get("CpusetMems"):
        out.append("cpuset")
    if hc.get("BlkioWeight") or any(hc.get(f) for f, _ in BLKIO_THROTTLES):
        out.append("blkio")
    return out


def _cpu_quota(hc):
    # type: (dict) -> tuple
    """(period, quota) in microseconds from NanoCpus or CpuPeriod/CpuQuota; quota 0 = none."""
    nano = int(hc.get("NanoCpus") or 0)
    if nano > 0:
        return 100000, nano * 100000 // 1000000000
    quota = int(hc.get("CpuQuota") or 0)
    return int(hc.get("CpuPeriod") or 100000), (quota if quota > 0 else 0)


def kick_grace_period(pid):
    # type: (int) -> None
    """Rewrite pid into the cgroup it is already in (v1 freezer, or the unified hierarchy):
    a no-op move, but it takes the kernel's cgroup threadgroup lock, whose first writer after
    ~20 ms without one waits for an RCU grace period (6-11 ms measured here, on 6.18; the lock
    is per-process on 3.10). Done ahead of a start, it begins that wait before the monitor
    moves PID 1, which then finds the grace period passed or under way."""
    if not pid:
        return
    v1 = v1_mounts().get("freezer")
    try:
        for line in _read("/proc/%d/cgroup" % pid).splitlines():
            _, ctls, path = line.split(":", 2)
            if v1 and "freezer" in ctls.split(","):
                _write(v1 + path.rstrip("/") + "/cgroup.procs", pid)
                return
            if not v1 and ctls == "":
                _write("/sys/fs/cgroup" + path.rstrip("/") + "/cgroup.procs", pid)
                return
    except (OSError, ValueError):
        pass


def controllers(version):
    # type: (int) -> set
    """The controllers this machine has (v1 hierarchies mounted, or v2's root list)."""
    if version == 2:
        return set(_read("/sys/fs/cgroup/cgroup.controllers").split())
    return set(v1_mounts())


def unsupported(hc, version=None):
    # type: (dict, Optional[int]) -> List[str]
    """Docker-style warnings for limits this kernel's cgroups cannot apply (they are dropped)."""
    if (version or detect_version()) == 2:
        have = set(_read("/sys/fs/cgroup/cgroup.controllers").split())
    else:
        have = set(v1_mounts())
    out = []
    if int(hc.get("Memory") or 0) > 0 and "memory" not in have:
        out.append("Your kernel does not support memory limit capabilities or the cgroup is not mounted. "
                   "Limitation discarded.")
    if int(hc.get("PidsLimit") or 0) > 0 and "pids" not in have:
        out.append("Your kernel does not support pids limit capabilities or the cgroup is not mounted. "
                   "PIDs limit discarded.")
    if (hc.get("CpuShares") or hc.get("NanoCpus") or hc.get("CpuQuota")) and "cpu" not in have:
        out.append("Your kernel does not support CPU limit capabilities or the cgroup is not mounted. "
                   "Limitation discarded.")
    return out


def manager(parent, name, version=None, extra=()):
    # type: (str, str, Optional[int], tuple) -> CgroupManager
    """The manager for this machine's layout; extra: optional controllers it uses."""
    if (version or detect_version()) == 2:
        return CgroupV2(parent, name, extra=extra)
    return CgroupV1(parent, name, extra=extra)
