"""Health checks on the real engine: probes run as execs in the container, starting ->
healthy -> unhealthy after the retries -> healthy again, with ps, inspect and the events;
the image's HEALTHCHECK and how a container's own check completes or disables it; timeouts;
bad checks refused."""

import time

import pytest

from runtime.errors import InvalidParameter
from tests import imagefactory

MS = 1000000


def _until(what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


def _health(eng, cid):
    return eng.container_inspect(cid)["State"].get("Health")


def _exec(eng, cid, cmd):
    ex = eng.exec_create(cid, {"Cmd": ["sh", "-c", cmd], "AttachStdout": True})
    sock = eng.exec_start(ex)
    while sock.recv(4096):
        pass
    sock.close()


def _ps_status(eng, cid):
    return [c["Status"] for c in eng.container_list() if c["Id"] == cid][0]


def test_unhealthy_after_retries_and_healthy_again_in_ps_inspect_and_events(clean_containers):
    eng = clean_containers
    t0 = time.time()
    check = {"Test": ["CMD-SHELL", "cat /tmp/ok && echo fine"], "Interval": 100 * MS, "Retries": 2}
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sleep", "1000"],
                                "Healthcheck": check})["Id"]
    eng.container_start(cid)
    assert _health(eng, cid)["Status"] == "starting"
    assert _ps_status(eng, cid).endswith("(health: starting)")
    _until(lambda: _health(eng, cid)["FailingStreak"] >= 2)
    assert _health(eng, cid)["Status"] == "unhealthy"
    assert _ps_status(eng, cid).endswith("(unhealthy)")
    assert [c["Id"] for c in eng.container_list(filters={"health": ["unhealthy"]})] == [cid]
    _exec(eng, cid, "echo up > /tmp/ok")
    _until(lambda: _health(eng, cid)["Status"] == "healthy")
    h = _health(eng, cid)
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
    assert h["Log"][-1]["Output"] == "up\nfine\n"
    assert _ps_status(eng, cid).endswith("(healthy)")
    assert eng.container_list(filters={"health": ["unhealthy"]}) == []
    _exec(eng, cid, "rm /tmp/ok")
    _until(lambda: _health(eng, cid)["Status"] == "unhealthy")
    _exec(eng, cid, "echo up > /tmp/ok")
    _until(lambda: _health(eng, cid)["Status"] == "healthy")
    time.sleep(0.4)
    assert len(_health(eng, cid)["Log"]) == 5  # the last 5 results
    eng.container_stop(cid, timeout=0)
    statuses = [e["Action"] for e in eng.system_events(since=t0, until=time.time(),
                                                       filters={"event": ["health_status"]})]
    assert statuses == ["health_status: unhealthy", "health_status: healthy",
                        "health_status: unhealthy", "health_status: healthy"]
    # probes ran as execs that left nothing listed
    assert eng.container_inspect(cid)["ExecIDs"] is None or all(
        not e.startswith("health-") for e in eng.container_inspect(cid)["ExecIDs"])


def test_timeout_and_start_period(clean_containers):
    eng = clean_containers
    check = {"Test": ["CMD", "sleep", "5"], "Interval": 100 * MS, "Timeout": 200 * MS, "Retries": 1,
             "StartPeriod": 1500 * MS, "StartInterval": 100 * MS}
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sleep", "1000"],
                                "Healthcheck": check})["Id"]
    started = time.time()
    eng.container_start(cid)
    _until(lambda: _health(eng, cid)["Log"])
    first = _health(eng, cid)
    assert first["Log"][0]["ExitCode"] == -1 and "exceeded timeout" in first["Log"][0]["Output"]
    if time.time() - started < 1.4:  # failures in the start period do not count
        assert first["Status"] == "starting" and first["FailingStreak"] == 0
    _until(lambda: _health(eng, cid)["Status"] == "unhealthy")
    assert time.time() - started >= 1.5


def test_image_healthcheck_is_inherited_completed_or_disabled(clean_containers, tmp_path):
    eng = clean_containers
    img = imagefactory.Image("hc:latest", [imagefactory.busybox_layer_tar()], cmd=["sleep", "1000"],
                             healthcheck={"Test": ["CMD-SHELL", "exit 0"], "Interval": 30000 * MS,
                                          "Retries": 7})
    path = imagefactory.docker_archive(tmp_path / "hc.tar", [img])
    with open(path, "rb") as f:
        eng.image_load(f)
    try:
        inherited = eng.container_create({"Image": "hc:latest"})["Id"]
        assert eng.container_inspect(inherited)["Config"]["Healthcheck"]["Retries"] == 7
        own = eng.container_create({"Image": "hc:latest", "Healthcheck": {"Interval": 100 * MS}})["Id"]
        hc = eng.container_inspect(own)["Config"]["Healthcheck"]
        assert hc["Test"] == ["CMD-SHELL", "exit 0"] and hc["Interval"] == 100 * MS and hc["Retries"] == 7
        eng.container_start(own)
        _until(lambda: _health(eng, own)["Status"] == "healthy")
        off = eng.container_create({"Image": "hc:latest", "Healthcheck": {"Test": ["NONE"]}})["Id"]
        eng.container_start(off)
        assert "Health" not in eng.container_inspect(off)["State"]
        assert _ps_status(eng, off).startswith("Up") and "health" not in _ps_status(eng, off)
    finally:
        for c in eng.container_list(all=True):
            eng.container_remove(c["Id"], force=True)
        eng.image_remove("hc:latest")


@pytest.mark.parametrize("check, message", [
    ({"Test": ["CMD", "true"], "Interval": MS // 2}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Timeout": 10}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": ["BOGUS", "true"]}, "invalid health check test"),
])
def test_bad_checks_are_refused(clean_containers, check, message):
    eng = clean_containers
    with pytest.raises(InvalidParameter, match=message):
        eng.container_create({"Image": "busybox:latest", "Cmd": ["true"], "Healthcheck": check})
    assert eng.container_list(all=True) == []
