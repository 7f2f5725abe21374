"""cgroup limits on the real kernel, and a new Engine object recovering running and exited
containers from the data root."""

import os
import time

import pytest

from runtime.container.kicker import Kicker
from runtime.container.proc import cgroups
from tests.engine.conftest import make_engine, run_container
from tests.imagefactory import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def _cg_file(eng, cid, controller, name):
    cg = eng.containers.get(cid).cgroup()
    base = cg.paths[controller] if cg.version == 1 else cg.path
    with open(os.path.join(base, name)) as f:
        return f.read().strip()


def test_memory_hog_is_oom_killed(clean_containers):
    mib = 1024 * 1024
    code, _, _, info = run_container(clean_containers, "x=0123456789; while true; do x=$x$x; done",
                                     HostConfig={"Memory": 24 * mib, "MemorySwap": 24 * mib})
    assert info["State"]["OOMKilled"] is True
    assert code == 137 and info["State"]["ExitCode"] == 137
    assert info["HostConfig"]["Memory"] == 24 * mib
    code, _, _, info = run_container(clean_containers, "exit 0", HostConfig={"Memory": 24 * mib})
    assert info["State"]["OOMKilled"] is False


def test_pids_limit_makes_forks_fail(clean_containers):
    # bounded: 30 sleeps attempted under a limit of 20, not a real fork bomb
    script = "i=0; while [ $i -lt 30 ]; do i=$((i+1)); sleep 30 & echo $i; done; echo all-forked"
    code, out, err, info = run_container(clean_containers, script, HostConfig={"PidsLimit": 20})
    assert b"can't fork: Resource temporarily unavailable" in err
    forked = out.decode().split()
    assert "all-forked" not in forked and 10 <= int(forked[-1]) < 20  # the shell itself is one
    assert code == 2


def test_cpu_and_pids_limits_are_written_and_freezer_pauses(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "100"], "HostConfig": {
        "CpuShares": 512, "NanoCpus": 500000000, "PidsLimit": 50}})["Id"]
    eng.container_start(cid)
    cg = eng.containers.get(cid).cgroup()
    if cg.version == 1:
        assert _cg_file(eng, cid, "cpu", "cpu.shares") == "512"
        assert _cg_file(eng, cid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cg_file(eng, cid, "cpu", "cpu.cfs_period_us") == "100000"
        assert _cg_file(eng, cid, "pids", "pids.max") == "50"
        eng.container_pause(cid)
        assert _cg_file(eng, cid, "freezer", "freezer.state") == "FROZEN"
        eng.container_unpause(cid)
        assert _cg_file(eng, cid, "freezer", "freezer.state") == "THAWED"
    else:
        assert _cg_file(eng, cid, "cpu", "cpu.max") == "50000 100000"
    eng.container_remove(cid, force=True)
    assert not cg.exists()


def test_cgroup_layout_detection():
    assert cgroups.detect_version() in (1, 2)
    if cgroups.detect_version() == 1:  # this machine: v1 controllers (+ an empty cgroup2 beside)
        assert {"memory", "pids", "freezer", "cpu"} <= set(cgroups.v1_mounts())


def test_new_engine_recovers_running_and_exited_containers(tmp_path, busybox_tar):
    parent = "berth-test-recover-%d" % os.getpid()
    root = tmp_path / "root"
    eng = make_engine(root, {"cgroup-parent": parent})
    with open(busybox_tar, "rb") as f:
        eng.image_load(f)
    try:
        # StdinOnce: an attached client's EOF closes the container's stdin (as with dockerd)
        run = eng.container_create({"Image": "busybox", "OpenStdin": True, "StdinOnce": True, "Cmd": [
            "sh", "-c", "echo before; while read line; do echo echo:$line; done"]}, name="keeps")["Id"]
        done = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "echo bye; exit 7"]},
                                    name="done")["Id"]
        eng.container_start(run)
        eng.container_start(done)
        assert eng.container_wait(done)["StatusCode"] == 7
        pid = eng.container_inspect(run)["State"]["Pid"]
        monitor = eng.containers.get(run).started()["MonitorPid"]
        eng.close()  # the engine goes away: its forkserver exits, monitors stay
        del eng
        time.sleep(0.2)
        assert os.path.exists("/proc/%d" % pid) and os.path.exists("/proc/%d" % monitor)

        eng2 = make_engine(root, {"cgroup-parent": parent})
        st = eng2.container_inspect("keeps")["State"]
        assert st["Running"] and st["Pid"] == pid
        st = eng2.container_inspect("done")["State"]
        assert st["Status"] == "exited" and st["ExitCode"] == 7
        assert [line for _, line in eng2.container_logs("done")] == [b"bye\n"]
        sock = eng2.container_attach("keeps", stdin=True)
        sock.sendall(b"ping\n")
        assert wait_for(lambda: b"echo:ping\n" in b"".join(line for _, line in eng2.container_logs("keeps")),
                        timeout=20)
        sock.close()  # closes its stdin: the loop ends
        assert eng2.container_wait("keeps", timeout=10)["StatusCode"] == 0
        assert [line for _, line in eng2.container_logs("keeps")] == [b"before\n", b"echo:ping\n"]
        assert sorted(c["Names"][0] for c in eng2.container_list(all=True)) == ["/done", "/keeps"]
        for c in eng2.container_list(all=True):
            eng2.container_remove(c["Id"], force=True)
        eng2.close()
    finally:
        for d in (cgroups.v1_mounts().values() if cgroups.detect_version() == 1 else ["/sys/fs/cgroup"]):
            path = d + "/" + parent
            # deepest first: a failure above may have left a container's cgroup in it
            for sub, _, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def test_devices_cgroup_blocks_host_disks(clean_containers):
    if cgroups.detect_version() != 1:
        pytest.skip("the v2 device controller needs eBPF, not done")
    # loop0 (b 7:0) and /dev/mem (c 1:1) stand for what a container must never open
    script = ("mknod /tmp/disk b 7 0 && echo made; head -c1 /tmp/disk 2>&1; "
              "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem 2>&1; head -c1 /dev/zero | wc -c")
    code, out, _, _ = run_container(clean_containers, script)
    text = out.decode()
    assert "made\n" in text  # mknod is allowed (Docker's "b *:* m"), opening is not
    assert text.count("Operation not permitted") == 2
    assert text.endswith("1\n")  # the allowed ones still work


def test_bad_limits_are_refused(clean_containers):
    from runtime.errors import InvalidParameter
    with pytest.raises(InvalidParameter, match="memoryswap limit should be larger"):
        clean_containers.container_create({"Image": "busybox", "Cmd": ["true"],
                                           "HostConfig": {"Memory": 64 << 20, "MemorySwap": 32 << 20}})
    assert clean_containers.container_list(all=True) == []


def test_cgroup_v2_mechanics_on_the_unified_mount():
    """The v2 manager (create, join, freeze, thaw, destroy) against this machine's cgroup2
    mount, which has no controllers here: limits cannot be checked, the core files can."""
    import subprocess
    import uuid
    root = "/sys/fs/cgroup/unified"
    if cgroups.detect_version() == 2:
        root = "/sys/fs/cgroup"
    elif not os.path.exists(root + "/cgroup.controllers"):
        pytest.skip("no cgroup2 mount")
    parent = "berth-test-v2-" + uuid.uuid4().hex[:8]
    cg = cgroups.CgroupV2(parent, "c1", root=root)
    cg.create({})
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with open(cg.procs_files()[0], "w") as f:
            f.write(str(proc.pid))
        assert cg.pids() == [proc.pid]
        if os.path.exists(cg.path + "/cgroup.freeze"):  # kernel 5.2+
            cg.freeze()
            assert cg.frozen()
            cg.thaw()
            assert not cg.frozen()
        assert cg.oom_killed() is False
        cg.destroy()  # kills what is left
        assert proc.wait(5) == -9
        assert not cg.exists()
    finally:
        proc.kill()
        proc.wait()
        if os.path.isdir(cg.path):
            os.rmdir(cg.path)
        os.rmdir(root + "/" + parent)


def test_create_makes_the_cgroup_and_kicks_the_lock_once_per_ask(clean_containers):
    """create makes the cgroup directories (limits come with the start) and asks the Kicker
    for a no-op cgroup move, where the start will move PID 1 (cgroup v2, or a container with
    an optional controller); on v1 the default container's cgroup comes from the spare at start
    (test_start_renames_the_spare_cgroup). The Kicker's thread runs the kick with the pid it is
    given and ends on close."""
    import threading
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "30"],
                                "HostConfig": {"PidsLimit": 7}})["Id"]
    cg = eng.containers.get(cid).cgroup()
    assert cg.exists() == (eng.container_service.cgroup_version == 2)
    eng.container_start(cid)
    assert _cg_file(eng, cid, "pids", "pids.max") == "7"
    eng.container_remove(cid, force=True)
    assert not cg.exists()
    if eng.container_service.cgroup_version == 1:
        cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                    "HostConfig": {"CpusetCpus": "0", "PidsLimit": 7}})["Id"]
        cg = eng.containers.get(cid).cgroup()
        assert cg.exists() and "cpuset" in cg.paths
        assert _cg_file(eng, cid, "pids", "pids.max") == "max"  # not before the start
        eng.container_remove(cid, force=True)
        assert not cg.exists()

    asked = []
    k = Kicker(lambda: asked.append(1) or os.getpid())
    k.kick()
    thread = k._thread
    assert thread is not None and thread.name == "cgroup-kick"
    assert wait_for(lambda: asked, timeout=10)
    k.close()
    # (this Kicker's own thread: other engines of the same test process may have theirs)
    assert not thread.is_alive() and thread not in threading.enumerate()
