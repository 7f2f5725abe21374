"""Health checks through the clients: `docker run --health-*` and `berth run --health-*`,
`docker ps` showing (healthy)/(unhealthy), the health filter, `--no-healthcheck`, bad
durations refused in one line."""

import json
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def _until(what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def _health(d, name):
    return json.loads(d.api("GET", "/containers/%s/json" % name)[2])["State"].get("Health") or {}


def test_docker_and_berth_health_flags_ps_and_filter(loaded):
    d = loaded
    out = d.docker("run", "-d", "--name", "hdock", "--health-cmd", "test -f /tmp/ok",
                   "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    out = d.berth("run", "-d", "--name", "hberth", "--health-cmd", "true", "--health-interval", "200ms",
                  "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    _until(lambda: _health(d, "hdock").get("Status") == "unhealthy"
           and _health(d, "hberth").get("Status") == "healthy")
    ps = d.docker("ps", "--format", "{{.Names}} {{.Status}}").stdout.decode()
    assert "(unhealthy)" in [line for line in ps.splitlines() if line.startswith("hdock")][0]
    assert "(healthy)" in [line for line in ps.splitlines() if line.startswith("hberth")][0]
    out = d.docker("ps", "--filter", "health=healthy", "--format", "{{.Names}}")
    assert out.stdout.decode().split() == ["hberth"]
    assert d.docker("exec", "hdock", "touch", "/tmp/ok").returncode == 0
    _until(lambda: _health(d, "hdock").get("Status") == "healthy")
    out = d.berth("run", "-d", "--name", "hnone", "--no-healthcheck", "busybox", "sleep", "1000")
    assert out.returncode == 0, out.stderr
    assert _health(d, "hnone") == {}
    assert d.berth("rm", "-f", "hdock", "hberth", "hnone").returncode == 0


@pytest.mark.parametrize("argv, message", [
    (["--health-interval", "soon"], "invalid duration 'soon' for --health-interval"),
    (["--health-cmd", "true", "--health-interval", "1us"], "Interval in Healthcheck cannot be less than 1ms"),
    (["--no-healthcheck", "--health-cmd", "true"], "--no-healthcheck conflicts"),
])
def test_bad_health_flags_are_one_line(loaded, argv, message):
    d = loaded
    before = d.api("GET", "/containers/json?all=1")[2]
    out = d.berth("run", "-d", *(argv + ["busybox", "true"]))
    err = out.stderr.decode()
    assert out.returncode == 125 and message in err and len(err.strip().splitlines()) == 1, err
    assert d.api("GET", "/containers/json?all=1")[2] == before
