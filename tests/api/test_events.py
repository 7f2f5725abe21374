"""`GET /events` through the clients: `docker events --since --until`, docker-py's events()
and `berth events` see a run's create, start, die and destroy in order; a bad filter is one
line."""

import json
import time

import pytest

pytestmark = pytest.mark.timeout(120)


def _run_rm(d):
    out = d.berth("run", "--rm", "--name", "evrun", "busybox", "sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr


def test_docker_cli_docker_py_and_berth_see_a_run(loaded):
    d = loaded
    since = time.time()
    _run_rm(d)
    time.sleep(0.2)
    until = time.time()
    out = d.docker("events", "--since", "%.3f" % since, "--until", "%.3f" % until, "--filter",
                   "container=evrun", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["container create evrun", "container attach evrun",
                                                 "container start evrun", "container die evrun",
                                                 "container destroy evrun"]
    client = d.client()
    try:
        evs = list(client.events(since=since, until=until, decode=True, filters={"type": "container"}))
    finally:
        client.close()
    assert [e["Action"] for e in evs if e["Actor"]["Attributes"].get("name") == "evrun"] == [
        "create", "attach", "start", "die", "destroy"]
    die = [e for e in evs if e["Action"] == "die"][-1]
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    out = d.berth("events", "--since", "%.3f" % since, "--until", "%.3f" % until, "--filter", "event=die",
                  "--format", "json")
    assert [json.loads(line)["Action"] for line in out.stdout.decode().splitlines()] == ["die"]


def test_bad_events_filter_is_one_line(loaded):
    out = loaded.docker("events", "--since", "1", "--until", "2", "--filter", "colour=red")
    assert out.returncode != 0
    assert "invalid filter 'colour'" in out.stderr.decode().splitlines()[0]
