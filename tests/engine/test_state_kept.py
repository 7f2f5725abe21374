"""A container's state is kept between reads (runtime/container/state.py: `ps` over 1,000s of
containers reads no file for those that do not run). What changes it from outside the engine's
own writes must still show at the next read: PID 1 killed from outside, its monitor killed
first, a restart policy's restart, and a freeze undone by the engine."""

import json
import os
import signal

import pytest

from tests.imagefactory import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

LOOP = ["sh", "-c", "while true; do sleep 0.1; done"]


def _listed(eng, cid):
    return [c for c in eng.container_list(all=True) if c["Id"] == cid][0]


def test_pid1_killed_from_outside_shows_at_the_next_ps(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": LOOP})["Id"]
    assert _listed(eng, cid)["State"] == "created"
    eng.container_start(cid)
    assert _listed(eng, cid)["State"] == "running"
    pid = eng.container_inspect(cid)["State"]["Pid"]
    assert _listed(eng, cid)["State"] == "running"  # (read twice: the second from what was kept)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: _listed(eng, cid)["State"] == "exited", timeout=20)
    st = eng.container_inspect(cid)["State"]
    assert st["ExitCode"] == 137 and not st["Running"] and st["Pid"] == 0
    assert _listed(eng, cid)["Status"].startswith("Exited (137)")


def test_monitor_killed_then_pid1_killed_is_a_dead_monitor_not_a_running_container(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": LOOP})["Id"]
    eng.container_start(cid)
    assert _listed(eng, cid)["State"] == "running"
    c = eng.containers.get(cid)
    with open(c.file("state.json")) as f:
        recorded = json.load(f)
    os.kill(recorded["MonitorPid"], signal.SIGKILL)
    assert wait_for(lambda: not c.monitor_alive(), timeout=20)
    try:
        os.kill(recorded["Pid"], signal.SIGKILL)  # (its monitor's death may have ended it already)
    except ProcessLookupError:
        pass
    assert wait_for(lambda: _listed(eng, cid)["State"] == "exited", timeout=20)
    st = eng.container_inspect(cid)["State"]
    assert st["ExitCode"] == 255 and "monitor died" in st["Error"]


def test_a_restart_by_policy_shows_its_new_pid1(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": LOOP,
                                "HostConfig": {"RestartPolicy": {"Name": "always"}}})["Id"]
    eng.container_start(cid)
    first = eng.container_inspect(cid)["State"]["Pid"]
    assert _listed(eng, cid)["State"] == "running"
    os.kill(first, signal.SIGKILL)

    def restarted():
        st = eng.container_inspect(cid)["State"]
        return st["Running"] and st["Pid"] not in (0, first)
    assert wait_for(restarted, timeout=30)
    assert _listed(eng, cid)["State"] == "running"
    assert eng.container_inspect(cid)["RestartCount"] >= 1
    eng.container_stop(cid, timeout=1)
    assert _listed(eng, cid)["State"] == "exited"


def test_pause_and_unpause_show_at_once(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": LOOP})["Id"]
    eng.container_start(cid)
    assert _listed(eng, cid)["State"] == "running"
    eng.container_pause(cid)
    assert _listed(eng, cid)["State"] == "paused"
    eng.container_unpause(cid)
    assert _listed(eng, cid)["State"] == "running"
    eng.container_pause(cid)
    eng.container_stop(cid, timeout=1)  # (thawed to take the signal)
    assert _listed(eng, cid)["State"] == "exited"


def _encoded(eng, **kw):
    return [json.loads(s.json_bytes) for s in eng.container_list(encoded=True, **kw)]


def test_a_reply_listing_says_what_the_dict_listing_says(clean_containers):
    """The API's listing (summaries as kept JSON only, views.EncodedSummary) holds what the
    dicts hold, in each state, after a rename, and with filters that read the summaries."""
    eng = clean_containers
    created = eng.container_create({"Image": "busybox", "Cmd": LOOP, "Labels": {"k": "v"}},
                                   name="kept-created")["Id"]
    running = eng.container_create({"Image": "busybox", "Cmd": LOOP,
                                    "HostConfig": {"NetworkMode": "none"}})["Id"]
    eng.container_start(running)
    exited = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    eng.container_start(exited)
    assert wait_for(lambda: _listed(eng, exited)["State"] == "exited", timeout=20)
    for _ in range(2):  # made, then kept
        dicts = eng.container_list(all=True)
        assert _encoded(eng, all=True) == [dict(d) for d in dicts]
        assert {d["Id"]: d["State"] for d in dicts} == {
            created: "created", running: "running", exited: "exited"}
    assert all(type(s).__name__ == "EncodedSummary" for s in eng.container_list(encoded=True))
    eng.container_rename(created, "kept-renamed")
    assert [s["Names"] for s in _encoded(eng, all=True, filters={"label": ["k=v"]})] == [
        ["/kept-renamed"]]
    # a filter on the summaries' networks gets the dicts, and lists the same
    by_net = eng.container_list(all=True, encoded=True, filters={"network": ["none"]})
    assert running in [s["Id"] for s in by_net]
    assert by_net == eng.container_list(all=True, filters={"network": ["none"]})
    assert eng.container_list(all=True, encoded=True, filters={"network": ["no-such-net"]}) == []
    eng.container_kill(running)
    assert wait_for(lambda: _encoded(eng, filters={"id": [running]}) == [], timeout=20)


def test_an_exit_recorded_just_before_the_monitor_went_is_not_a_dead_monitor(clean_containers):
    """The interleaving a quick `run` met under load: the state is read while PID 1 has exited,
    exit.json is not there yet, then the monitor records the exit and is gone before its
    liveness is checked. That is an exit with its code, not "the container's monitor died"
    (which would then be kept as settled)."""
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"]})["Id"]
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 3
    c = eng.containers.get(cid)
    assert wait_for(lambda: not c.monitor_alive(), timeout=20)
    recorded = c.exited()
    reads = []

    def exited():  # the first read comes before the monitor's write
        reads.append(1)
        return {} if len(reads) == 1 else recorded

    c.exited = exited
    try:
        c.forget_state()
        st = c.state()
    finally:
        del c.exited
    assert (st["Status"], st["ExitCode"], st["Error"]) == ("exited", 3, ""), st
    assert len(reads) == 2
    assert eng.container_inspect(cid)["State"]["ExitCode"] == 3
    eng.container_remove(cid)
