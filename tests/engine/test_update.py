"""`update` of resource limits: written into a running container's live cgroup (observed in
the cgroup files) and kept in HostConfig; a stopped container gets them at its next start;
dockerd's refusals with its wording, and a limit the kernel refuses changes nothing."""

import os
import time

import pytest

from runtime.container import limits
from runtime.container.proc import cgroups
from runtime.errors import Conflict, InvalidParameter, SystemFailure

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

MIB = 1024 * 1024
V1 = cgroups.detect_version() == 1


def _cg(eng, cid, controller, name):
    cg = eng.containers.get(cid).cgroup()
    base = cg.paths[controller] if cg.version == 1 else cg.path
    with open(os.path.join(base, name)) as f:
        return f.read().strip()


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def _running(eng, cmd="sleep 1000", **hc):
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", cmd], "HostConfig": dict(hc)})["Id"]
    eng.container_start(cid)
    return cid


@pytest.mark.skipif(not V1, reason="checks the v1 files (v2: test_v2_files_of_an_update)")
def test_running_container_gets_the_new_limits_in_its_cgroup(clean_containers):
    eng = clean_containers
    cid = _running(eng, Memory=64 * MIB, CpuShares=512, PidsLimit=40)
    assert eng.container_inspect(cid)["HostConfig"]["MemorySwap"] == 128 * MIB  # dockerd's default
    reply = eng.container_update(cid, {"Memory": 32 * MIB, "MemorySwap": 48 * MIB, "CpuShares": 256,
                                       "MemoryReservation": 16 * MIB, "NanoCpus": 500000000,
                                       "PidsLimit": 30})
    assert reply == {"Warnings": []}
    assert _cg(eng, cid, "memory", "memory.limit_in_bytes") == str(32 * MIB)
    assert _cg(eng, cid, "memory", "memory.memsw.limit_in_bytes") == str(48 * MIB)
    assert _cg(eng, cid, "memory", "memory.soft_limit_in_bytes") == str(16 * MIB)
    assert _cg(eng, cid, "cpu", "cpu.shares") == "256"
    assert (_cg(eng, cid, "cpu", "cpu.cfs_period_us"), _cg(eng, cid, "cpu", "cpu.cfs_quota_us")) == \
        ("100000", "50000")
    assert _cg(eng, cid, "pids", "pids.max") == "30"
    hc = eng.container_inspect(cid)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["MemoryReservation"], hc["CpuShares"], hc["NanoCpus"],
            hc["PidsLimit"]) == (32 * MIB, 48 * MIB, 16 * MIB, 256, 500000000, 30)
    # growing past the swap limit: memsw is written first, so the kernel takes both
    eng.container_update(cid, {"Memory": 200 * MIB, "MemorySwap": -1, "PidsLimit": -1})
    assert _cg(eng, cid, "memory", "memory.limit_in_bytes") == str(200 * MIB)
    assert int(_cg(eng, cid, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60
    assert _cg(eng, cid, "pids", "pids.max") == "max"
    assert eng.container_inspect(cid)["HostConfig"]["PidsLimit"] == 0
    # the restart policy of an update without one is left alone (the docker CLI sends Name "")
    eng.container_update(cid, {"RestartPolicy": {"Name": "always"}})
    eng.container_update(cid, {"CpuShares": 300, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}})
    assert eng.container_inspect(cid)["HostConfig"]["RestartPolicy"]["Name"] == "always"


@pytest.mark.skipif(not V1, reason="v1 cpuset hierarchy")
def test_cpuset_added_to_a_running_container_moves_its_processes(clean_containers):
    eng = clean_containers
    cid = _running(eng, "sleep 1000 & sleep 1000")
    c = eng.containers.get(cid)
    assert "cpuset" not in c.cgroup().paths  # created without: no cpuset directory
    deadline = time.time() + 10
    while sorted(_comm(p) for p in c.cgroup().pids()) != ["sleep", "sleep"]:  # sh forked and exec'd
        assert time.time() < deadline
        time.sleep(0.02)
    eng.container_update(cid, {"CpusetCpus": "0", "CpusetMems": "0"})
    assert _cg(eng, cid, "cpuset", "cpuset.cpus") == "0"
    assert _cg(eng, cid, "cpuset", "cpuset.mems") == "0"
    procs = cgroups.read_value(c.cgroup().paths["cpuset"] + "/cgroup.procs").split()
    assert len(procs) == 2  # both sleeps (sh execs the second)
    assert sorted(procs) == sorted(cgroups.read_value(c.cgroup().paths["memory"] + "/cgroup.procs").split())
    for pid in procs:
        with open("/proc/%s/status" % pid) as f:
            assert "Cpus_allowed_list:\t0\n" in f.read()
    # the monitor took the new controller: the directory goes with the container
    eng.container_stop(cid, 1)
    deadline = time.time() + 10
    while os.path.isdir(c.cgroup().paths["cpuset"]) and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.isdir(c.cgroup().paths["cpuset"])


def test_stopped_container_gets_the_limits_at_its_next_start(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "1000"],
                                "HostConfig": {"Memory": 64 * MIB}})["Id"]
    eng.container_update(cid, {"Memory": 40 * MIB, "PidsLimit": 25, "CpuQuota": 20000, "CpuPeriod": 50000})
    eng.container_start(cid)
    memory_file = "memory.limit_in_bytes" if V1 else "memory.max"
    assert _cg(eng, cid, "memory", memory_file) == str(40 * MIB)
    assert _cg(eng, cid, "pids", "pids.max") == "25"
    if V1:
        assert _cg(eng, cid, "cpu", "cpu.cfs_quota_us") == "20000"
        assert _cg(eng, cid, "cpu", "cpu.cfs_period_us") == "50000"
    else:
        assert _cg(eng, cid, "cpu", "cpu.max") == "20000 50000"


@pytest.mark.skipif(not V1, reason="v1 refuses a limit below the usage (v2 reclaims or OOM-kills)")
def test_memory_below_the_usage_is_refused_and_nothing_changes(clean_containers):
    eng = clean_containers
    # 24 MiB in /dev/shm: charged to the container, and without swap it cannot be reclaimed
    cid = _running(eng, "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=24; sleep 1000", Memory=64 * MIB)
    deadline = time.time() + 20
    while int(_cg(eng, cid, "memory", "memory.usage_in_bytes")) < 24 * MIB:
        assert time.time() < deadline, "the container did not fill /dev/shm"
        time.sleep(0.1)
    with pytest.raises(SystemFailure) as err:
        eng.container_update(cid, {"Memory": 8 * MIB, "MemorySwap": 16 * MIB, "CpuShares": 100})
    assert "Cannot update container %s: unable to set memory limit to %d (current usage: " % (cid, 8 * MIB) \
        in str(err.value)
    assert _cg(eng, cid, "memory", "memory.limit_in_bytes") == str(64 * MIB)
    assert _cg(eng, cid, "memory", "memory.memsw.limit_in_bytes") == str(128 * MIB)
    hc = eng.container_inspect(cid)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"]) == (64 * MIB, 128 * MIB, 0)


@pytest.mark.skipif(not V1, reason="the v1 kernel clamps cpu.shares")
def test_cpu_shares_the_kernel_clamps_are_refused_and_restored(clean_containers):
    eng = clean_containers
    cid = _running(eng, CpuShares=512)
    with pytest.raises(SystemFailure, match="the maximum allowed cpu-shares is 262144"):
        eng.container_update(cid, {"CpuShares": 300000})
    assert _cg(eng, cid, "cpu", "cpu.shares") == "512"
    assert eng.container_inspect(cid)["HostConfig"]["CpuShares"] == 512


@pytest.mark.parametrize("created, update, kind, message", [
    ({"Memory": 64 * MIB}, {"Memory": 32 * MIB, "MemorySwap": 16 * MIB}, InvalidParameter,
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"Memory": 64 * MIB}, {"MemorySwap": 32 * MIB}, InvalidParameter,
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({}, {"MemorySwap": 32 * MIB}, InvalidParameter,
     "You should always set the Memory limit when using Memoryswap limit"),
    ({}, {"Memory": 4 * MIB}, InvalidParameter, "Minimum memory limit allowed is 6MB"),
    ({}, {"MemoryReservation": 1 * MIB}, InvalidParameter, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 64 * MIB}, {"Memory": 200 * MIB}, Conflict,
     "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the "
     "same time"),
    ({}, {"Memory": 32 * MIB}, Conflict, "Memory limit should be smaller than already set memoryswap limit"),
    ({"CpuQuota": 50000}, {"NanoCpus": 10 ** 9}, Conflict,
     "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"),
    ({"NanoCpus": 10 ** 9}, {"CpuPeriod": 50000}, Conflict,
     "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"),
    ({}, {"NanoCpus": 10 ** 9, "CpuQuota": 50000}, InvalidParameter,
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({}, {"CpuPeriod": 500}, InvalidParameter, "CPU cfs period can not be less than 1ms"),
    ({}, {"CpuQuota": 10}, InvalidParameter, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({}, {"NanoCpus": 1000 * 10 ** 9}, InvalidParameter, "range of CPUs is from 0.01 to"),
    ({}, {"CpusetCpus": "1000"}, InvalidParameter, "Requested CPUs are not available - requested 1000"),
    ({}, {"CpusetCpus": "a-b"}, InvalidParameter, "Invalid value a-b for cpuset cpus"),
    ({}, {"BlkioWeight": 5}, InvalidParameter, "Range of blkio weight is from 10 to 1000"),
    ({}, {"KernelMemory": 64 * MIB}, InvalidParameter, "cannot update KernelMemory: kernel memory limits"),
    ({}, {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 10}]}, InvalidParameter,
     "cannot update Ulimits"),
    ({}, {"Binds": ["/tmp:/x"]}, InvalidParameter, "cannot update Binds: an update takes only"),
    ({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}}, Conflict,
     "Restart policy cannot be updated because AutoRemove is enabled for the container"),
])
def test_refusals_in_dockerds_words_change_nothing(clean_containers, created, update, kind, message):
    eng = clean_containers
    cid = _running(eng, **created)
    before = eng.container_inspect(cid)["HostConfig"]
    with pytest.raises(kind) as err:
        eng.container_update(cid, update)
    assert message in str(err.value)
    assert eng.container_inspect(cid)["HostConfig"] == before


def test_v2_files_of_an_update(tmp_path):
    """The v2 paths, on a directory tree shaped as the unified hierarchy (this machine's
    cgroup2 has no controllers to test them live)."""
    cg = cgroups.CgroupV2("/berth", "c1", root=str(tmp_path))
    os.makedirs(cg.path)
    for name in ("memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max"):
        open(os.path.join(cg.path, name), "w").close()
    old = {"Memory": 64 * MIB, "MemorySwap": 128 * MIB}
    new = dict(old, Memory=32 * MIB, MemorySwap=96 * MIB, MemoryReservation=16 * MIB, CpuShares=512,
               NanoCpus=1500000000, PidsLimit=0)
    limits.apply(cg, old, new, ["Memory", "MemorySwap", "MemoryReservation", "CpuShares", "NanoCpus",
                               "PidsLimit"])

    def read(name):
        with open(os.path.join(cg.path, name)) as f:
            return f.read()
    assert read("memory.max") == str(32 * MIB)
    assert read("memory.swap.max") == str(64 * MIB)  # v2 counts swap alone
    assert read("memory.low") == str(16 * MIB)
    assert read("cpu.weight") == str(1 + (510 * 9999) // 262142)
    assert read("cpu.max") == "150000 100000"
    assert read("pids.max") == "max"
