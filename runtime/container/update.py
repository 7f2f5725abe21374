"""`POST /containers/{id}/update`: the fields an update takes, dockerd's checks of them (its
resource checks with update=true, then the merge into the container's HostConfig), and the
HostConfig that results. Writing the result into a running container's cgroup is
runtime/container/limits.py."""

import os

from runtime import TYPE_CHECKING
from runtime.container import hostconfig
from runtime.container.proc import restart
from runtime.errors import Conflict, InvalidParameter

if TYPE_CHECKING:
    from typing import List, Tuple  # noqa: F401

MIN_MEMORY = 6 * 1024 * 1024
# the fields an update changes, in the cgroup of a running container and in HostConfig
LIVE = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "CpuPeriod", "CpuQuota", "NanoCpus",
        "CpusetCpus", "CpusetMems", "BlkioWeight", "PidsLimit") + hostconfig.BLKIO_FIELDS
# Resources fields dockerd's update takes and then drops without a word: berthd refuses them
CREATE_ONLY = {
    "KernelMemory": "kernel memory limits are no longer supported (kernel 5.4 deprecated them)",
    "KernelMemoryTCP": "it is set when the container is created",
    "MemorySwappiness": "it is set when the container is created",
    "OomKillDisable": "it is set when the container is created",
    "CgroupParent": "the container's cgroup is made when it is created",
    "Devices": "devices are set up when the container is created",
    "DeviceCgroupRules": "device rules are set up when the container is created",
    "DeviceRequests": "berthd has no device drivers (GPUs)",
    "Ulimits": "ulimits are set when the container's process starts",
    "Init": "the init process is chosen when the container is created",
    "BlkioWeightDevice": "berthd does not apply per-device Block I/O weights",
    "CpuRealtimePeriod": "berthd gives containers no real-time CPU budget",
    "CpuRealtimeRuntime": "berthd gives containers no real-time CPU budget",
    "CpuCount": "it is Windows-only", "CpuPercent": "it is Windows-only",
    "IOMaximumIOps": "it is Windows-only", "IOMaximumBandwidth": "it is Windows-only",
}


def _int(body, field):
    # type: (dict, str) -> int
    return int(body.get(field) or 0)


def effective_swap(hc):
    # type: (dict) -> int
    """MemorySwap as applied: dockerd stores twice Memory when none was given; a record
    written with 0 got that too."""
    swap, memory = _int(hc, "MemorySwap"), _int(hc, "Memory")
    return swap if swap or memory <= 0 else 2 * memory


def _cpuset_available(value, have, what):
    # type: (str, str, str) -> None
    """dockerd's IsCpusetCpusAvailable/MemsAvailable: value's ids within this host's list."""
    if not value:
        return
    if not hostconfig.CPUSET.match(value):
        raise InvalidParameter("Invalid value %s for cpuset %s" % (value, what))

    def ids(text):
        out = set()
        for part in text.strip().split(","):
            if not part:
                continue
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
        return out
    if not ids(value) <= ids(have):
        raise InvalidParameter("Requested %s are not available - requested %s, available: %s"
                               % ("CPUs" if what == "cpus" else "memory nodes", value, have.strip()))


def check(body, env, ncpu=None):
    # type: (dict, dict, int) -> Tuple[dict, List[str]]
    """The update's own fields, checked as dockerd checks them before it looks at the container
    (InvalidParameter with its wording); returns (the fields that change something, warnings).
    A field at its zero value changes nothing; PidsLimit 0 or below means unlimited."""
    warnings = []  # type: List[str]
    refused = sorted(k for k in body if k in CREATE_ONLY and body[k] not in (None, 0, "", [], {}, False))
    if refused:
        raise InvalidParameter("cannot update %s: %s; recreate the container to change it"
                               % (refused[0], CREATE_ONLY[refused[0]]))
    known = set(LIVE) | set(CREATE_ONLY) | {"RestartPolicy"}
    other = sorted(k for k in body if k not in known and body[k] not in (None, 0, "", [], {}, False))
    if other:
        raise InvalidParameter("cannot update %s: an update takes only resource limits and the "
                               "restart policy" % ", ".join(other))
    req = {k: body[k] for k in LIVE if body.get(k) not in (None, 0, "", [])}
    if body.get("PidsLimit") is not None:
        req["PidsLimit"] = max(int(body["PidsLimit"]), 0)
    memory, swap = _int(req, "Memory"), _int(req, "MemorySwap")
    if memory and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap != -1 and not env["swap_limit"]:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is not "
                        "mounted. Memory limited without swap.")
        req["MemorySwap"] = swap = -1
    if memory > 0 and 0 < swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    reservation = _int(req, "MemoryReservation")
    if 0 < reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, "
                               "see usage")
    nano, period, quota = _int(req, "NanoCpus"), _int(req, "CpuPeriod"), _int(req, "CpuQuota")
    if nano > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = ncpu or os.cpu_count() or 1
    if nano and not 0 < nano <= ncpu * 10 ** 9:
        raise InvalidParameter("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available"
                               % (ncpu, ncpu))
    if period and not 1000 <= period <= 1000000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                               "(i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    _cpuset_available(req.get("CpusetCpus") or "", env.get("cpus", ""), "cpus")
    _cpuset_available(req.get("CpusetMems") or "", env.get("mems", ""), "mems")
    weight = _int(req, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if weight and not env["blkio_weight"]:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                        "Weight discarded.")
        del req["BlkioWeight"]
    for field in hostconfig.BLKIO_FIELDS:
        if field in req:
            hostconfig.throttle_devices(req[field], field)  # refuses what is not a block device
    return req, warnings


def merge(hc, req, policy=None):
    # type: (dict, dict, dict) -> dict
    """The HostConfig after the update (dockerd's UpdateContainer): Conflict for a CPU field that
    clashes with the one already set, a Memory above the swap limit already set without a new
    MemorySwap, or a restart policy with AutoRemove."""
    cur = {k: _int(hc, k) for k in ("NanoCpus", "CpuPeriod", "CpuQuota")}
    if _int(req, "NanoCpus") > 0 and cur["CpuPeriod"] > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if _int(req, "NanoCpus") > 0 and cur["CpuQuota"] > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if _int(req, "CpuPeriod") > 0 and cur["NanoCpus"] > 0:
        raise Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if _int(req, "CpuQuota") > 0 and cur["NanoCpus"] > 0:
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    memory = _int(req, "Memory")
    if memory and memory > effective_swap(hc) and not _int(req, "MemorySwap"):
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, update the "
                       "memoryswap at the same time")
    out = dict(hc)
    if memory and not _int(hc, "MemorySwap"):
        out["MemorySwap"] = effective_swap(hc)  # what the cgroup holds (a record written with 0)
    out.update(req)
    if _int(out, "MemorySwap") > 0 and not _int(out, "Memory"):
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, "
                               "see usage")
    if 0 < _int(out, "MemorySwap") < _int(out, "Memory"):  # e.g. a new MemorySwap alone, below Memory
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if policy is not None and (policy.get("Name") or ""):
        if hc.get("AutoRemove") and policy.get("Name") != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        try:
            out["RestartPolicy"] = restart.validate(policy, bool(hc.get("AutoRemove")))
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
    return out
