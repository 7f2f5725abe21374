"""Pulls that go wrong on the way: a pull SIGKILLed while downloading a big layer (through a
throttling proxy) and pulled again; Docker Hub names through a pull-through-cache mirror while
"Docker Hub" is a dead loopback port; the error when the mirror is down too."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from runtime.errors import BerthError
from tests import imagefactory
from tests.registry.conftest import make_registry_engine as make_engine
from tests.registry.registries import Registry, ThrottleProxy, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r"""
import json, sys
sys.path.insert(0, %(root)r)
from tests.registry.conftest import make_registry_engine as make_engine
engine = make_engine(%(data)r)
def show(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()
engine.image_pull(%(name)r, "1", progress=show)
"""


def test_killed_pull_leaves_no_image_and_next_pull_resumes(plain_registry, seed, tmp_path):
    small = imagefactory.layer_tar([("file", "small", b"s" * 1000)])
    big = imagefactory.layer_tar([("file", "big", os.urandom(24 << 20))])
    image_id = seed(plain_registry, "kill/app:1", [small, big])
    proxy = ThrottleProxy(plain_registry.port, rate=4 << 20)
    data = str(tmp_path / "root")
    script = CHILD % {"root": ROOT, "data": data, "name": "127.0.0.1:%d/kill/app" % proxy.port}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    completed, big_started = set(), False
    deadline = time.time() + 60
    try:
        for line in proc.stdout:
            msg = json.loads(line.decode())
            if msg.get("status") == "Pull complete":
                completed.add(msg["id"])
            if msg.get("status") == "Downloading" and msg["progressDetail"]["total"] > (20 << 20) \
                    and msg["progressDetail"]["current"] > (2 << 20):
                big_started = True
            if (big_started and completed) or time.time() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proxy.close()
    assert big_started and len(completed) == 1, (completed, proc.stderr.read()[-2000:])
    engine = make_engine(data)
    with pytest.raises(BerthError):
        engine.store.resolve("127.0.0.1:%d/kill/app:1" % proxy.port)
    since = len(plain_registry.requests())
    msgs = []
    assert engine.image_pull("%s/kill/app" % plain_registry.host, "1", progress=msgs.append) == image_id
    statuses = [(m.get("status"), m.get("id")) for m in msgs]
    assert ("Already exists", list(completed)[0]) in statuses
    # the small layer, complete before the kill, is not fetched again (the killed request for
    # the big one may still be logged late, so look at which blobs, not how many GETs)
    small_id = list(completed)[0]
    assert not [g for g in plain_registry.blob_gets(since) if "sha256:" + small_id in g[1]]
    assert [m for m in msgs if m.get("status") == "Downloading" and m["id"] != small_id]


def test_broken_connection_mid_blob_is_retried(plain_registry, seed, tmp_path):
    layer = imagefactory.layer_tar([("file", "f", os.urandom(1 << 20))])
    image_id = seed(plain_registry, "cut/app:1", [layer])
    proxy = ThrottleProxy(plain_registry.port, cut_after=300000, cuts=1)
    engine = make_engine(tmp_path / "root")
    msgs = []
    try:
        got = engine.image_pull("127.0.0.1:%d/cut/app" % proxy.port, "1", progress=msgs.append)
    finally:
        proxy.close()
    assert got == image_id
    assert [m for m in msgs if m.get("status") == "Retrying in 1 second"]
    assert proxy.cuts == 0
    assert os.listdir(os.path.join(engine.store.root, "tmp")) == []


@pytest.fixture(scope="module")
def mirror(plain_registry, regdir):
    """A pull-through cache whose upstream is the plain registry (our stand-in Docker Hub)."""
    r = Registry(regdir / "mirror", proxy=plain_registry.url).start()
    yield r
    r.stop()


def test_hub_name_through_mirror_while_hub_is_unreachable(plain_registry, mirror, seed, tmp_path):
    image_id = seed(plain_registry, "library/busybox:latest", [imagefactory.busybox_layer_tar()])
    dead_hub = "https://127.0.0.1:%d" % free_port()
    dead_mirror = "http://127.0.0.1:%d" % free_port()
    engine = make_engine(tmp_path / "root", {"registry-mirrors": [dead_mirror], "hub-url": dead_hub})
    with pytest.raises(BerthError) as e:
        engine.image_pull("busybox", "latest")
    msg = str(e.value)
    assert "mirror %s" % dead_mirror in msg and "Docker Hub (%s)" % dead_hub in msg, msg
    assert "\n" not in msg

    # as a SIGHUP reload does: the daemon updates the engine's config in place
    engine.config["registry-mirrors"] = [dead_mirror, mirror.url]
    msgs = []
    assert engine.image_pull("busybox", progress=msgs.append) == image_id
    assert msgs[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert msgs[-1]["status"] == "Status: Downloaded newer image for busybox:latest"
    assert any("/v2/library/busybox/manifests/latest" in r[1] for r in mirror.requests())
    assert engine.store.resolve("docker.io/library/busybox:latest") == image_id
    assert engine.store.resolve("busybox") == image_id
