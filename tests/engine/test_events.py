"""Engine events: dockerd's names and attributes in order for a container's life, policy
restarts seen as die + start (and network connect + disconnect), images and volumes, the ring
for `since`, filters, and bad filters refused before anything streams."""

import threading
import time

import pytest

from runtime.errors import InvalidParameter


def _collect(eng, since, **kw):
    return [(e["Type"], e["Action"]) for e in eng.system_events(since=since, until=time.time(), **kw)]


def test_container_life_in_order_with_attributes(clean_containers):
    eng = clean_containers
    t0 = time.time()
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", "sleep 100"],
                                "Labels": {"team": "svc"}}, name="evt")["Id"]
    eng.container_start(cid)
    eng.container_pause(cid)
    eng.container_unpause(cid)
    ex = eng.exec_create(cid, {"Cmd": ["true"], "AttachStdout": True})
    sock = eng.exec_start(ex)
    while sock.recv(4096):
        pass
    sock.close()
    time.sleep(0.3)
    eng.container_stop(cid, timeout=0)
    eng.container_remove(cid)
    evs = [e for e in eng.system_events(since=t0, until=time.time()) if e["Type"] == "container"]
    actions = [e["Action"] for e in evs]
    assert actions == ["create", "start", "pause", "unpause", "exec_create: true", "exec_start: true",
                       "exec_die", "kill", "die", "stop", "destroy"], actions
    die = evs[actions.index("die")]
    assert die["Actor"]["ID"] == cid and die["id"] == cid and die["from"] == "busybox:latest"
    assert die["Actor"]["Attributes"]["exitCode"] == "137"
    assert die["Actor"]["Attributes"]["name"] == "evt" and die["Actor"]["Attributes"]["team"] == "svc"
    assert evs[actions.index("kill")]["Actor"]["Attributes"]["signal"] == "15"
    assert evs[actions.index("exec_die")]["Actor"]["Attributes"]["exitCode"] == "0"
    assert all(abs(e["timeNano"] / 1e9 - e["time"]) < 1 for e in evs)


def test_policy_restarts_and_live_subscribers(clean_containers):
    eng = clean_containers
    got = []
    stop = threading.Event()
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", "exit 1"],
                                "HostConfig": {"RestartPolicy": {"Name": "on-failure",
                                                                 "MaximumRetryCount": 2}}})["Id"]
    t = threading.Thread(target=lambda: got.extend(
        e["Action"] for e in eng.system_events(filters={"container": [cid[:12]]}, stop=stop)))
    t.start()
    nets = []
    t2 = threading.Thread(target=lambda: nets.extend(
        (e["Action"], e["Actor"]["Attributes"]["name"]) for e in eng.system_events(
            filters={"type": ["network"]}, stop=stop) if e["Actor"]["Attributes"].get("container") == cid))
    t2.start()
    time.sleep(0.2)
    eng.container_start(cid)
    deadline = time.time() + 20
    while (got.count("die") < 3 or len(nets) < 6) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    t2.join(5)
    assert got == ["start", "die", "start", "die", "start", "die"], got
    # each run the policy began is in its network again, and leaves it at its exit
    assert nets == [("connect", "none"), ("disconnect", "none")] * 3, nets


def test_images_volumes_filters_and_bad_filters(clean_containers):
    eng = clean_containers
    t0 = time.time()
    eng.image_tag("busybox:latest", "evt/box", "v1")
    eng.image_remove("evt/box:v1")
    eng.volume_create("evtvol")
    eng.volume_remove("evtvol")
    until = time.time()
    assert _collect(eng, t0, filters={"type": ["image"]}) == [("image", "tag"), ("image", "untag")]
    assert _collect(eng, t0, filters={"volume": ["evtvol"]}) == [("volume", "create"), ("volume", "destroy")]
    assert _collect(eng, t0, filters={"event": ["untag", "create"]}) == [("image", "untag"),
                                                                        ("volume", "create")]
    assert _collect(eng, t0, filters={"image": ["evt/box"]}) == [("image", "tag"), ("image", "untag")]
    assert _collect(eng, until + 1) == []
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        eng.system_events(filters={"colour": ["red"]})


def test_an_exit_is_seen_when_the_watchers_descriptors_are_above_1023(clean_containers):
    """The watcher waits on one socket per running container: a berthd with some 500 of them
    holds descriptors above 1023, on which select() fails (the exits were never seen)."""
    import os
    import resource
    eng = clean_containers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    filler = []
    try:
        while not filler or filler[-1] < 1100:  # every descriptor below: the next ones are high
            filler.append(os.open("/dev/null", os.O_RDONLY))
        t0 = time.time()
        cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sleep", "0.3"]})["Id"]
        eng.container_start(cid)
        deadline = time.time() + 15
        while time.time() < deadline and ("container", "die") not in _collect(eng, t0):
            time.sleep(0.05)
        assert ("container", "die") in _collect(eng, t0)
        assert eng.container_inspect(cid)["State"]["Status"] == "exited"
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_autoremove_container_is_removed_once(clean_containers):
    """`rm -f` of a running `run --rm` container: its kill sets off the AutoRemove, which finds the
    removal under way (dockerd's 409) instead of removing it a second time: one die, one destroy,
    and the removal the user asked for reports no error. The removal is handed over at the die,
    so a start makes no thread."""
    eng = clean_containers
    first = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    eng.container_start(first)  # the engine's watcher thread runs from here on
    eng.container_wait(first)
    eng.container_remove(first)
    for _ in range(5):  # the two removals raced: a few rounds show a second destroy
        cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "100"],
                                    "HostConfig": {"AutoRemove": True}})["Id"]
        threads = set(threading.enumerate())
        eng.container_start(cid)
        assert set(threading.enumerate()) - threads == set()
        t0 = time.time()
        eng.container_remove(cid, force=True)
        time.sleep(0.3)  # an AutoRemove that removed it again would have done so by now
        evs = [a for t, a in _collect(eng, t0, filters={"container": [cid]}) if t == "container"]
        assert evs.count("destroy") == 1 and evs.count("die") == 1, evs
    # exits on its own: removed once, by the AutoRemove
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                "HostConfig": {"AutoRemove": True}})["Id"]
    waiter = eng.container_wait_begin(cid, "removed")
    t0 = time.time()
    eng.container_start(cid)
    assert waiter(10)["StatusCode"] == 0
    time.sleep(0.3)
    evs = [a for t, a in _collect(eng, t0 - 1, filters={"container": [cid]}) if t == "container"]
    assert evs == ["create", "start", "die", "destroy"], evs
