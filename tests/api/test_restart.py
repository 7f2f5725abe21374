"""Restart policies through the clients: `berth run --restart`, `berth update --restart`, the
docker CLI and docker-py; bad policies refused in one line with nothing created; a berthd
restart brings back `always` containers stopped before it, and keeps the ones running."""

import json
import os
import signal
import time

import pytest

from tests.api.conftest import Berthd, inspect_container

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def daemon(loaded):
    """The module's berthd, busybox loaded."""
    return loaded


def _until(what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def _names(d):
    return [c["Names"][0] for c in json.loads(d.api("GET", "/containers/json?all=1")[2])]


@pytest.mark.parametrize("client, argv, message", [
    ("berth", ["--restart", "sometimes"], "invalid restart policy 'sometimes'"),
    ("berth", ["--restart", "on-failure:-1"], "cannot be negative"),
    ("berth", ["--restart", "on-failure:x"], "must be a number"),
    ("berth", ["--rm", "--restart", "always"], "--rm"),
    ("docker", ["--restart", "sometimes"], "sometimes"),
    ("docker", ["--restart", "on-failure:-1"], "negative"),
    ("docker", ["--rm", "--restart", "always"], "--rm"),
])
def test_bad_policies_are_one_line_and_create_nothing(daemon, client, argv, message):
    before = _names(daemon)
    run = getattr(daemon, client)
    out = run("run", "-d", *(argv + ["busybox", "true"]))
    err = out.stderr.decode()
    assert out.returncode == 125, err
    lines = err.strip().splitlines()
    if client == "docker":  # the docker CLI adds "Run 'docker run --help' ..." after a blank line
        lines = lines[:1]
    assert message in err and len(lines) == 1 and message in lines[0], err
    assert _names(daemon) == before


def test_berth_run_restart_update_andinspect_container(daemon):
    d = daemon
    out = d.berth("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox",
                  "sh", "-c", "exit 4")
    assert out.returncode == 0, out.stderr
    _until(lambda: not inspect_container(d, "flaky")["State"]["Running"])
    info = inspect_container(d, "flaky")
    assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 4
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}

    out = d.berth("run", "-d", "--name", "svc", "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    out = d.berth("update", "--restart", "always", "svc")
    assert out.returncode == 0, out.stderr
    pid = inspect_container(d, "svc")["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    _until(lambda: inspect_container(d, "svc")["State"]["Pid"] not in (0, pid))
    assert inspect_container(d, "svc")["RestartCount"] == 1
    out = d.berth("update", "--restart", "often", "svc")
    assert out.returncode == 1 and "often" in out.stderr.decode()
    assert d.berth("rm", "-f", "flaky", "svc").returncode == 0


def test_docker_cli_and_docker_py_see_the_policy(daemon):
    d = daemon
    out = d.docker("run", "-d", "--name", "dsvc", "--restart", "unless-stopped", "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    out = d.docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.RestartCount}}", "dsvc")
    assert out.stdout.decode().split() == ["unless-stopped", "0"]
    out = d.docker("update", "--restart", "on-failure:5", "dsvc")
    assert out.returncode == 0, out.stderr
    client = d.client()
    try:
        c = client.containers.get("dsvc")
        assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
        os.kill(c.attrs["State"]["Pid"], signal.SIGKILL)  # 137: a failure
        _until(lambda: client.containers.get("dsvc").attrs["RestartCount"] == 1
               and client.containers.get("dsvc").status == "running")
        c = client.containers.run("busybox", "sleep 1000", detach=True, name="pysvc",
                                  restart_policy={"Name": "always"})
        c.kill()  # through the API: not restarted
        time.sleep(0.5)
        c.reload()
        assert c.status == "exited" and c.attrs["RestartCount"] == 0
    finally:
        client.close()
    assert d.docker("rm", "-f", "dsvc", "pysvc").returncode == 0


def test_berthd_restart_keeps_running_ones_and_brings_back_always(daemon):
    d = daemon
    for name, policy in (("a-up", "always"), ("a-stopped", "always"), ("u-stopped", "unless-stopped")):
        out = d.berth("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "1000")
        assert out.returncode == 0, out.stderr
    assert d.berth("stop", "-t", "1", "a-stopped", "u-stopped").returncode == 0
    pid = inspect_container(d, "a-up")["State"]["Pid"]
    assert d.kill(signal.SIGTERM) == 0
    time.sleep(0.3)
    d.start()
    _until(lambda: inspect_container(d, "a-stopped")["State"]["Running"])
    assert inspect_container(d, "a-up")["State"]["Pid"] == pid  # not restarted: it kept running
    assert inspect_container(d, "u-stopped")["State"]["Status"] == "exited"
    assert d.berth("rm", "-f", "a-up", "a-stopped", "u-stopped").returncode == 0


def test_restarting_shows_in_ps_and_stop_ends_it(daemon):
    d = daemon
    out = d.berth("run", "-d", "--name", "crash", "--restart", "always", "busybox", "sh", "-c", "exit 2")
    assert out.returncode == 0, out.stderr
    _until(lambda: inspect_container(d, "crash")["RestartCount"] >= 3
           and inspect_container(d, "crash")["State"]["Restarting"])
    out = d.docker("ps", "--filter", "name=crash", "--format", "{{.Status}}")
    assert out.stdout.decode().startswith("Restarting (2)"), out.stdout
    assert d.docker("stop", "crash").returncode == 0
    assert inspect_container(d, "crash")["State"]["Status"] == "exited"
    assert d.berth("rm", "crash").returncode == 0


def test_a_fresh_daemon_from_the_same_root_serves_policies(tmp_path, busybox_tar):
    """berthd started over a data root where an `always` container's processes were killed
    while no berthd ran (a reboot): it is running again once berthd is up."""
    d = Berthd(str(tmp_path / "b"))
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        out = d.berth("run", "-d", "--name", "boot", "--restart", "always", "busybox", "sleep", "1000")
        assert out.returncode == 0, out.stderr
        cid = out.stdout.decode().strip()
        assert d.kill(signal.SIGTERM) == 0
        with open(os.path.join(d.data_root, "containers", cid, "state.json")) as f:
            st = json.load(f)
        os.kill(st["MonitorPid"], signal.SIGKILL)
        os.kill(st["Pid"], signal.SIGKILL)
        d.start()
        _until(lambda: inspect_container(d, "boot")["State"]["Running"])
        assert inspect_container(d, "boot")["State"]["Pid"] != st["Pid"]
    finally:
        d.cleanup()
