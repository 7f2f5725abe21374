"""Every HostConfig and Config field of API 1.44, and what berthd does with it: applied,
refused (InvalidParameter, a 400) or warned (a create Warning), decided per field; none is
accepted and ignored. `check` runs at create; the parsers turn the applied fields into what
the run spec carries (runtime/container/runspec.py). docs/api.md lists the same table."""

import os
import re
import stat

from runtime.errors import InvalidParameter

APPLIED, REFUSED, WARNED, ELSEWHERE = "applied", "refused", "warned", "elsewhere"

# rlimit names (Docker's --ulimit) -> RLIMIT_* numbers on Linux
ULIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
           "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13,
           "rtprio": 14, "rttime": 15}
# sysctls of a namespace the container has its own of (runc's validation): ipc, net, uts
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
_UTS_SYSCTLS = ("kernel.domainname", "kernel.hostname")
CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
NS_MODES = ("PidMode", "IpcMode", "UTSMode")
BLKIO_FIELDS = ("BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps")

_WEIGHT_WARNING = ("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                   "Weight discarded.")
_WEIGHT_DEVICE_WARNING = ("berthd does not apply Block I/O weight_device (per-device weights). "
                          "Weight-device discarded.")


def _zero(v):
    # type: (object) -> bool
    return v in (None, "", 0, [], {}, False)


def _refuse_set(field, why):
    """A checker refusing any non-empty value, with why."""
    def check(value, hc, env, warnings):
        if not _zero(value):
            raise InvalidParameter("%s is not supported: %s" % (field, why))
    return check


def _warn_set(message):
    def check(value, hc, env, warnings):
        if not _zero(value):
            warnings.append(message)
    return check


def ulimits(value):
    # type: (object) -> list
    """HostConfig.Ulimits -> [[name, RLIMIT number, soft, hard]] (-1 = unlimited)."""
    out = []
    seen = set()
    for u in value or []:
        if not isinstance(u, dict):
            raise InvalidParameter("invalid ulimit %r: give {\"Name\", \"Soft\", \"Hard\"}" % (u,))
        name = u.get("Name")
        if name not in ULIMITS:
            raise InvalidParameter("invalid ulimit type: %s (use one of %s)"
                                   % (name, ", ".join(sorted(ULIMITS))))
        if name in seen:
            raise InvalidParameter("duplicate ulimit: %s" % name)
        seen.add(name)
        try:
            soft, hard = int(u.get("Soft") or 0), int(u.get("Hard") or 0)
        except (TypeError, ValueError):
            raise InvalidParameter("invalid ulimit %s: Soft and Hard must be integers" % name) from None
        if soft > hard and hard != -1:
            raise InvalidParameter("ulimit soft limit must be less than or equal to hard limit: %d > %d"
                                   % (soft, hard))
        out.append([name, ULIMITS[name], soft, hard])
    return out


def sysctls(value, hc, net_mode):
    # type: (object, dict, str) -> dict
    """HostConfig.Sysctls, checked: only those of a namespace the container has its own of."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("Sysctls must be an object of name: value")
    for key, v in value.items():
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if (hc.get("IpcMode") or "") == "host" or (hc.get("IpcMode") or "").startswith("container:"):
                raise InvalidParameter("sysctl %r is not allowed with IpcMode %s: the IPC namespace "
                                       "is not the container's own" % (key, hc.get("IpcMode")))
        elif key.startswith("net."):
            if net_mode == "host" or (hc.get("NetworkMode") or "").startswith("container:"):
                raise InvalidParameter("sysctl %r is not allowed in the host's network namespace "
                                       "(NetworkMode %s)" % (key, hc.get("NetworkMode")))
        elif key in _UTS_SYSCTLS:
            if (hc.get("UTSMode") or "") == "host":
                raise InvalidParameter("sysctl %r is not allowed with UTSMode host" % key)
        else:
            raise InvalidParameter("sysctl %r is not allowed: it is not in a separate kernel namespace "
                                   "(allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, "
                                   "kernel.domainname)" % key)
        if not isinstance(v, str) or "\n" in v:
            raise InvalidParameter("sysctl %r: the value must be a one-line string" % key)
    return dict(value)


def throttle_devices(value, field):
    # type: (object, str) -> list
    """Blkio{Weight,}Device{Read,Write}{Bps,IOps} -> ["major:minor rate"]."""
    out = []
    for d in value or []:
        if not isinstance(d, dict) or not d.get("Path"):
            raise InvalidParameter("invalid %s entry %r: give Path and Rate" % (field, d))
        rate = d.get("Rate", d.get("Weight"))
        try:
            st = os.stat(d["Path"])
        except OSError as e:
            raise InvalidParameter("%s: %s: %s" % (field, d["Path"], e.strerror)) from None
        if not stat.S_ISBLK(st.st_mode):
            raise InvalidParameter("%s: %s is not a block device" % (field, d["Path"]))
        if not isinstance(rate, int) or rate < 0:
            raise InvalidParameter("%s: invalid rate %r for %s" % (field, rate, d["Path"]))
        out.append("%d:%d %d" % (os.major(st.st_rdev), os.minor(st.st_rdev), rate))
    return out


def ns_mode(hc, field, lookup):
    # type: (dict, str, object) -> str
    """PidMode/IpcMode/UTSMode -> "" (own namespace), "host" or "container:<id>" (lookup(name)
    -> id, NotFound for an unknown container)."""
    value = hc.get(field) or ""
    own = ("", "private", "shareable") if field == "IpcMode" else ("",)
    if value in own or value == "host":
        return value
    if value.startswith("container:") and value[10:]:
        return "container:" + lookup(value[10:])
    choices = "host, container:<name|id>" + (", private, shareable" if field == "IpcMode" else "")
    raise InvalidParameter("invalid %s: %r (use %s)" % (field, value, choices))


def _check_cpuset(value, hc, env, warnings):
    if value and not CPUSET.match(str(value)):
        raise InvalidParameter("Invalid value %s for cpuset cpus" % value)


def _check_oom_score(value, hc, env, warnings):
    if value and not -1000 <= int(value) <= 1000:
        raise InvalidParameter("Invalid value %s, range for oom score adj is [-1000, 1000]" % value)


def _check_swappiness(value, hc, env, warnings):
    if value is None or value == -1:
        return
    if not 0 <= int(value) <= 100:
        raise InvalidParameter("Invalid value: %s, valid memory swappiness range is 0-100" % value)
    if env["cgroup_version"] == 2:
        warnings.append("Your kernel does not support memory swappiness capabilities or the cgroup is not "
                        "mounted. Memory swappiness discarded.")


def _check_reservation(value, hc, env, warnings):
    memory = int(hc.get("Memory") or 0)
    if value and memory and int(value) > memory:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, "
                               "see usage")


def _check_oom_kill_disable(value, hc, env, warnings):
    if not value:
        return
    if env["cgroup_version"] == 2:
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
    elif not hc.get("Memory"):
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can "
                        "result in the system running out of resources.")


def _check_blkio_weight(value, hc, env, warnings):
    if not value:
        return
    if not 10 <= int(value) <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if not env["blkio_weight"]:
        warnings.append(_WEIGHT_WARNING)


def _check_weight_device(value, hc, env, warnings):
    if value:
        warnings.append(_WEIGHT_DEVICE_WARNING)


def _check_throttle(field):
    def check(value, hc, env, warnings):
        if value:
            throttle_devices(value, field)
            if "blkio" not in env["controllers"]:
                warnings.append("Your kernel does not support %s device limits or the cgroup is not "
                                "mounted. Block I/O limit discarded." % field)
    return check


def _check_memory_swap(value, hc, env, warnings):
    if value and int(value) > 0 and not env["swap_limit"]:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is not "
                        "mounted. Memory limited without swap.")


def _check_kmem_tcp(value, hc, env, warnings):
    if value and env["cgroup_version"] == 2:
        warnings.append("Your kernel does not support kernel memory TCP limit capabilities or the cgroup "
                        "is not mounted. Limitation discarded.")


def _check_cgroupns(value, hc, env, warnings):
    if value not in (None, "", "host", "private"):
        raise InvalidParameter("invalid cgroup namespace mode: %s (use host or private)" % value)


def _check_paths(value, hc, env, warnings):
    for p in value or []:
        if not isinstance(p, str) or not p.startswith("/"):
            raise InvalidParameter("masked and read-only paths must be absolute: %r" % (p,))


def volume_driver(hc, mount_points):
    # type: (dict, list) -> None
    """HostConfig.VolumeDriver, the driver of the volumes the container makes: any other than
    local is refused when the container has a volume (dockerd's words); without one it is kept,
    and it has no effect in dockerd either."""
    value = hc.get("VolumeDriver") or ""
    if value not in ("", "local") and any(m.get("Type") == "volume" for m in mount_points):
        raise InvalidParameter('error looking up volume plugin %s: plugin "%s" not found (berthd has only '
                               'the local volume driver)' % (value, value))


def _check_runtime(value, hc, env, warnings):
    if value not in (None, "", "runc", "berth"):
        raise InvalidParameter("Unknown runtime specified %s" % value)


def _check_isolation(value, hc, env, warnings):
    if value not in (None, "", "default"):
        raise InvalidParameter("Invalid isolation: %r - linux only supports 'default'" % value)


def _check_domainname(value, hc, env, warnings):
    if value and (hc.get("UTSMode") or "") == "host":
        raise InvalidParameter("Conflicting options: domainname and the UTS mode")


def _check_hostname_uts(value, hc, env, warnings):
    if value and (hc.get("UTSMode") or "") == "host":
        raise InvalidParameter("Conflicting options: hostname and the UTS mode")


def _ok(value, hc, env, warnings):
    """Applied: validated where it is used."""


# field -> (disposition, checker). ELSEWHERE: another part of berth owns the field
# (networking; restart policy, health check, logging; security options and user namespaces).
HOST_FIELDS = {
    "Binds": (APPLIED, _ok), "ContainerIDFile": (APPLIED, _ok),  # written by the client
    "LogConfig": (ELSEWHERE, _ok), "NetworkMode": (ELSEWHERE, _ok), "PortBindings": (ELSEWHERE, _ok),
    "RestartPolicy": (ELSEWHERE, _ok), "AutoRemove": (APPLIED, _ok),
    "VolumeDriver": (APPLIED, _ok), "VolumesFrom": (APPLIED, _ok),  # VolumeDriver: volume_driver()
    "ConsoleSize": (APPLIED, _ok), "Annotations": (APPLIED, _ok),  # kept, shown by inspect
    "CapAdd": (APPLIED, _ok), "CapDrop": (APPLIED, _ok), "CgroupnsMode": (APPLIED, _check_cgroupns),
    "Dns": (ELSEWHERE, _ok), "DnsOptions": (ELSEWHERE, _ok), "DnsSearch": (ELSEWHERE, _ok),
    "ExtraHosts": (ELSEWHERE, _ok), "GroupAdd": (APPLIED, _ok), "IpcMode": (APPLIED, _ok),
    "Cgroup": (REFUSED, _refuse_set("Cgroup", "use CgroupnsMode or CgroupParent")),
    "Links": (ELSEWHERE, _ok), "OomScoreAdj": (APPLIED, _check_oom_score), "PidMode": (APPLIED, _ok),
    "Privileged": (APPLIED, _ok), "PublishAllPorts": (ELSEWHERE, _ok), "ReadonlyRootfs": (APPLIED, _ok),
    "SecurityOpt": (ELSEWHERE, _ok),
    "StorageOpt": (REFUSED, _refuse_set("StorageOpt", "the storage drivers have no per-container options "
                                        "(no size quota)")),
    "Tmpfs": (APPLIED, _ok), "UTSMode": (APPLIED, _ok), "UsernsMode": (ELSEWHERE, _ok),
    "ShmSize": (APPLIED, _ok), "Sysctls": (APPLIED, _ok), "Runtime": (APPLIED, _check_runtime),
    "Isolation": (APPLIED, _check_isolation), "MaskedPaths": (APPLIED, _check_paths),
    "ReadonlyPaths": (APPLIED, _check_paths), "Init": (APPLIED, _ok),
    # Resources
    "CpuShares": (APPLIED, _ok), "Memory": (APPLIED, _ok), "CgroupParent": (APPLIED, _ok),
    "BlkioWeight": (APPLIED, _check_blkio_weight), "BlkioWeightDevice": (WARNED, _check_weight_device),
    "BlkioDeviceReadBps": (APPLIED, _check_throttle("BlkioDeviceReadBps")),
    "BlkioDeviceWriteBps": (APPLIED, _check_throttle("BlkioDeviceWriteBps")),
    "BlkioDeviceReadIOps": (APPLIED, _check_throttle("BlkioDeviceReadIOps")),
    "BlkioDeviceWriteIOps": (APPLIED, _check_throttle("BlkioDeviceWriteIOps")),
    "CpuPeriod": (APPLIED, _ok), "CpuQuota": (APPLIED, _ok),
    "CpuRealtimePeriod": (REFUSED, _refuse_set("CpuRealtimePeriod", "berthd gives containers no "
                                               "real-time CPU budget")),
    "CpuRealtimeRuntime": (REFUSED, _refuse_set("CpuRealtimeRuntime", "berthd gives containers no "
                                                "real-time CPU budget")),
    "CpusetCpus": (APPLIED, _check_cpuset), "CpusetMems": (APPLIED, _check_cpuset),
    "Devices": (APPLIED, _ok), "DeviceCgroupRules": (APPLIED, _ok),
    "DeviceRequests": (REFUSED, _refuse_set("DeviceRequests", "berthd has no device drivers (GPUs)")),
    "KernelMemory": (WARNED, _warn_set("Setting kernel memory limit is no longer supported; ignoring")),
    "KernelMemoryTCP": (APPLIED, _check_kmem_tcp),
    "MemoryReservation": (APPLIED, _check_reservation), "MemorySwap": (APPLIED, _check_memory_swap),
    "MemorySwappiness": (APPLIED, _check_swappiness), "NanoCpus": (APPLIED, _ok),
    "OomKillDisable": (APPLIED, _check_oom_kill_disable), "PidsLimit": (APPLIED, _ok),
    "Ulimits": (APPLIED, _ok),
    "CpuCount": (REFUSED, _refuse_set("CpuCount", "it is Windows-only")),
    "CpuPercent": (REFUSED, _refuse_set("CpuPercent", "it is Windows-only")),
    "IOMaximumIOps": (REFUSED, _refuse_set("IOMaximumIOps", "it is Windows-only")),
    "IOMaximumBandwidth": (REFUSED, _refuse_set("IOMaximumBandwidth", "it is Windows-only")),
    "Mounts": (APPLIED, _ok),
}

CONFIG_FIELDS = {
    "Hostname": (APPLIED, _check_hostname_uts), "Domainname": (APPLIED, _check_domainname),
    "User": (APPLIED, _ok), "AttachStdin": (APPLIED, _ok), "AttachStdout": (APPLIED, _ok),
    "AttachStderr": (APPLIED, _ok), "ExposedPorts": (ELSEWHERE, _ok), "Tty": (APPLIED, _ok),
    "OpenStdin": (APPLIED, _ok), "StdinOnce": (APPLIED, _ok), "Env": (APPLIED, _ok), "Cmd": (APPLIED, _ok),
    "Healthcheck": (ELSEWHERE, _ok), "ArgsEscaped": (APPLIED, _ok),  # Windows-only: kept as given
    "Image": (APPLIED, _ok), "Volumes": (APPLIED, _ok), "WorkingDir": (APPLIED, _ok),
    "Entrypoint": (APPLIED, _ok), "NetworkDisabled": (ELSEWHERE, _ok),
    "MacAddress": (ELSEWHERE, _warn_set("The container-wide MacAddress field is now deprecated. It should be "
                                        "specified in EndpointsConfig instead.")),  # applied by networking
    "OnBuild": (APPLIED, _ok), "Labels": (APPLIED, _ok), "StopSignal": (APPLIED, _ok),
    "StopTimeout": (APPLIED, _ok), "Shell": (APPLIED, _ok),  # OnBuild, Shell: kept for commit
}


def _first_line(*paths):
    # type: (str) -> str
    """The first line of the first of paths that has one."""
    for path in paths:
        try:
            with open(path) as f:
                line = f.readline().strip()
        except OSError:
            continue
        if line:
            return line
    return ""


def environment(cgroup_version, controllers):
    # type: (int, object) -> dict
    """What the checks need to know of this host."""
    swap = ("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes" if cgroup_version == 1 else
            "/sys/fs/cgroup/memory.swap.max")
    return {"cgroup_version": cgroup_version, "controllers": set(controllers),
            "cpus": _first_line("/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective",
                                "/sys/devices/system/cpu/online"),
            "mems": _first_line("/sys/fs/cgroup/cpuset/cpuset.mems", "/sys/fs/cgroup/cpuset.mems.effective",
                                "/sys/devices/system/node/online") or "0",
            "swap_limit": os.path.exists(swap) or (cgroup_version == 2 and "memory" in controllers),
            "blkio_weight": os.path.exists("/sys/fs/cgroup/blkio/blkio.weight")
            or os.path.exists("/sys/fs/cgroup/blkio/blkio.bfq.weight")}


def check(config, hc, env):
    # type: (dict, dict, dict) -> list
    """Refuse (InvalidParameter) or warn about each field as the tables say; returns warnings."""
    warnings = []  # type: list
    for field, (_, checker) in sorted(HOST_FIELDS.items()):
        checker(hc.get(field), hc, env, warnings)
    for field, (_, checker) in sorted(CONFIG_FIELDS.items()):
        checker(config.get(field), hc, env, warnings)
    return warnings
