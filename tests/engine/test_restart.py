"""Restart policies (runtime/container/proc/restart.py, carried out by the monitor) on the real kernel:
back-off, on-failure's limit, stop/kill through the API, a new engine (berthd restart) and the
start of policy containers when an engine comes up (what a reboot needs)."""

import json
import os
import signal
import time

import pytest

from runtime.timefmt import parse_rfc3339
from runtime.errors import InvalidParameter
from tests.engine.conftest import make_engine


def _create(eng, cmd, policy, name=None):
    name_, _, count = policy.partition(":")
    hc = {"RestartPolicy": {"Name": name_, "MaximumRetryCount": int(count or 0)}}
    return eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", cmd], "HostConfig": hc},
                                name=name)["Id"]


def _until(what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


def _settled(eng, cid):
    """The state once no restart is due any more."""
    def done():
        st = eng.container_inspect(cid)["State"]
        return st if not st["Running"] else None
    return _until(done)


def _log_times(eng, cid):
    path = eng.container_inspect(cid)["LogPath"]
    with open(path) as f:
        return [parse_rfc3339(json.loads(line)["time"]) for line in f]


def test_on_failure_3_runs_four_times_with_doubling_delays(clean_containers):
    eng = clean_containers
    cid = _create(eng, "echo run; exit 1", "on-failure:3")
    eng.container_start(cid)
    st = _settled(eng, cid)
    info = eng.container_inspect(cid)
    assert (st["Status"], st["ExitCode"], st["Restarting"]) == ("exited", 1, False)
    assert info["RestartCount"] == 3
    times = _log_times(eng, cid)
    assert len(times) == 4  # the first run and 3 restarts, then it gave up
    gaps = [b - a for a, b in zip(times, times[1:])]
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4)):  # each gap is the delay plus one start
        assert gap >= delay, gaps
    assert gaps[0] < gaps[2], gaps  # (a start's own time varies with the machine's load)
    time.sleep(1.0)  # it stays down
    assert eng.container_inspect(cid)["RestartCount"] == 3
    assert len(_log_times(eng, cid)) == 4


def test_on_failure_does_not_restart_a_clean_exit(clean_containers):
    eng = clean_containers
    cid = _create(eng, "exit 0", "on-failure")
    eng.container_start(cid)
    assert eng.container_wait(cid, timeout=10)["StatusCode"] == 0
    time.sleep(0.4)
    st = eng.container_inspect(cid)
    assert (st["State"]["Status"], st["RestartCount"]) == ("exited", 0)


def test_always_comes_back_after_its_process_is_killed_and_across_engines(clean_containers):
    eng = clean_containers
    cid = _create(eng, "echo up; exec sleep 1000", "always")
    eng.container_start(cid)
    pid = eng.container_inspect(cid)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)  # not through the API: the policy applies
    new = _until(lambda: (eng.container_inspect(cid)["State"]["Pid"] or pid) != pid and
                 eng.container_inspect(cid)["State"]["Pid"])
    info = eng.container_inspect(cid)
    assert info["State"]["Status"] == "running" and info["RestartCount"] == 1
    def cmd():
        with open("/proc/%d/cmdline" % new, "rb") as f:
            return f.read().split(b"\0")[0] == b"sleep"
    _until(cmd)  # (sh until it execs sleep)
    # a second engine on the same data root (berthd restarted): still running, same process
    other = make_engine(eng.test_root, {"cgroup-parent": eng.test_cgroup_parent})
    try:
        assert other.start_by_policy() == []
        assert other.container_inspect(cid)["State"]["Pid"] == new
    finally:
        other.close()


def test_stop_is_never_undone_but_always_returns_with_the_next_engine(clean_containers):
    eng = clean_containers
    always = _create(eng, "exec sleep 1000", "always")
    unless = _create(eng, "exec sleep 1000", "unless-stopped")
    for cid in (always, unless):
        eng.container_start(cid)
        eng.container_stop(cid, timeout=1)
    time.sleep(0.5)  # past the first restart delay: nothing came back
    for cid in (always, unless):
        st = eng.container_inspect(cid)["State"]
        assert (st["Status"], st["Restarting"]) == ("exited", False)
    other = make_engine(eng.test_root, {"cgroup-parent": eng.test_cgroup_parent})
    try:
        for t in other.start_by_policy():
            t.join(20)
        assert other.container_inspect(always)["State"]["Status"] == "running"
        assert other.container_inspect(unless)["State"]["Status"] == "exited"
    finally:
        other.close()


def test_kill_through_the_api_is_not_restarted(clean_containers):
    eng = clean_containers
    cid = _create(eng, "exec sleep 1000", "always")
    eng.container_start(cid)
    eng.container_kill(cid)
    time.sleep(0.5)
    st = eng.container_inspect(cid)["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)
    eng.container_start(cid)  # a start through the API re-arms the policy, count from 0
    pid = eng.container_inspect(cid)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    _until(lambda: eng.container_inspect(cid)["RestartCount"] == 1 and
           eng.container_inspect(cid)["State"]["Status"] == "running")


def test_a_restarting_container_shows_it_and_a_stop_cancels_the_restart(clean_containers):
    eng = clean_containers
    cid = _create(eng, "exit 3", "always")
    eng.container_start(cid)
    # after a few exits the delay is long enough to be seen
    st = _until(lambda: (lambda s: s if s["Restarting"] and eng.container_inspect(cid)["RestartCount"] >= 3
                         else None)(eng.container_inspect(cid)["State"]))
    assert (st["Status"], st["Running"], st["Pid"], st["ExitCode"]) == ("restarting", True, 0, 3)
    listed = _until(lambda: [c for c in eng.container_list(all=True)
                             if c["Id"] == cid and c["State"] == "restarting"])[0]
    assert listed["Status"].startswith("Restarting (3)")
    eng.container_stop(cid)
    count = eng.container_inspect(cid)["RestartCount"]
    st = eng.container_inspect(cid)["State"]
    assert (st["Status"], st["Restarting"]) == ("exited", False)
    time.sleep(1.0)
    assert eng.container_inspect(cid)["RestartCount"] == count


def test_update_restart_policy_applies_to_the_running_container(clean_containers):
    eng = clean_containers
    cid = _create(eng, "exec sleep 1000", "no")
    eng.container_start(cid)
    eng.container_update(cid, {"RestartPolicy": {"Name": "unless-stopped"}})
    assert eng.container_inspect(cid)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    pid = eng.container_inspect(cid)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    _until(lambda: eng.container_inspect(cid)["State"]["Pid"] not in (0, pid))
    with pytest.raises(InvalidParameter, match="on-failure"):
        eng.container_update(cid, {"RestartPolicy": {"Name": "sometimes"}})
    with pytest.raises(InvalidParameter, match="cannot update Binds"):
        eng.container_update(cid, {"Binds": ["/tmp:/x"]})


def test_engine_start_brings_back_what_a_reboot_killed(clean_containers):
    """What a reboot does: every monitor and container process gone, no exit recorded."""
    eng = clean_containers
    ids = {p: _create(eng, "exec sleep 1000", p) for p in ("always", "unless-stopped", "on-failure", "no")}
    stopped = _create(eng, "exec sleep 1000", "unless-stopped")
    for cid in list(ids.values()) + [stopped]:
        eng.container_start(cid)
    eng.container_stop(stopped, timeout=1)
    for cid in ids.values():
        st = json.load(open(os.path.join(str(eng.test_root), "containers", cid, "state.json")))
        os.kill(st["MonitorPid"], signal.SIGKILL)
        os.kill(st["Pid"], signal.SIGKILL)
    for cid in ids.values():
        _until(lambda cid=cid: eng.container_inspect(cid)["State"]["Status"] == "exited")
    other = make_engine(eng.test_root, {"cgroup-parent": eng.test_cgroup_parent})
    try:
        threads = other.start_by_policy()
        assert len(threads) == 3
        for t in threads:
            t.join(20)
        status = {p: other.container_inspect(cid)["State"]["Status"] for p, cid in ids.items()}
        assert status == {"always": "running", "unless-stopped": "running", "on-failure": "running",
                          "no": "exited"}
        assert other.container_inspect(stopped)["State"]["Status"] == "exited"
    finally:
        other.close()


@pytest.mark.parametrize("policy, auto_remove, message", [
    ({"Name": "sometimes"}, False, "invalid restart policy 'sometimes'"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, False, "cannot be negative"),
    ({"Name": "always", "MaximumRetryCount": 2}, False, "cannot be used with restart policy 'always'"),
    ({"Name": "always"}, True, "--rm"),
])
def test_bad_policies_are_refused_and_nothing_is_created(clean_containers, policy, auto_remove, message):
    eng = clean_containers
    before = os.listdir(os.path.join(str(eng.test_root), "containers"))
    with pytest.raises(InvalidParameter, match=message) as err:
        eng.container_create({"Image": "busybox:latest", "Cmd": ["true"],
                              "HostConfig": {"RestartPolicy": policy, "AutoRemove": auto_remove}})
    assert "\n" not in str(err.value)
    assert eng.container_list(all=True) == []
    assert os.listdir(os.path.join(str(eng.test_root), "containers")) == before
