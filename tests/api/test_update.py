"""`update` of resource limits through the clients: `berth update`, `docker update` and
docker-py's update_container, each observed in the running container's cgroup file and in
inspect; a refusal is one line and changes nothing."""

import os

import pytest

from runtime.container.proc import cgroups
from tests.api.conftest import inspect_container

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(cgroups.detect_version() != 1, reason="reads the v1 cgroup files")]

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def daemon(loaded):
    """The module's berthd, busybox loaded."""
    return loaded


def _cg(d, name, controller, filename):
    """The running container's v1 cgroup file, found from its PID 1's /proc/PID/cgroup."""
    pid = inspect_container(d, name)["State"]["Pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        rel = [line.split(":", 2)[2].strip() for line in f if controller in line.split(":")[1].split(",")][0]
    with open(os.path.join(cgroups.v1_mounts()[controller] + rel, filename)) as f:
        return f.read().strip()


@pytest.mark.parametrize("client", ["berth", "docker"])
def test_cli_update_changes_the_live_cgroup(daemon, client):
    d = daemon
    run = getattr(d, client)
    name = "upd-" + client
    out = run("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    out = run("update", "-m", "32m", "--memory-swap", "96m", "--cpus", "0.5", "--pids-limit", "20",
              "--cpu-shares", "256", name)
    assert out.returncode == 0 and out.stdout.decode().split() == [name], out.stderr
    assert _cg(d, name, "memory", "memory.limit_in_bytes") == str(32 * MIB)
    assert _cg(d, name, "memory", "memory.memsw.limit_in_bytes") == str(96 * MIB)
    assert _cg(d, name, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _cg(d, name, "cpu", "cpu.shares") == "256"
    assert _cg(d, name, "pids", "pids.max") == "20"
    hc = inspect_container(d, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == \
        (32 * MIB, 96 * MIB, 5 * 10 ** 8, 20)
    # dockerd's refusal, in one line, and nothing changed
    out = run("update", "-m", "200m", name)
    err = out.stderr.decode()
    assert out.returncode != 0 and len(err.strip().splitlines()) == 1, err
    assert "Memory limit should be smaller than already set memoryswap limit" in err
    assert _cg(d, name, "memory", "memory.limit_in_bytes") == str(32 * MIB)
    assert run("rm", "-f", name).returncode == 0


def test_berth_update_without_a_flag_says_what_to_give(daemon):
    out = daemon.berth("update", "whatever")
    assert out.returncode == 125 and "you must provide one or more flags" in out.stderr.decode()


def test_docker_py_update_container(daemon):
    client = daemon.client()
    try:
        c = client.containers.run("busybox", "sleep 1000", detach=True, name="upd-py", mem_limit="400m")
        c.update(mem_limit="300m", cpuset_cpus="0", blkio_weight=None)
        assert _cg(daemon, "upd-py", "memory", "memory.limit_in_bytes") == str(300 * MIB)
        assert _cg(daemon, "upd-py", "cpuset", "cpuset.cpus") == "0"
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 300 * MIB and c.attrs["HostConfig"]["CpusetCpus"] == "0"
        c.remove(force=True)
    finally:
        client.close()
