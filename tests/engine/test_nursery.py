"""The spare PID 1's own cgroup (runtime/container/proc/nursery.py, cgroup v1): the forkserver's
spare waits in `<parent>/spare-<pid>`, a start renames that cgroup to the container's (PID 1 is
then in it without a move, so without the kernel's grace period on the start path), a start it
does not fit moves PID 1 and removes it, an unused one goes with the engine, and what a killed
spare left is swept at engine start. And how processes enter a v1 cgroup by themselves (the
spare's PID 1, a PID 1 forked at the start, an exec): "0" written into each `tasks` file."""

import os
import subprocess
import sys
import uuid

import pytest

from runtime.container.proc import cgroups, nursery
from tests.engine.conftest import _cgroup_dirs, make_engine
from tests.imagefactory import wait_for

pytestmark = pytest.mark.skipif(cgroups.detect_version() != 1, reason="v1 only: cgroup v2 has no rename")


def _spare(parent):
    """(name, pid) of the spare cgroup waiting under parent, with its PID 1 in every hierarchy."""
    dirs = _cgroup_dirs(parent)
    names = {e for d in dirs if os.path.isdir(d) for e in os.listdir(d) if e.startswith(nursery.PREFIX)}
    for name in names:
        pids = [cgroups.read_value(d + "/cgroup.procs").split() for d in cgroups.CgroupV1(parent, name).dirs]
        if all(p and p == pids[0] for p in pids) and len(pids[0]) == 1:
            return name, int(pids[0][0])
    return None


def _in_hierarchies(parent, name):
    return [d for d in _cgroup_dirs(parent) if os.path.isdir(os.path.join(d, name))]


@pytest.fixture
def engine(tmp_path, busybox_tar):
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    eng = make_engine(tmp_path / "root", {"cgroup-parent": parent})
    with open(busybox_tar, "rb") as f:
        eng.image_load(f)
    eng.test_cgroup_parent = parent
    # the forkserver starts with the first request that needs it
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    eng.container_start(cid)
    eng.container_wait(cid)
    eng.container_remove(cid, force=True)
    yield eng
    for c in eng.container_list(all=True):
        eng.container_remove(c["Id"], force=True)
    eng.close()
    for d in _cgroup_dirs(parent):
        if os.path.isdir(d):
            os.rmdir(d)  # fails (and the test with it) if anything is left under it


def test_start_renames_the_spare_cgroup(engine):
    eng, parent = engine, engine.test_cgroup_parent
    spare = wait_for(lambda: _spare(parent), 10)
    assert spare, "no spare cgroup under %s" % parent
    name, pid = spare
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "30"],
                                "HostConfig": {"Memory": 64 << 20}})["Id"]
    assert _in_hierarchies(parent, cid) == []  # no directory made at create: the start brings it
    eng.container_start(cid)
    state = eng.container_inspect(cid)["State"]
    assert state["Running"] and state["Pid"] == pid  # the spare's PID 1, not a new one
    assert _in_hierarchies(parent, name) == []
    cg = eng.containers.get(cid).cgroup()
    assert [cgroups.read_value(os.path.join(d, "cgroup.procs")).split() for d in cg.dirs] == \
        [[str(pid)]] * len(cg.dirs)
    assert cgroups.read_value(cg.paths["memory"] + "/memory.limit_in_bytes").strip() == str(64 << 20)
    with open(cg.paths["devices"] + "/devices.list") as f:
        assert "a *:* rwm" not in f.read()  # the device rules were written on the renamed cgroup
    eng.container_remove(cid, force=True)
    assert wait_for(lambda: not cg.exists(), 10)
    assert wait_for(lambda: _spare(parent), 10)  # the next spare waits in one of its own


def test_a_start_it_does_not_fit_moves_pid1_and_removes_it(engine):
    """A cpuset (an optional controller) is not among the spare's hierarchies: PID 1 moves."""
    eng, parent = engine, engine.test_cgroup_parent
    name, pid = wait_for(lambda: _spare(parent), 10)
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "30"],
                                "HostConfig": {"CpusetCpus": "0"}})["Id"]
    eng.container_start(cid)
    assert eng.container_inspect(cid)["State"]["Pid"] == pid
    cg = eng.containers.get(cid).cgroup()
    assert "cpuset" in cg.paths
    for d in cg.dirs:
        assert cgroups.read_value(os.path.join(d, "cgroup.procs")).split() == [str(pid)]
    assert wait_for(lambda: _in_hierarchies(parent, name) == [], 5)
    eng.container_remove(cid, force=True)


def test_device_rules_other_than_the_defaults_are_never_changed_under_pid1(engine):
    """The spare's cgroup has the default device rules; a container with other ones (here
    privileged: no restriction) gets a cgroup of its own with its rules in place before PID 1
    is moved in, never the spare's rewritten while PID 1 builds its root (between the "deny
    all" and the allow lines it would be denied /dev/ptmx or /dev/null)."""
    eng, parent = engine, engine.test_cgroup_parent
    name, pid = wait_for(lambda: _spare(parent), 10)
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "30"], "Tty": True,
                                "HostConfig": {"Privileged": True}})["Id"]
    eng.container_start(cid)
    assert eng.container_inspect(cid)["State"]["Pid"] == pid
    cg = eng.containers.get(cid).cgroup()
    with open(cg.paths["devices"] + "/devices.list") as f:
        assert f.read().split("\n")[0] == "a *:* rwm"
    assert wait_for(lambda: _in_hierarchies(parent, name) == [], 5)
    eng.container_remove(cid, force=True)


def test_the_unused_spare_cgroup_goes_with_the_engine_and_leftovers_are_swept(tmp_path, busybox_tar):
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    eng = make_engine(tmp_path / "root", {"cgroup-parent": parent})
    try:
        with open(busybox_tar, "rb") as f:
            eng.image_load(f)
        cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
        eng.container_start(cid)
        eng.container_wait(cid)
        eng.container_remove(cid, force=True)
        name, pid = wait_for(lambda: _spare(parent), 10)
    finally:
        eng.close()
    assert _in_hierarchies(parent, name) == []  # removed before close returned
    assert not os.path.exists("/proc/%d" % pid)
    # what a spare killed with SIGKILL leaves: empty directories, swept at the next engine start
    left = [os.path.join(d, nursery.PREFIX + "4194999") for d in _cgroup_dirs(parent)]
    other = [os.path.join(d, "spare-kept") for d in _cgroup_dirs(parent)]
    for d in left + other:
        os.makedirs(d)
    try:
        eng = make_engine(tmp_path / "root", {"cgroup-parent": parent})
        eng.close()
        assert [d for d in left if os.path.isdir(d)] == []
        assert [d for d in other if os.path.isdir(d)] == other  # not a spare's name: not ours
    finally:
        for d in left + other:
            if os.path.isdir(d):
                os.rmdir(d)
        for d in _cgroup_dirs(parent):
            if os.path.isdir(d):
                os.rmdir(d)


def test_a_process_enters_every_v1_hierarchy_through_the_join_files():
    """CgroupV1.join_files: a single-threaded process that writes "0" into each (`tasks`) is
    in the cgroup in every hierarchy, as a move through cgroup.procs would put it."""
    cg = cgroups.CgroupV1("berth-test-" + uuid.uuid4().hex[:12], "joined")
    assert [os.path.basename(f) for f in cg.join_files()] == ["tasks"] * len(cg.dirs)
    cg.make_dirs()
    try:
        code = ("import sys\nfor p in sys.argv[1:]:\n    open(p, 'w').write('0')\n"
                "print(open('/proc/self/cgroup').read())")
        out = subprocess.run([sys.executable, "-c", code] + cg.join_files(), stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        lines = {line.split(":")[1]: line.split(":", 2)[2] for line in out.splitlines() if line}
        want = cg.parent + "/joined"
        for ctl in cg.paths:
            assert [path for ctls, path in lines.items() if ctl in ctls.split(",")] == [want], (ctl, out)
    finally:
        cg.remove_empty()
        cgroups.CgroupV1(cg.parent, "").remove_empty()


def test_a_pid1_forked_at_the_start_enters_its_cgroup_made_before_it(engine):
    """A start the spare cannot serve (here `--pid host`: a fresh fork) on a kernel where a
    process entering by itself skips the threadgroup lock: the monitor makes the cgroup, with
    its limits and device rules, before the fork, and PID 1 enters it first thing."""
    eng = engine
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "30"],
                                "HostConfig": {"PidMode": "host", "Memory": 64 << 20}})["Id"]
    eng.container_start(cid)
    pid = eng.container_inspect(cid)["State"]["Pid"]
    cg = eng.containers.get(cid).cgroup()
    assert cg.self_join() == cgroups._kernel_at_least(5, 5)
    for d in cg.dirs:
        assert cgroups.read_value(os.path.join(d, "cgroup.procs")).split() == [str(pid)]
    assert cgroups.read_value(cg.paths["memory"] + "/memory.limit_in_bytes").strip() == str(64 << 20)
    with open(cg.paths["devices"] + "/devices.list") as f:
        assert "a *:* rwm" not in f.read()
    eng.container_remove(cid, force=True)
    assert wait_for(lambda: not cg.exists(), 10)
