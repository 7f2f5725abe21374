"""Killing berthd (SIGKILL) or stopping it (SIGTERM) loses nothing: images, volumes and
containers are there after a restart, a running container keeps running and its logs can still
be followed, an exited one keeps its exit code."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.api.conftest import Berthd

LOOP = "trap 'exit 0' TERM; i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, busybox_tar):
    d = Berthd(str(tmp_path_factory.mktemp("recovery")))
    d.start()
    with open(busybox_tar, "rb") as f:
        assert d.api("POST", "/images/load", body=f.read())[0] == 200
    yield d
    d.cleanup()


def _state(d, name):
    status, _, body = d.api("GET", "/containers/%s/json" % name)
    assert status == 200, body
    return json.loads(body)["State"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_restart_loses_nothing(daemon, sig):
    d = daemon
    tag = "k" if sig == signal.SIGKILL else "t"
    assert d.berth("volume", "create", "vol-" + tag).returncode == 0
    assert d.berth("tag", "busybox", "kept/" + tag).returncode == 0
    out = d.berth("run", "-d", "--name", "runner-" + tag, "-v", "vol-%s:/v" % tag, "busybox",
                  "sh", "-c", LOOP)
    assert out.returncode == 0, out.stderr
    out = d.berth("run", "--name", "done-" + tag, "busybox", "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    pid = _state(d, "runner-" + tag)["Pid"]
    assert pid > 0

    assert d.kill(sig) == (-9 if sig == signal.SIGKILL else 0)
    assert os.path.exists("/proc/%d" % pid), "the container died with the daemon"
    d.start()

    assert d.api("GET", "/images/kept/%s/json" % tag)[0] == 200
    assert d.api("GET", "/volumes/vol-" + tag)[0] == 200
    st = _state(d, "runner-" + tag)
    assert st["Running"] is True and st["Pid"] == pid
    assert _state(d, "done-" + tag)["ExitCode"] == 3
    out = d.berth("ps", "-a")
    assert "runner-" + tag in out.stdout.decode() and "done-" + tag in out.stdout.decode()
    # the running container's log can still be followed, from the new daemon
    env = dict(os.environ, BERTH_HOST=d.host)
    berth = os.path.join(os.path.dirname(sys.executable), "berth")
    proc = subprocess.Popen([berth, "logs", "-f", "--tail", "1", "runner-" + tag], stdout=subprocess.PIPE,
                            env=env)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert first.startswith(b"tick") and second.startswith(b"tick")
        assert int(second[4:]) > int(first[4:])
    finally:
        proc.kill()
        proc.wait()
    out = d.berth("stop", "-t", "5", "runner-" + tag)
    assert out.returncode == 0
    assert _state(d, "runner-" + tag)["Running"] is False
    time.sleep(0.05)
    assert d.berth("rm", "runner-" + tag, "done-" + tag).returncode == 0


def test_rm_container_running_across_a_restart_is_removed_when_it_exits(daemon):
    """`run --rm` is the engine's (HostConfig.AutoRemove on disk), not the daemon's memory: a
    container still running when berthd is killed is removed when it exits later, and one
    that exited while no berthd ran is removed when the next one starts."""
    d = daemon
    for name, cmd in (("rm-later", "sleep 5"), ("rm-while-down", "sleep 0.3")):
        out = d.berth("run", "-d", "--rm", "--name", name, "busybox", "sh", "-c", cmd)
        assert out.returncode == 0, out.stderr
        assert _state(d, name)["Running"] is True
    assert d.kill(signal.SIGKILL) == -9
    time.sleep(1.0)  # rm-while-down exits now, with no daemon
    d.start()
    assert d.api("GET", "/containers/rm-later/json")[0] == 200
    deadline = time.time() + 30
    while time.time() < deadline:
        status, _, body = d.api("GET", "/containers/json?all=1")
        assert status == 200
        names = [n.lstrip("/") for c in json.loads(body) for n in c["Names"]]
        if "rm-later" not in names and "rm-while-down" not in names:
            break
        time.sleep(0.2)
    assert "rm-later" not in names and "rm-while-down" not in names


def test_a_container_dies_with_its_monitor(daemon):
    """A monitor killed (SIGKILL) takes its container's PID 1 with it, also after a change of
    uid (which clears the parent-death signal if set before it): no process is left running
    with no one to record its exit, relay its output or stop it."""
    for user in ("0", "1000"):
        name = "orphan" + user
        assert daemon.berth("run", "-d", "--name", name, "--user", user, "busybox",
                            "sleep", "1000").returncode == 0
        cid = json.loads(daemon.api("GET", "/containers/%s/json" % name)[2])["Id"]
        with open(os.path.join(daemon.data_root, "containers", cid, "state.json")) as f:
            st = json.load(f)
        os.kill(st["MonitorPid"], signal.SIGKILL)
        deadline = time.time() + 5
        while os.path.exists("/proc/%d/stat" % st["Pid"]) and time.time() < deadline:
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d/stat" % st["Pid"]), "PID 1 outlived its monitor"
        state = json.loads(daemon.api("GET", "/containers/%s/json" % name)[2])["State"]
        assert not state["Running"] and "monitor" in state["Error"], state
        assert daemon.api("DELETE", "/containers/" + name)[0] == 204


def test_a_monitor_that_fails_stops_its_container_and_says_why(tmp_path):
    """Monitor.failed(): the traceback in monitor.err, PID 1 killed, the exit recorded with
    the reason (what inspect then shows). Run in a forked child, as a monitor is: it ends
    the process."""
    from runtime.container.proc import monitor
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(str(tmp_path))
            pid1 = subprocess.Popen(["sleep", "1000"]).pid
            with open("pid1", "w") as f:
                f.write(str(pid1))
            m = monitor.Monitor.__new__(monitor.Monitor)
            m.pid1, m.spec, m.cg, m.clients = pid1, {"started_at": "2026-01-01T00:00:00Z"}, None, []
            try:
                raise IndexError("list index out of range")
            except IndexError as e:
                m.failed(e)
        finally:
            os._exit(3)  # failed() did not end the process
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 1
    with open(str(tmp_path / "exit.json")) as f:
        rec = json.load(f)
    assert rec["ExitCode"] == 137 and "IndexError: list index out of range" in rec["Error"], rec
    assert "Traceback" in (tmp_path / "monitor.err").read_text()
    pid1 = int((tmp_path / "pid1").read_text())
    assert not os.path.exists("/proc/%d" % pid1)
