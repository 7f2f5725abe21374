"""What the applied HostConfig fields do beyond being set: the --init reaps and forwards
signals, namespaces joined from another container, the device cgroup letting through only
the devices given, and the refusals of sysctls and propagations berthd cannot give."""

import os
import time

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound
from tests.engine.conftest import run_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

NONE = {"NetworkMode": "none"}


def test_init_reaps_orphans_and_passes_the_exit_code(clean_containers):
    script = ("(sleep 0.2 &); sleep 0.6; cat /proc/1/comm; "
              "grep -l zombie /proc/[0-9]*/status 2>/dev/null | wc -l; exit 3")
    code, out, err, _ = run_container(clean_containers, script, HostConfig=dict(NONE, Init=True))
    assert code == 3, err
    assert out.decode().split() == ["berth-init", "0"]


def test_init_forwards_the_stop_signal(clean_containers):
    eng = clean_containers
    cmd = ["sh", "-c", "trap 'exit 42' TERM; sleep 60 & wait"]
    cid = eng.container_create({"Image": "busybox", "Cmd": cmd, "HostConfig": dict(NONE, Init=True)})["Id"]
    eng.container_start(cid)
    time.sleep(0.3)
    t0 = time.time()
    eng.container_stop(cid, timeout=10)
    assert time.time() - t0 < 5  # the trap ran: no SIGKILL after the timeout
    assert eng.container_inspect(cid)["State"]["ExitCode"] == 42


def test_init_reports_a_missing_command(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["nosuchcmd"],
                                "HostConfig": dict(NONE, Init=True)})["Id"]
    with pytest.raises(InvalidParameter) as err:
        eng.container_start(cid)
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in str(err.value)


def test_pid_ipc_uts_join_another_container(clean_containers):
    eng = clean_containers
    other = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "60"], "Hostname": "shared-uts",
                                  "HostConfig": NONE}, name="ns-owner")["Id"]
    eng.container_start(other)
    pid = eng.containers.get(other).alive_pid()
    want = [os.readlink("/proc/%d/ns/%s" % (pid, k)) for k in ("pid", "ipc", "uts")]
    code, out, err, _ = run_container(
        eng, "for k in pid ipc uts; do readlink /proc/self/ns/$k; done; hostname; ps -o comm",
        HostConfig=dict(NONE, PidMode="container:ns-owner", IpcMode="container:ns-owner",
                        UTSMode="container:" + other[:12]))
    lines = out.decode().split()
    assert code == 0, err
    assert lines[:3] == want and lines[3] == "shared-uts"
    assert "sleep" in lines  # the other container's process is visible


def test_joining_a_stopped_or_unknown_container_is_refused(clean_containers):
    eng = clean_containers
    with pytest.raises(NotFound):
        eng.container_create({"Image": "busybox", "HostConfig": {"PidMode": "container:nope"}})
    stopped = eng.container_create({"Image": "busybox", "Cmd": ["true"]}, name="stopped-ns")["Id"]
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                "HostConfig": dict(NONE, IpcMode="container:stopped-ns")})["Id"]
    with pytest.raises(Conflict) as err:
        eng.container_start(cid)
    assert "stopped-ns" in str(err.value) and "not running" in str(err.value)
    assert stopped


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse here")
def test_device_cgroup_lets_through_only_the_given_devices(clean_containers):
    from runtime.container.proc import cgroups
    if cgroups.detect_version() != 1:
        pytest.skip("the v2 device program is the isolation part's")
    script = "mknod /dev/f c 10 229 2>/dev/null; (exec 3<>/dev/f) 2>&1 && echo opened"
    _, out, _, _ = run_container(clean_containers, script, HostConfig=NONE)
    assert b"Operation not permitted" in out and b"opened" not in out
    _, out, _, _ = run_container(clean_containers, "(exec 3<>/dev/fuse) 2>&1 && echo opened",
                                 HostConfig=dict(NONE, Devices=[{"PathOnHost": "/dev/fuse"}]))
    assert b"opened" in out
    _, out, _, _ = run_container(clean_containers, script,
                                 HostConfig=dict(NONE, DeviceCgroupRules=["c 10:229 rw"]))
    assert b"opened" in out


@pytest.mark.parametrize("hc,needle", [
    ({"Sysctls": {"kernel.panic": "1"}}, "not in a separate kernel namespace"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"}, "host's network namespace"),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"}, "IpcMode host"),
    ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, "invalid ulimit type"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 2, "Hard": 1}]}, "soft limit"),
    ({"Devices": [{"PathOnHost": "/etc/passwd"}]}, "not a device node"),
    ({"Devices": [{"PathOnHost": "/dev/nonexistent"}]}, "error gathering device information"),
    ({"DeviceCgroupRules": ["x 1:2 rwm"]}, "invalid device cgroup rule"),
    ({"PidMode": "bogus"}, "invalid PidMode"),
    ({"OomScoreAdj": 1001}, "range for oom score adj"),
    ({"CpusetCpus": "0-"}, "cpuset cpus"),
    ({"Binds": ["/tmp:/x:rslave"]}, "not a shared or slave mount"),
    ({"Binds": ["/tmp:/x:rshared"]}, "not supported"),
    ({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/x",
                  "BindOptions": {"Propagation": "shared"}}]}, "not supported"),
    ({"VolumesFrom": ["nope"]}, "nope"),
    ({"UTSMode": "host"}, "Conflicting options: hostname"),
])
def test_what_cannot_be_honoured_is_refused(clean_containers, hc, needle):
    config = {"Image": "busybox", "Cmd": ["true"], "HostConfig": hc}
    if hc.get("UTSMode"):
        config["Hostname"] = "x"
    with pytest.raises((InvalidParameter, NotFound)) as err:
        clean_containers.container_create(config)
    assert needle in str(err.value)


def test_private_propagation_and_bind_options(clean_containers, tmp_path):
    (tmp_path / "f").write_text("x")
    _, out, _, _ = run_container(
        clean_containers, "grep -E ' /(b|c) ' /proc/self/mountinfo",
        HostConfig=dict(NONE, Binds=[str(tmp_path) + ":/b:rprivate"],
                        Mounts=[{"Type": "bind", "Source": str(tmp_path / "new"), "Target": "/c",
                                 "BindOptions": {"CreateMountpoint": True, "NonRecursive": True}}]))
    lines = out.decode().splitlines()
    assert len(lines) == 2 and not any("shared:" in x or "master:" in x for x in lines)
    assert (tmp_path / "new").is_dir()


def test_default_start_keeps_the_prepared_spare(clean_containers):
    from runtime.container import runspec
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"], "HostConfig": NONE})["Id"]
    c = eng.containers.get(cid)
    run = runspec.build(c, "/unused", lambda image_id: ("/", ""), None)
    assert not runspec.fresh(run)
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                "HostConfig": dict(NONE, PidMode="host")})["Id"]
    run = runspec.build(eng.containers.get(cid), "/unused", lambda image_id: ("/", ""), None)
    assert runspec.fresh(run)
