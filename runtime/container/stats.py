"""A container's resource figures in the Docker API's stats shape (what `docker stats`
computes from): cpu (cgroup v1 cpuacct or v2 cpu.stat, and the host's total from /proc/stat),
memory (usage, limit, memory.stat), pids, block I/O (v2 io.stat), and the network devices of
its namespace (/proc/PID/net/dev, loopback left out)."""

import os
import time

from runtime.timefmt import ZERO_TIME, rfc3339

_TICKS = os.sysconf("SC_CLK_TCK")
_NS = 1000000000


def _read(path, default=""):
    # type: (str, str) -> str
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _int(text, default=0):
    # type: (str, int) -> int
    text = text.strip()
    if not text or text == "max":
        return default
    try:
        return int(text)
    except ValueError:
        return default


def _kv(text):
    # type: (str) -> dict
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def system_cpu_ns():
    # type: () -> int
    """The host's CPU time so far (all CPUs, all states), in ns: docker's system_cpu_usage."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return sum(int(x) for x in line.split()[1:8]) * _NS // _TICKS
    return 0


def online_cpus():
    # type: () -> int
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_memory():
    # type: () -> int
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _networks(pid):
    # type: (int) -> dict
    out = {}
    for line in _read("/proc/%d/net/dev" % pid).splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if name == "lo" or len(f) < 16:
            continue
        out[name] = {"rx_bytes": int(f[0]), "rx_packets": int(f[1]), "rx_errors": int(f[2]),
                     "rx_dropped": int(f[3]), "tx_bytes": int(f[8]), "tx_packets": int(f[9]),
                     "tx_errors": int(f[10]), "tx_dropped": int(f[11])}
    return out


def _v1(cg):
    # type: (object) -> tuple
    cpuacct = cg.paths.get("cpuacct") or cg.paths.get("cpu", "")
    mem = cg.paths.get("memory", "")
    pids = cg.paths.get("pids", "")
    acct = _kv(_read(cpuacct + "/cpuacct.stat"))
    percpu = [int(x) for x in _read(cpuacct + "/cpuacct.usage_percpu").split()]
    throttle = _kv(_read(cg.paths.get("cpu", cpuacct) + "/cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": _int(_read(cpuacct + "/cpuacct.usage")),
                         "percpu_usage": percpu or None,
                         "usage_in_kernelmode": acct.get("system", 0) * _NS // _TICKS,
                         "usage_in_usermode": acct.get("user", 0) * _NS // _TICKS},
           "throttling_data": {"periods": throttle.get("nr_periods", 0),
                               "throttled_periods": throttle.get("nr_throttled", 0),
                               "throttled_time": throttle.get("throttled_time", 0)}}
    memory = {"usage": _int(_read(mem + "/memory.usage_in_bytes")),
              "max_usage": _int(_read(mem + "/memory.max_usage_in_bytes")),
              "failcnt": _int(_read(mem + "/memory.failcnt")),
              "limit": _int(_read(mem + "/memory.limit_in_bytes")), "stats": _kv(_read(mem + "/memory.stat"))}
    pid_stats = {"current": _int(_read(pids + "/pids.current")), "limit": _int(_read(pids + "/pids.max"))}
    return cpu, memory, pid_stats, {}


def _v2(cg):
    # type: (object) -> tuple
    d = cg.path
    st = _kv(_read(d + "/cpu.stat"))
    cpu = {"cpu_usage": {"total_usage": st.get("usage_usec", 0) * 1000,
                         "usage_in_kernelmode": st.get("system_usec", 0) * 1000,
                         "usage_in_usermode": st.get("user_usec", 0) * 1000},
           "throttling_data": {"periods": st.get("nr_periods", 0),
                               "throttled_periods": st.get("nr_throttled", 0),
                               "throttled_time": st.get("throttled_usec", 0) * 1000}}
    memory = {"usage": _int(_read(d + "/memory.current")), "limit": _int(_read(d + "/memory.max")),
              "stats": _kv(_read(d + "/memory.stat"))}
    pid_stats = {"current": _int(_read(d + "/pids.current")), "limit": _int(_read(d + "/pids.max"))}
    io = []
    for line in _read(d + "/io.stat").splitlines():
        dev, _, rest = line.partition(" ")
        major, _, minor = dev.partition(":")
        fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            io.append({"major": int(major), "minor": int(minor), "op": op, "value": int(fields.get(key, 0))})
    return cpu, memory, pid_stats, {"io_service_bytes_recursive": io or None}


def sample(cg, pid, name, cid):
    # type: (object, int, str, str) -> dict
    """One reading (precpu_stats empty: the caller fills it from the previous one)."""
    cpu, memory, pid_stats, blkio = (_v2 if hasattr(cg, "path") else _v1)(cg)
    cpu.update(system_cpu_usage=system_cpu_ns(), online_cpus=online_cpus())
    host = host_memory()
    if not memory["limit"] or (host and memory["limit"] > host):
        memory["limit"] = host  # unlimited: the machine's memory, as dockerd reports it
    if not pid_stats["limit"]:
        del pid_stats["limit"]
    blk = {"io_service_bytes_recursive": None, "io_serviced_recursive": None, "io_queue_recursive": None,
           "io_service_time_recursive": None, "io_wait_time_recursive": None, "io_merged_recursive": None,
           "io_time_recursive": None, "sectors_recursive": None}
    blk.update(blkio)
    return {"read": rfc3339(time.time()), "preread": ZERO_TIME, "pids_stats": pid_stats,
            "blkio_stats": blk, "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu,
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "memory_stats": memory, "name": "/" + name, "id": cid, "networks": _networks(pid) if pid else {}}


def empty(name, cid):
    # type: (str, str) -> dict
    """What a container that is not running reports (dockerd: zeros)."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "memory_stats": {}, "name": "/" + name, "id": cid, "networks": {}}


def chain(prev, cur):
    # type: (dict, dict) -> dict
    """cur with precpu_stats/preread from prev (docker stats computes its deltas from them)."""
    cur["precpu_stats"] = prev["cpu_stats"]
    cur["preread"] = prev["read"]
    return cur
