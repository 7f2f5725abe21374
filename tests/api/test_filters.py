"""Filters of lists and prunes as dockerd takes them: every containers/json filter, unknown
keys a 400 everywhere, prunes that delete only what the filters say."""

import json
import time
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.timeout(180)


def _q(filters):
    return quote(json.dumps(filters))


def _names(berthd, filters, all_=True):
    status, _, body = berthd.api("GET", "/containers/json?all=%d&filters=%s" % (all_, _q(filters)))
    assert status == 200, body
    return sorted(c["Names"][0][1:] for c in json.loads(body))


@pytest.fixture(scope="module")
def fleet(loaded):
    """f1 exited 0, f2 exited 3 (label a=1, volume fv, expose 80), f3 running (label a=2)."""
    assert loaded.docker("run", "--name", "f1", "busybox", "true").returncode == 0
    assert loaded.docker("run", "--name", "f2", "--label", "a=1", "-v", "fv:/data",
                         "--expose", "80", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert loaded.docker("run", "-d", "--name", "f3", "--label", "a=2", "busybox",
                         "sleep", "300").returncode == 0
    yield loaded
    for n in ("f1", "f2", "f3"):
        loaded.docker("rm", "-f", n)
    loaded.docker("volume", "rm", "fv")


def test_ps_filters(fleet):
    assert _names(fleet, {"exited": ["3"]}) == ["f2"]
    assert _names(fleet, {"exited": ["0"]}) == ["f1"]
    assert _names(fleet, {"status": ["running"]}, all_=False) == ["f3"]
    assert _names(fleet, {"label": ["a"]}) == ["f2", "f3"]
    assert _names(fleet, {"label": ["a=2"]}) == ["f3"]
    assert _names(fleet, {"before": ["f3"]}) == ["f1", "f2"]
    assert _names(fleet, {"since": ["f1"]}) == ["f2", "f3"]
    assert _names(fleet, {"volume": ["fv"]}) == ["f2"]
    assert _names(fleet, {"volume": ["/data"]}) == ["f2"]
    assert _names(fleet, {"expose": ["80"]}) == ["f2"]
    assert _names(fleet, {"expose": ["70-90/tcp"]}) == ["f2"]
    assert _names(fleet, {"publish": ["80"]}) == []
    assert _names(fleet, {"health": ["none"], "name": ["^f"]}) == ["f1", "f2", "f3"]
    assert _names(fleet, {"is-task": ["true"]}) == []
    assert _names(fleet, {"is-task": ["false"], "name": ["f"]}) == ["f1", "f2", "f3"]
    image_id = json.loads(fleet.api("GET", "/images/busybox/json")[2])["Id"]
    assert _names(fleet, {"ancestor": [image_id], "name": ["f"]}) == ["f1", "f2", "f3"]
    assert _names(fleet, {"ancestor": [image_id[7:19]], "name": ["f"]}) == ["f1", "f2", "f3"]
    assert _names(fleet, {"ancestor": ["nosuchimage"]}) == []
    status, _, body = fleet.api("GET", "/containers/f1/json")
    net = sorted(json.loads(body)["NetworkSettings"]["Networks"])[0]  # bridge, or none here
    assert _names(fleet, {"network": [net], "name": ["f"]}) == ["f1", "f2", "f3"]
    assert _names(fleet, {"network": ["nosuchnet"]}) == []
    # the docker CLI's ps --filter and the old {"key": {"value": true}} form
    out = fleet.docker("ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}")
    assert out.stdout.decode().split() == ["f2"]
    status, _, body = fleet.api("GET", "/containers/json?all=1&filters=" + _q({"label": {"a=2": True}}))
    assert [c["Names"][0] for c in json.loads(body)] == ["/f3"]


@pytest.mark.parametrize("path,filters,message", [
    ("/containers/json", {"colour": ["red"]}, "invalid filter 'colour'"),
    ("/containers/json", {"status": ["sleepy"]}, "invalid filter 'status=sleepy'"),
    ("/containers/json", {"health": ["meh"]}, "Unrecognised filter value for health: meh"),
    ("/containers/json", {"exited": ["x"]}, "invalid syntax"),
    ("/containers/json", {"publish": ["1:2"]}, "should not contain ':'"),
    ("/containers/json", {"before": ["nosuch"]}, "No such container: nosuch"),
    ("/images/json", {"colour": ["red"]}, "invalid filter 'colour'"),
    ("/volumes", {"until": ["1h"]}, "invalid filter 'until'"),
])
def test_bad_list_filters_are_400(fleet, path, filters, message):
    status, _, body = fleet.api("GET", "%s?filters=%s" % (path, _q(filters)))
    assert status in (400, 404), body
    assert message in json.loads(body)["message"]


def test_volume_prune_deletes_only_what_is_asked(loaded):
    for name, label in (("pk1", "keep=1"), ("pk2", "keep=0"), ("pk3", None)):
        args = ["volume", "create"] + (["--label", label] if label else []) + [name]
        assert loaded.docker(*args).returncode == 0
    # until is not a volume prune filter: refused, nothing removed
    out = loaded.docker("volume", "prune", "-af", "--filter", "until=1h")
    assert out.returncode != 0 and "invalid filter 'until'" in out.stderr.decode()
    out = loaded.docker("volume", "prune", "-af", "--filter", "colour=red")
    assert out.returncode != 0
    assert {"pk1", "pk2", "pk3"} <= set(loaded.docker("volume", "ls", "-q").stdout.decode().split())
    out = loaded.docker("volume", "prune", "-af", "--filter", "label!=keep=1")
    assert out.returncode == 0, out.stderr
    left = set(loaded.docker("volume", "ls", "-q").stdout.decode().split())
    assert "pk1" in left and "pk2" not in left and "pk3" not in left
    out = loaded.docker("volume", "prune", "-af", "--filter", "label!=keep")
    assert "pk1" in set(loaded.docker("volume", "ls", "-q").stdout.decode().split())
    loaded.docker("volume", "rm", "pk1")


def test_container_and_image_prune(loaded):
    assert loaded.docker("create", "--name", "pr1", "--label", "x=1", "busybox").returncode == 0
    assert loaded.docker("create", "--name", "pr2", "busybox").returncode == 0
    out = loaded.docker("container", "prune", "-f", "--filter", "label=x=1")
    assert out.returncode == 0, out.stderr
    names = loaded.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    assert "pr1" not in names and "pr2" in names
    out = loaded.docker("container", "prune", "-f", "--filter", "until=1970-01-02")
    assert "pr2" in loaded.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    status, _, body = loaded.api("POST", "/containers/prune?filters=" + _q({"nope": ["1"]}))
    assert status == 400 and b"invalid filter 'nope'" in body
    loaded.docker("rm", "pr2")
    # an untagged copy of busybox is dangling; the tagged one is kept
    assert loaded.docker("tag", "busybox", "dangle:1").returncode == 0
    status, _, body = loaded.api("POST", "/images/prune?filters=" + _q({"until": ["x"]}))
    assert status == 400 and b"failed to parse value as time or duration" in body
    out = loaded.docker("image", "prune", "-f")
    assert out.returncode == 0, out.stderr
    assert loaded.docker("image", "inspect", "busybox").returncode == 0
    assert loaded.docker("image", "inspect", "dangle:1").returncode == 0
    query = _q({"dangling": ["false"], "label": ["nosuch"]})
    status, _, body = loaded.api("POST", "/images/prune?filters=" + query)
    assert status == 200 and json.loads(body)["ImagesDeleted"] is None
    loaded.docker("rmi", "dangle:1")


def test_restart_with_signal(loaded):
    script = "trap 'echo got-usr1; exit 0' USR1; echo up; while :; do sleep 0.1; done"
    assert loaded.docker("run", "-d", "--name", "rs1", "busybox", "sh", "-c", script).returncode == 0
    time.sleep(0.5)
    status, _, body = loaded.api("POST", "/containers/rs1/restart?signal=SIGUSR1&t=5")
    assert status == 204, body
    logs = loaded.docker("logs", "rs1").stdout.decode()
    assert "got-usr1" in logs and logs.count("up") == 2, logs
    assert json.loads(loaded.docker("inspect", "rs1").stdout)[0]["State"]["Running"] is True
    status, _, body = loaded.api("POST", "/containers/rs1/restart?signal=SIGNOPE")
    assert status == 400
    loaded.docker("rm", "-f", "rs1")
