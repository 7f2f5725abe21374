"""Crash campaigns: berthd is SIGKILLed at seeded random moments during pull (from a loopback
registry), load, import, commit, rmi, container create/rm and volume create/rm, then restarted.
After each restart the data root's checker (deep, through GET /berth/check) finds nothing but
reusable leftovers of interrupted downloads; every operation reported complete before the kill
is intact; none reported failed is visible. A second campaign SIGKILLs container monitors: the
exit is recorded, or the container is shown exited with the monitor's death as the reason.

Size and seed: BERTH_CRASH_KILLS (default 32, a CI-sized run of under two minutes; the issue's
campaign is 100) and BERTH_CRASH_SEED (default 18). A failure names the seed and iteration."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests import imagefactory
from tests.api.conftest import ROOT, Berthd
from tests.registry.registries import Registry

KILLS = int(os.environ.get("BERTH_CRASH_KILLS", "32"))
SEED = int(os.environ.get("BERTH_CRASH_SEED", "18"))
# the delay before the kill until the operation's duration is known (then: up to 1.2 times its
# median, so that most kills land inside it)
WINDOW = {"pull": 1.5, "load": 0.8, "import": 0.6, "commit": 0.5, "rmi": 0.3, "create": 0.2,
          "rm": 0.2, "vcreate": 0.05, "vrm": 0.05}
OPS = sorted(WINDOW)

pytestmark = pytest.mark.timeout(900)


def _random_layer(rng, size):
    data = rng.getrandbits(8 * size).to_bytes(size, "little")
    return imagefactory.layer_tar([("dir", "data"), ("file", "data/blob", data),
                                   ("file", "data/small", b"x" * rng.randrange(1, 4096))])


class Campaign(object):
    """The daemon, the registry, what is known to exist, and what each kill left."""

    def __init__(self, d, registry, rng, tmp):
        self.d, self.registry, self.rng, self.tmp = d, registry, rng, tmp
        self.images = set()  # refs known to exist
        self.containers = set()
        self.volumes = set()
        self.pull_ref = "%s/campull:1" % registry.host
        self.log = []
        self.durations = {}  # op -> seconds it took when not interrupted

    # ------------------------------------------------------------------ setup per operation

    def prepare(self, op, i):
        """(method, path, body, effect): the request to interrupt and what it makes or removes."""
        rng, d = self.rng, self.d
        if op == "pull":
            if self.pull_ref in self.images:
                assert d.api("DELETE", "/images/" + self.pull_ref)[0] == 200
                self.images.discard(self.pull_ref)
            return "POST", "/images/create?fromImage=%s/campull&tag=1" % self.registry.host, None, \
                ("image", self.pull_ref)
        if op == "load":
            ref = "camp/l%d:1" % i
            img = imagefactory.Image(ref, [imagefactory.busybox_layer_tar(),
                                           _random_layer(rng, rng.randrange(1, 4) << 20)],
                                     gzip=rng.random() < 0.5)
            path = os.path.join(self.tmp, "load.tar")
            imagefactory.docker_archive(path, [img])
            with open(path, "rb") as f:
                return "POST", "/images/load", f.read(), ("image", ref)
        if op == "import":
            ref = "camp/i%d:1" % i
            return "POST", "/images/create?fromSrc=-&repo=camp/i%d&tag=1" % i, \
                _random_layer(rng, rng.randrange(1, 4) << 20), ("image", ref)
        if op == "commit":
            name = "camp-src%d" % i
            status, _, body = d.api("POST", "/containers/create?name=" + name,
                                    {"Image": "busybox", "Cmd": ["true"]})
            assert status == 201, body
            cid = json.loads(body)["Id"]
            upper = os.path.join(d.data_root, "containers", cid, "upper")
            with open(os.path.join(upper, "added"), "wb") as f:
                f.write(rng.getrandbits(8 << 20).to_bytes(1 << 20, "little"))
            self.containers.add(name)
            return "POST", "/commit?container=%s&repo=camp/c%d&tag=1" % (name, i), None, \
                ("image", "camp/c%d:1" % i)
        if op == "rmi":
            victims = sorted(r for r in self.images if r.startswith("camp/"))
            if not victims:
                return self.prepare("load", i)
            ref = rng.choice(victims)
            return "DELETE", "/images/" + ref, None, ("image-gone", ref)
        if op == "create":
            name = "camp-k%d" % i
            return "POST", "/containers/create?name=" + name, \
                {"Image": "busybox", "Cmd": ["true"], "Volumes": {"/data": {}}}, \
                ("container", name)
        if op == "rm":
            if not self.containers:
                return self.prepare("create", i)
            name = rng.choice(sorted(self.containers))
            return "DELETE", "/containers/%s?v=1" % name, None, ("container-gone", name)
        if op == "vcreate":
            name = "campvol%d" % i
            return "POST", "/volumes/create", {"Name": name}, ("volume", name)
        if op == "vrm":
            if not self.volumes:
                return self.prepare("vcreate", i)
            name = rng.choice(sorted(self.volumes))
            return "DELETE", "/volumes/" + name, None, ("volume-gone", name)
        raise AssertionError(op)

    # ------------------------------------------------------------------ one kill

    def request(self, method, path, body, out):
        start = time.time()
        try:
            status, _, data = self.d.api(method, path, body=body)
            out["elapsed"] = time.time() - start
            failed = status >= 300 or b'"errorDetail"' in data or b'"error"' in data
            out["result"] = ("failed: %d %s" % (status, data[-300:])) if failed else "ok"
        except Exception as e:  # noqa: BLE001 - the daemon died under the request
            out["result"] = "interrupted: %s" % type(e).__name__

    def kill_during(self, op, i):
        method, path, body, effect = self.prepare(op, i)
        seen = sorted(self.durations.get(op, ()))
        # within the operation's usual duration once it is known, so most kills land inside it
        delay = self.rng.uniform(0, seen[len(seen) // 2] * 1.2 if seen else WINDOW[op])
        out = {}
        t = threading.Thread(target=self.request, args=(method, path, body, out))
        t.start()
        time.sleep(delay)
        assert self.d.kill(signal.SIGKILL) == -9
        t.join(30)
        assert not t.is_alive()
        if out["result"] == "ok":
            self.durations.setdefault(op, []).append(out["elapsed"])
        self.d.start()
        return effect, out["result"], delay

    def exists(self, kind, name):
        path = {"image": "/images/%s/json", "container": "/containers/%s/json",
                "volume": "/volumes/%s"}[kind] % name
        status = self.d.api("GET", path)[0]
        assert status in (200, 404), (path, status)
        return status == 200

    def verify(self, effect, result, where):
        kind, name = effect
        gone = kind.endswith("-gone")
        kind = kind.replace("-gone", "")
        there = self.exists(kind, name)
        pool = {"image": self.images, "container": self.containers, "volume": self.volumes}[kind]
        if result == "ok":
            assert there != gone, "%s: %s %s reported done but %s" % (
                where, kind, name, "still there" if gone else "missing")
        elif result.startswith("failed"):
            assert there == gone, "%s: %s %s reported failed (%s) but half done" % (
                where, kind, name, result)
        if there:
            pool.add(name)
        else:
            pool.discard(name)
        if there and kind == "image":  # visible means usable
            status, _, body = self.d.api("GET", "/images/%s/history" % name)
            assert status == 200, (where, body)

    def check(self, where):
        status, _, body = self.d.api("GET", "/berth/check")
        assert status == 200, body
        report = json.loads(body)
        bad = [f for f in report["Findings"] if not f["Reusable"]]
        assert bad == [], "%s: the checker found %s" % (where, json.dumps(bad, indent=1))
        return report["Partial"]


@pytest.fixture(scope="module")
def campaign_env(tmp_path_factory, busybox_tar):
    base = tmp_path_factory.mktemp("crash")
    registry = Registry(base / "registry").start()
    d = Berthd(str(base / "berthd"))
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        rng = random.Random(SEED)
        # the image pulled again and again: busybox and three random layers
        img = imagefactory.Image("%s/campull:1" % registry.host,
                                 [imagefactory.busybox_layer_tar()] +
                                 [_random_layer(rng, 1 << 20) for _ in range(3)], gzip=True)
        imagefactory.docker_archive(str(base / "pull.tar"), [img])
        with open(str(base / "pull.tar"), "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        out = d.berth("push", "%s/campull:1" % registry.host)
        assert out.returncode == 0, out.stderr
        yield d, registry, str(base)
    finally:
        d.cleanup()
        registry.stop()


def test_sigkill_of_berthd_loses_nothing(campaign_env):
    d, registry, base = campaign_env
    rng = random.Random(SEED)
    c = Campaign(d, registry, rng, base)
    c.images.add(c.pull_ref)
    tally = {}
    for i in range(KILLS):
        op = OPS[i % len(OPS)] if i < len(OPS) else rng.choice(OPS)
        where = "seed %d kill %d (%s)" % (SEED, i, op)
        effect, result, delay = c.kill_during(op, i)
        c.log.append((i, op, round(delay, 3), result))
        if os.environ.get("BERTH_CRASH_VERBOSE"):
            print(c.log[-1])
        tally.setdefault(op, {}).setdefault(result.split(":")[0], 0)
        tally[op][result.split(":")[0]] += 1
        c.verify(effect, result, where)
        c.check(where)
    print("kills survived: %d (seed %d): %s" % (KILLS, SEED, json.dumps(tally, sort_keys=True)))
    # what is left is only reusable content; the offline repair clears it and finds nothing else
    assert d.kill() == 0
    argv = [sys.executable, "-m", "runtime.daemon.main"] + d.argv()[3:] + ["--check-store"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(argv + ["--repair"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=ROOT, env=env, universal_newlines=True)
    assert "need a decision" in out.stdout and "0 need a decision" in out.stdout, out.stdout
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
                         universal_newlines=True)
    assert out.returncode == 0, out.stdout + out.stderr
    d.start()
    for ref in sorted(c.images):
        assert c.exists("image", ref), ref


def _state(d, name):
    status, _, body = d.api("GET", "/containers/%s/json" % name)
    assert status == 200, body
    return json.loads(body)["State"]


def test_sigkill_of_a_monitor_keeps_the_exit_or_says_why(campaign_env):
    d, _, _ = campaign_env
    rng = random.Random(SEED + 1)
    outcomes = {"recorded": 0, "monitor died": 0}
    for i in range(max(4, KILLS // 4)):
        name = "mon%d" % i
        out = d.berth("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1; exit 3")
        assert out.returncode == 0, out.stderr
        with open(os.path.join(d.data_root, "containers",
                               json.loads(d.api("GET", "/containers/%s/json" % name)[2])["Id"],
                               "state.json")) as f:
            monitor = json.load(f)["MonitorPid"]
        time.sleep(rng.uniform(0, 1.5))
        try:
            os.kill(monitor, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.time() + 10
        while _state(d, name)["Running"] and time.time() < deadline:
            time.sleep(0.05)
        st = _state(d, name)
        assert not st["Running"], st
        if st["ExitCode"] == 3:
            outcomes["recorded"] += 1
        else:
            assert st["ExitCode"] == 255 and "monitor" in st["Error"], st
            outcomes["monitor died"] += 1
        report = json.loads(d.api("GET", "/berth/check")[2])
        assert report["Problems"] == 0, report
        assert d.api("DELETE", "/containers/" + name)[0] == 204
    print("monitor kills: %s" % outcomes)
