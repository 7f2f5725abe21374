"""A running container's limits changed in place (`update`): the changed HostConfig fields
written into its live cgroup, v1 or v2, in an order the kernel accepts, with runc's wording
when the kernel refuses (a memory limit below what the container uses). A controller the
container was created without (cpuset, blkio) is added and its processes moved into it."""

import errno
import os

from runtime import TYPE_CHECKING
from runtime.container import hostconfig
from runtime.container.proc import cgroups
from runtime.container.update import effective_swap

if TYPE_CHECKING:
    from typing import Iterable, List  # noqa: F401

UNLIMITED = 1 << 62  # above any limit a v1 file shows for "unlimited" (9223372036854771712)


class LimitError(Exception):
    """The kernel refused a limit; the message says which and why."""


def _int(hc, field):
    # type: (dict, str) -> int
    return int(hc.get(field) or 0)


def with_controllers(cg, needed):
    # type: (cgroups.CgroupManager, Iterable[str]) -> cgroups.CgroupManager
    """cg, or a manager that also has the optional controllers in needed, made and holding
    every process of the container (a process forked meanwhile is moved on the next pass)."""
    extra = tuple(cg.extra) + tuple(c for c in needed if c not in cg.extra)
    if extra == tuple(cg.extra):
        return cg
    new = cgroups.manager(cg.parent, cg.name, cg.version, extra)
    if cg.version == 2:
        _enable_v2(new, [cgroups.V2_OPTIONAL[c] for c in extra if c not in cg.extra])
        return new
    new.make_dirs()
    added = [new.paths[c] for c in extra if c not in cg.extra and c in new.paths]
    for _ in range(20):
        moved = 0
        for d in added:
            inside = set(int(x) for x in cgroups.read_value(d + "/cgroup.procs").split())
            for pid in cg.pids():
                if pid not in inside:
                    try:
                        cgroups.write_value(d + "/cgroup.procs", pid)
                        moved += 1
                    except OSError as e:
                        if e.errno != errno.ESRCH:
                            raise
        if not moved:
            break
    return new


def _enable_v2(cg, ctls):
    # type: (cgroups.CgroupV2, List[str]) -> None
    """Enable ctls in every cgroup.subtree_control from the root down to the container's parent."""
    cur = cg.root
    for part in cg.parent.strip("/").split("/"):
        for ctl in ctls:
            try:
                cgroups.write_value(cur + "/cgroup.subtree_control", "+" + ctl)
            except OSError:
                pass
        cur = cur + "/" + part
    for ctl in ctls:
        try:
            cgroups.write_value(cur + "/cgroup.subtree_control", "+" + ctl)
        except OSError:
            pass


def apply(cg, old, new, fields):
    # type: (cgroups.CgroupManager, dict, dict, Iterable[str]) -> None
    """Write fields (HostConfig names) with their values in new into cg; when the kernel
    refuses one, the fields already written get their values in old back and LimitError says
    what was refused."""
    fields = set(fields)
    write = _v2 if cg.version == 2 else _v1
    try:
        write(cg, old, new, fields)
    except (LimitError, OSError) as e:
        try:
            write(cg, new, old, fields)
        except (LimitError, OSError):
            pass
        if isinstance(e, OSError):
            raise LimitError("cannot write the container's cgroup: %s" % (e.strerror or e)) from None
        raise


def _refused(path, value, what, usage_file, peak_file):
    # type: (str, int, str, str, str) -> LimitError
    usage = cgroups.read_value(os.path.join(path, usage_file)).strip() or "?"
    peak = cgroups.read_value(os.path.join(path, peak_file)).strip() or "?"
    return LimitError("unable to set %s limit to %d (current usage: %s, peak usage: %s)"
                      % (what, value, usage, peak))


def _v1_write(path, name, value):
    # type: (str, str, object) -> None
    try:
        cgroups.write_value(os.path.join(path, name), value)
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        if name == "memory.limit_in_bytes":
            raise _refused(path, int(value), "memory", "memory.usage_in_bytes",
                           "memory.max_usage_in_bytes") from None
        raise _refused(path, int(value), "swap", "memory.memsw.usage_in_bytes",
                       "memory.memsw.max_usage_in_bytes") from None


def _v1_memory(path, memory, swap):
    # type: (str, int, int) -> None
    """memory.limit_in_bytes and memsw.limit_in_bytes (memory plus swap): the kernel keeps
    memory <= memsw at every step, so the one that grows is written first."""
    limit = memory if memory > 0 else -1
    memsw = swap if swap > 0 else -1
    sw_file = "memory.memsw.limit_in_bytes"
    if not os.path.exists(os.path.join(path, sw_file)):
        _v1_write(path, "memory.limit_in_bytes", limit)
        return
    current_sw = int(cgroups.read_value(os.path.join(path, sw_file)).strip() or 0)
    if (UNLIMITED if limit < 0 else limit) > current_sw:
        _v1_write(path, sw_file, memsw)
        _v1_write(path, "memory.limit_in_bytes", limit)
    else:
        _v1_write(path, "memory.limit_in_bytes", limit)
        _v1_write(path, sw_file, memsw)


def _cpu_shares(path, shares):
    # type: (str, int) -> None
    """cpu.shares; the kernel clamps out-of-range values, which runc reports."""
    cgroups.write_value(path + "/cpu.shares", shares)
    got = int(cgroups.read_value(path + "/cpu.shares").strip() or 0)
    if shares > got:
        raise LimitError("the maximum allowed cpu-shares is %d" % got)
    if shares < got:
        raise LimitError("the minimum allowed cpu-shares is %d" % got)


def _cfs(new):
    # type: (dict) -> tuple
    """(period, quota) to write, each 0 for "leave it": NanoCpus, or CpuPeriod/CpuQuota."""
    nano = _int(new, "NanoCpus")
    if nano > 0:
        return 100000, nano * 100000 // 10 ** 9
    return _int(new, "CpuPeriod"), _int(new, "CpuQuota")


def _throttle_lines(hc, field):
    # type: (dict, str) -> dict
    """{"major:minor": rate} of a Blkio throttle field."""
    return dict(line.split(" ", 1) for line in hostconfig.throttle_devices(hc.get(field), field))


def _v1(cg, old, new, fields):
    # type: (cgroups.CgroupV1, dict, dict, set) -> None
    p = cg.paths
    mem = p.get("memory")
    if mem and fields & {"Memory", "MemorySwap"}:
        _v1_memory(mem, _int(new, "Memory"), effective_swap(new))
    if mem and "MemoryReservation" in fields:
        cgroups.write_value(mem + "/memory.soft_limit_in_bytes", _int(new, "MemoryReservation") or -1)
    cpu = p.get("cpu")
    if cpu and "CpuShares" in fields:
        _cpu_shares(cpu, _int(new, "CpuShares") or 1024)
    if cpu and fields & {"NanoCpus", "CpuPeriod", "CpuQuota"}:
        period, quota = _cfs(new)
        if period:
            cgroups.write_value(cpu + "/cpu.cfs_period_us", period)
        cgroups.write_value(cpu + "/cpu.cfs_quota_us", quota or -1)
    cpuset = p.get("cpuset")
    for field, name in (("CpusetCpus", "cpuset.cpus"), ("CpusetMems", "cpuset.mems")):
        if cpuset and field in fields and new.get(field):
            cgroups.write_value(cpuset + "/" + name, new[field])
    blkio = p.get("blkio")
    if blkio and "BlkioWeight" in fields and _int(new, "BlkioWeight"):
        for name in ("blkio.weight", "blkio.bfq.weight"):
            if os.path.exists(blkio + "/" + name):
                cgroups.write_value(blkio + "/" + name, _int(new, "BlkioWeight"))
                break
    for field, name in cgroups.BLKIO_THROTTLES:
        if blkio and field in fields:
            was, now = _throttle_lines(old, field), _throttle_lines(new, field)
            for dev in sorted(set(was) - set(now)):
                cgroups.write_value(blkio + "/blkio.throttle." + name, "%s 0" % dev)
            for dev, rate in sorted(now.items()):
                cgroups.write_value(blkio + "/blkio.throttle." + name, "%s %s" % (dev, rate))
    pids = p.get("pids")
    if pids and "PidsLimit" in fields:
        limit = _int(new, "PidsLimit")
        cgroups.write_value(pids + "/pids.max", limit if limit > 0 else "max")


def _v2(cg, old, new, fields):
    # type: (cgroups.CgroupV2, dict, dict, set) -> None
    path = cg.path

    def put(name, value):
        if os.path.exists(path + "/" + name):
            cgroups.write_value(path + "/" + name, value)
    if fields & {"Memory", "MemorySwap"}:
        memory, swap = _int(new, "Memory"), effective_swap(new)
        put("memory.max", memory if memory > 0 else "max")
        if memory > 0:
            put("memory.swap.max", "max" if swap < 0 else (swap - memory if swap else memory))
        else:
            put("memory.swap.max", "max")
    if "MemoryReservation" in fields:
        put("memory.low", _int(new, "MemoryReservation"))
    if "CpuShares" in fields:
        shares = _int(new, "CpuShares") or 1024
        put("cpu.weight", 1 + ((shares - 2) * 9999) // 262142)
    if fields & {"NanoCpus", "CpuPeriod", "CpuQuota"}:
        period, quota = _cfs(new)
        current = (cgroups.read_value(path + "/cpu.max").split() or ["max", "100000"])
        put("cpu.max", "%s %s" % (quota if quota > 0 else "max", period or current[-1]))
    for field, name in (("CpusetCpus", "cpuset.cpus"), ("CpusetMems", "cpuset.mems")):
        if field in fields and new.get(field):
            put(name, new[field])
    if "BlkioWeight" in fields and _int(new, "BlkioWeight"):
        put("io.weight", "default %d" % _int(new, "BlkioWeight"))
    for field, _ in cgroups.BLKIO_THROTTLES:
        if field in fields:
            kind = ("r" if "Read" in field else "w") + ("bps" if "Bps" in field else "iops")
            was, now = _throttle_lines(old, field), _throttle_lines(new, field)
            for dev in sorted(set(was) - set(now)):
                put("io.max", "%s %s=max" % (dev, kind))
            for dev, rate in sorted(now.items()):
                put("io.max", "%s %s=%s" % (dev, kind, rate if int(rate) > 0 else "max"))
    if "PidsLimit" in fields:
        limit = _int(new, "PidsLimit")
        put("pids.max", limit if limit > 0 else "max")
