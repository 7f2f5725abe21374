"""Every HostConfig and Config field of API 1.44, from the table below: each is applied
(observed inside the container, in its cgroup, or for fields that only the client or a later
command read, kept by inspect), refused (a 400: InvalidParameter) or warned (a create
Warning). None is accepted and ignored. Fields another part of berth owns (networking,
restart/health/logging, security options) are listed as such and checked there."""

import os
import socket

import pytest

from runtime.container import hostconfig
from runtime.errors import InvalidParameter
from tests.engine.conftest import run_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

MIB = 1024 * 1024

# API 1.44's HostConfig (Resources included) and ContainerConfig, as the spec lists them
API_HOST_FIELDS = (
    "Binds ContainerIDFile LogConfig NetworkMode PortBindings RestartPolicy AutoRemove VolumeDriver "
    "VolumesFrom ConsoleSize Annotations CapAdd CapDrop CgroupnsMode Dns DnsOptions DnsSearch ExtraHosts "
    "GroupAdd IpcMode Cgroup Links OomScoreAdj PidMode Privileged PublishAllPorts ReadonlyRootfs "
    "SecurityOpt StorageOpt Tmpfs UTSMode UsernsMode ShmSize Sysctls Runtime Isolation MaskedPaths "
    "ReadonlyPaths Init CpuShares Memory CgroupParent BlkioWeight BlkioWeightDevice BlkioDeviceReadBps "
    "BlkioDeviceWriteBps BlkioDeviceReadIOps BlkioDeviceWriteIOps CpuPeriod CpuQuota CpuRealtimePeriod "
    "CpuRealtimeRuntime CpusetCpus CpusetMems Devices DeviceCgroupRules DeviceRequests KernelMemory "
    "KernelMemoryTCP MemoryReservation MemorySwap MemorySwappiness NanoCpus OomKillDisable PidsLimit "
    "Ulimits CpuCount CpuPercent IOMaximumIOps IOMaximumBandwidth Mounts").split()
API_CONFIG_FIELDS = (
    "Hostname Domainname User AttachStdin AttachStdout AttachStderr ExposedPorts Tty OpenStdin StdinOnce "
    "Env Cmd Healthcheck ArgsEscaped Image Volumes WorkingDir Entrypoint NetworkDisabled MacAddress "
    "OnBuild Labels StopSignal StopTimeout Shell").split()
ELSEWHERE = {"LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "Dns", "DnsOptions", "DnsSearch",
             "ExtraHosts", "Links", "PublishAllPorts", "SecurityOpt", "UsernsMode", "ExposedPorts",
             "Healthcheck", "NetworkDisabled", "MacAddress"}


def _block_device():
    """A block device node of this machine (the root filesystem's), or None."""
    st = os.stat("/")
    try:
        link = os.readlink("/sys/dev/block/%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev)))
    except OSError:
        return None
    path = "/dev/" + os.path.basename(link)
    return path if os.path.exists(path) else None


def _ns(kind):
    return os.readlink("/proc/self/ns/" + kind)


def _cap_bit(out, n):
    line = [x for x in out.split("\n") if x.startswith("CapEff:")][0]
    return bool(int(line.split()[1], 16) & (1 << n))


# --- how a row is checked -------------------------------------------------------------------
def observed(cmd, expect):
    """Applied: `cmd` in a container with the field set prints something expect(stdout) accepts
    (a str: contained in it)."""
    return ("observed", cmd, expect)


def cgroup(controller, name, expect):
    """Applied: the running container's cgroup file holds expect (a substring)."""
    return ("cgroup", controller, name, expect)


def refused(text):
    return ("refused", text)


def warned(text):
    return ("warned", text)


KEPT = ("kept",)  # read by the client or a later command (commit, stop): inspect shows it


def _rows(tmp):
    blk = _block_device()
    bps = [{"Path": blk, "Rate": MIB}] if blk else None
    host = {
        "Binds": ([tmp + ":/hb:ro"], observed("cat /hb/f; touch /hb/g 2>&1", "hello")),
        "ContainerIDFile": ("/tmp/cid", KEPT),
        "AutoRemove": (True, ("autoremove",)),
        "VolumeDriver": (None, ("volume_driver",)),
        "VolumesFrom": (None, ("volumes_from",)),
        "ConsoleSize": ([30, 100], ("tty", "stty size", "30 100")),
        "Annotations": ({"a.b": "c"}, KEPT),
        "CapAdd": (["SYS_TIME"], observed("cat /proc/self/status", lambda o: _cap_bit(o, 25))),
        "CapDrop": (["CHOWN"], observed("chown 1 /etc/passwd 2>&1", "not permitted")),
        "CgroupnsMode": ("private", observed("cat /proc/self/cgroup",
                                             lambda o: all(x.endswith(":/") for x in o.split()))),
        "GroupAdd": (["1234"], observed("id -G", "1234")),
        "IpcMode": ("host", observed("readlink /proc/self/ns/ipc", _ns("ipc"))),
        "Cgroup": ("container:x", refused("Cgroup is not supported")),
        "OomScoreAdj": (500, observed("cat /proc/self/oom_score_adj", "500")),
        "PidMode": ("host", observed("readlink /proc/self/ns/pid", _ns("pid"))),
        "Privileged": (True, observed("cat /proc/self/status", lambda o: _cap_bit(o, 21))),
        "ReadonlyRootfs": (True, observed("touch /x 2>&1", "Read-only file system")),
        "StorageOpt": ({"size": "1G"}, refused("StorageOpt is not supported")),
        "Tmpfs": ({"/tt": "size=1m"}, observed("grep ' /tt ' /proc/mounts", "size=1024k")),
        "UTSMode": ("host", observed("hostname", socket.gethostname())),
        "ShmSize": (2 * MIB, observed("grep ' /dev/shm ' /proc/mounts", "size=2048k")),
        "Sysctls": ({"kernel.msgmax": "4096"}, observed("cat /proc/sys/kernel/msgmax", "4096")),
        "Runtime": ("kata", refused("Unknown runtime")),
        "Isolation": ("hyperv", refused("Invalid isolation")),
        "MaskedPaths": (["/etc/hostname"], observed("wc -c < /etc/hostname", "0")),
        "ReadonlyPaths": (["/tmp"], observed("touch /tmp/x 2>&1", "Read-only file system")),
        "Init": (True, observed("cat /proc/1/comm", "berth-init")),
        "CpuShares": (512, cgroup("cpu", "cpu.shares", "512")),
        "Memory": (64 * MIB, cgroup("memory", "memory.limit_in_bytes", str(64 * MIB))),
        "CgroupParent": (None, ("cgroup_parent",)),
        "BlkioWeight": (300, cgroup("blkio", "blkio.weight", "300")),
        "BlkioWeightDevice": ([{"Path": blk or "/dev/null", "Weight": 300}], warned("Weight-device")),
        "BlkioDeviceReadBps": (bps, cgroup("blkio", "blkio.throttle.read_bps_device", " %d" % MIB)),
        "BlkioDeviceWriteBps": (bps, cgroup("blkio", "blkio.throttle.write_bps_device", " %d" % MIB)),
        "BlkioDeviceReadIOps": (bps, cgroup("blkio", "blkio.throttle.read_iops_device", " %d" % MIB)),
        "BlkioDeviceWriteIOps": (bps, cgroup("blkio", "blkio.throttle.write_iops_device", " %d" % MIB)),
        "CpuPeriod": (50000, cgroup("cpu", "cpu.cfs_period_us", "50000")),
        "CpuQuota": (20000, cgroup("cpu", "cpu.cfs_quota_us", "20000")),
        "CpuRealtimePeriod": (1000000, refused("real-time")),
        "CpuRealtimeRuntime": (950000, refused("real-time")),
        "CpusetCpus": ("0", cgroup("cpuset", "cpuset.cpus", "0")),
        "CpusetMems": ("0", cgroup("cpuset", "cpuset.mems", "0")),
        "Devices": ([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"}],
                    observed("ls -l /dev/xnull; echo hi > /dev/xnull && echo written", "1,   3")),
        "DeviceCgroupRules": (["c 42:* rmw"], cgroup("devices", "devices.list", "c 42:* rwm")),
        "DeviceRequests": ([{"Driver": "nvidia", "Count": -1}], refused("DeviceRequests")),
        "KernelMemory": (64 * MIB, warned("kernel memory limit")),
        "KernelMemoryTCP": (8 * MIB, cgroup("memory", "memory.kmem.tcp.limit_in_bytes", str(8 * MIB))),
        "MemoryReservation": (32 * MIB, cgroup("memory", "memory.soft_limit_in_bytes", str(32 * MIB))),
        "MemorySwap": (None, ("memory_swap",)),
        "MemorySwappiness": (10, cgroup("memory", "memory.swappiness", "10")),
        "NanoCpus": (500000000, cgroup("cpu", "cpu.cfs_quota_us", "50000")),
        "OomKillDisable": (True, cgroup("memory", "memory.oom_control", "oom_kill_disable 1")),
        "PidsLimit": (50, cgroup("pids", "pids.max", "50")),
        "Ulimits": ([{"Name": "nofile", "Soft": 512, "Hard": 1024}],
                    observed("ulimit -n; ulimit -Hn", "512\n1024")),
        "CpuCount": (2, refused("Windows-only")),
        "CpuPercent": (50, refused("Windows-only")),
        "IOMaximumIOps": (100, refused("Windows-only")),
        "IOMaximumBandwidth": (100, refused("Windows-only")),
        "Mounts": ([{"Type": "tmpfs", "Target": "/mt", "TmpfsOptions": {"SizeBytes": MIB, "Mode": 0o700}}],
                   observed("grep ' /mt ' /proc/mounts", "size=1024k,mode=700")),
    }
    config = {
        "Hostname": ("hx", observed("hostname", "hx")),
        "Domainname": ("example.org", observed("cat /proc/sys/kernel/domainname", "example.org")),
        "User": ("1000", observed("id -u", "1000")),
        "AttachStdin": (True, KEPT), "AttachStdout": (True, KEPT), "AttachStderr": (True, KEPT),
        "Tty": (True, ("tty", "test -t 1 && echo is-a-tty", "is-a-tty")),
        "OpenStdin": (True, KEPT), "StdinOnce": (True, KEPT),
        "Env": (["A=bee"], observed("echo $A", "bee")),
        "Cmd": (None, observed("echo from-cmd", "from-cmd")),
        "ArgsEscaped": (True, KEPT), "Image": ("busybox:latest", KEPT),
        "Volumes": ({"/vol": {}}, observed("grep ' /vol ' /proc/mounts", "/vol")),
        "WorkingDir": ("/wd", observed("pwd", "/wd")),
        "Entrypoint": (["/bin/echo", "ep"], ("entrypoint",)),
        "OnBuild": (["RUN true"], KEPT), "Labels": ({"k": "v"}, KEPT), "StopSignal": ("SIGUSR1", KEPT),
        "StopTimeout": (3, KEPT), "Shell": (["/bin/sh", "-c"], KEPT),
    }
    return host, config


def test_the_tables_cover_api_1_44():
    assert sorted(hostconfig.HOST_FIELDS) == sorted(API_HOST_FIELDS)
    assert sorted(hostconfig.CONFIG_FIELDS) == sorted(API_CONFIG_FIELDS)
    host, config = _rows("/tmp")
    assert sorted(set(host) | (ELSEWHERE & set(API_HOST_FIELDS))) == sorted(API_HOST_FIELDS)
    assert sorted(set(config) | (ELSEWHERE & set(API_CONFIG_FIELDS))) == sorted(API_CONFIG_FIELDS)
    assert not (set(host) | set(config)) & ELSEWHERE
    for field in ELSEWHERE:
        table = hostconfig.HOST_FIELDS if field in hostconfig.HOST_FIELDS else hostconfig.CONFIG_FIELDS
        assert table[field][0] == hostconfig.ELSEWHERE, field


def _cg_file(eng, cid, controller, name):
    cg = eng.containers.get(cid).cgroup()
    base = cg.paths.get(controller) if cg.version == 1 else cg.path
    with open(os.path.join(base, name)) as f:
        return f.read()


def _check(eng, section, field, value, how, tmp_path):
    kind = how[0]
    # NetworkMode none: the default network's warning is not this field's
    config = {"Image": "busybox:latest", "Cmd": ["sleep", "30"], "HostConfig": {"NetworkMode": "none"}}
    target = config["HostConfig"] if section == "host" else config
    if value is not None:
        target[field] = value
    if kind == "refused":
        with pytest.raises(InvalidParameter) as err:
            eng.container_create(config)
        assert how[1] in str(err.value)
        return
    if kind in ("warned", "kept", "cgroup"):
        res = eng.container_create(config)
        try:
            info = eng.container_inspect(res["Id"])
            shown = info["HostConfig"] if section == "host" else info["Config"]
            if kind == "warned" or (kind == "cgroup" and any(field in w or "not support" in w
                                                                for w in res["Warnings"])):
                assert res["Warnings"], field
                if kind == "warned":
                    assert any(how[1] in w for w in res["Warnings"]), res["Warnings"]
                return
            assert res["Warnings"] == [] or field in ("OomKillDisable",), res["Warnings"]
            if kind == "kept":
                assert shown[field] == value
                return
            if eng.containers.get(res["Id"]).cgroup().version != 1:
                pytest.skip("the cgroup rows name v1 files (this machine's layout)")
            eng.container_start(res["Id"])
            assert how[3] in _cg_file(eng, res["Id"], how[1], how[2])
        finally:
            eng.container_remove(res["Id"], force=True)
        return
    extra = {k: v for k, v in config.items() if k not in ("Image", "Cmd")}
    if kind == "observed":
        _, out, err, _ = run_container(eng, how[1], **extra)
        text, expect = out.decode(), how[2]
        assert (expect(text) if callable(expect) else expect in text), (field, text, err)
        return
    if kind == "tty":
        extra["Tty"] = True
        _, out, _, _ = run_container(eng, how[1], **extra)
        assert how[2] in out.decode()
        return
    _SPECIAL[kind](eng, tmp_path)


def _autoremove(eng, tmp_path):
    from tests.imagefactory import wait_for
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"],
                                "HostConfig": {"AutoRemove": True}})["Id"]
    eng.container_start(cid)
    wait_for(lambda: all(c["Id"] != cid for c in eng.container_list(all=True)), timeout=10)


def _volumes_from(eng, tmp_path):
    src = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", "echo shared > /data/f"],
                                "Volumes": {"/data": {}}})["Id"]
    try:
        eng.container_start(src)
        eng.container_wait(src)
        code, out, _, _ = run_container(eng, "cat /data/f; touch /data/g 2>&1",
                                        HostConfig={"VolumesFrom": [src + ":ro"]})
        assert b"shared" in out and b"Read-only file system" in out
    finally:
        eng.container_remove(src, force=True, volumes=True)


def _cgroup_parent(eng, tmp_path):
    from runtime.container.proc import cgroups
    parent = eng.test_cgroup_parent + "/sub"
    try:
        code, out, _, _ = run_container(eng, "cat /proc/self/cgroup", HostConfig={"CgroupParent": parent})
        assert ("/" + parent + "/") in out.decode()
    finally:
        for mnt in set(cgroups.v1_mounts().values()) if cgroups.detect_version() == 1 else {"/sys/fs/cgroup"}:
            if os.path.isdir(mnt + "/" + parent):
                os.rmdir(mnt + "/" + parent)


def _memory_swap(eng, tmp_path):
    res = eng.container_create({"Image": "busybox:latest", "Cmd": ["sleep", "30"],
                                "HostConfig": {"Memory": 64 * MIB, "MemorySwap": 128 * MIB}})
    try:
        eng.container_start(res["Id"])
        cg = eng.containers.get(res["Id"]).cgroup()
        memsw = os.path.join(cg.paths["memory"], "memory.memsw.limit_in_bytes") if cg.version == 1 else None
        if memsw and os.path.exists(memsw):
            assert open(memsw).read().strip() == str(128 * MIB)
        elif cg.version == 2:
            assert _cg_file(eng, res["Id"], "memory", "memory.swap.max").strip() == str(64 * MIB)
        else:  # no swap accounting: the create said so
            assert any("swap limit" in w for w in res["Warnings"]), res["Warnings"]
    finally:
        eng.container_remove(res["Id"], force=True)


def _volume_driver(eng, tmp_path):
    """Kept without volumes (it has no effect then, in dockerd either); refused with one."""
    cid = eng.container_create({"Image": "busybox:latest", "HostConfig": {"VolumeDriver": "flocker"}})["Id"]
    try:
        assert eng.container_inspect(cid)["HostConfig"]["VolumeDriver"] == "flocker"
    finally:
        eng.container_remove(cid, force=True)
    with pytest.raises(InvalidParameter, match='plugin "flocker" not found'):
        eng.container_create({"Image": "busybox:latest", "Volumes": {"/data": {}},
                              "HostConfig": {"VolumeDriver": "flocker"}})


def _entrypoint(eng, tmp_path):
    code, out, _, _ = run_container(eng, ["x"], Entrypoint=["/bin/echo", "ep"])
    assert out == b"ep x\n"


_SPECIAL = {"autoremove": _autoremove, "volumes_from": _volumes_from, "cgroup_parent": _cgroup_parent,
            "memory_swap": _memory_swap, "entrypoint": _entrypoint, "volume_driver": _volume_driver}


def _all_rows():
    host, config = _rows("/nonexistent")
    return [("host", f) for f in sorted(host)] + [("config", f) for f in sorted(config)]


@pytest.mark.parametrize("section,field", _all_rows())
def test_field_is_applied_refused_or_warned(clean_containers, tmp_path, section, field):
    (tmp_path / "f").write_text("hello")
    host, config = _rows(str(tmp_path))
    value, how = (host if section == "host" else config)[field]
    if field.startswith("BlkioDevice") and value is None:
        pytest.skip("no block device node for the root filesystem")
    _check(clean_containers, section, field, value, how, tmp_path)
