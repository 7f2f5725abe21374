#!/usr/bin/env python3
"""How berth's costs grow with the host's load (issue 20's scale targets), in one invocation,
through berthd and `berth` as installed (benchlib.install) on the machine's python3 or on
Python 3.6. Each figure is taken on the empty host first, then again with:

- R running containers (`sleep`, --network none) and C created ones: `berth run --rm
  --network none busybox true`, `berth ps`, `berth ps -a`, berthd's RSS, the monitors' PSS;
- I images of L layers each (small plain layers, loaded with `POST /images/load`): `berth
  images`, and `berth pull` of one more image (10 gzip layers, from a loopback registry; the
  median of 30 such images), taken once the images are in (the target's load) and again,
  for the record, once the containers are in too.

The two ratio targets (`run --rm` and the pull against the empty host's) are taken in turns
with a second berthd that stays empty (in_turns), once the first is loaded.

    sudo .venv/bin/python bench/scale.py [--python host|3.6] [--runs 15]
    BERTH_BENCH_SCALE=full ...    # 200 running, 1,000 created, 500 images x 10 layers

The default (a quick run) is a tenth of that; --running/--created/--images/--layers override.
One pull and three `run --rm` before the timed ones are not counted (berthd imports its
registry client at its first pull, and the first runs after a start are slower); each side is
measured after the set-up's writes are on disk (settle). --hold keeps the loaded berthd (and
the registry) up at the end for a look (py-spy, /proc/PID/smaps, `kill -USR1`).
Targets (full size): run --rm <= 1.2x the empty host's; ps <= 50 ms; ps -a <= 100 ms; berthd
RSS <= 40 MB; each monitor <= 5 MB PSS; images <= 50 ms; the pull no slower than on the
empty store.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import tarfile
import tempfile
import time

import benchlib
from benchlib import ms

from tests import imagefactory
from tests.registry.registries import Registry, skopeo_copy

FULL = {"running": 200, "created": 1000, "images": 500, "layers": 10}
QUICK = {"running": 20, "created": 100, "images": 50, "layers": 10}


def layer(tag):
    """A small plain layer tar: one directory and one file whose content is tag."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        d = tarfile.TarInfo("scale")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(d)
        data = tag.encode()
        f = tarfile.TarInfo("scale/" + tag)
        f.size = len(data)
        tf.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def pss_mb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def monitors(d, ids):
    """The monitor PIDs of these containers (their state.json)."""
    out = []
    for cid in ids:
        with open(os.path.join(d.data_root, "containers", cid, "state.json")) as f:
            out.append(json.load(f)["MonitorPid"])
    return out


def timed_runs(argv, env, runs):
    """Seconds of each of `runs` runs of argv (which must succeed)."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append(time.perf_counter() - t)
        if r.returncode:
            raise SystemExit("%s failed: %s" % (" ".join(argv), r.stderr.decode()))
    return out


PULLS = 30  # images pulled on each side (one pull is ~0.1 s here; the median of 10 still moved by +-5 %)
PULL = "pull of one more image, images in (ms), median of %d" % PULLS
PULL_ALL = "the same, the containers in too (ms)"
RUN_MS = "run --rm (ms)"


def run_argv(berth):
    """`run --rm` of `true`, as timed here."""
    return [berth, "run", "--rm", "--network", "none", "busybox", "true"]


def settle():
    """Write back what the set-up left dirty (the images and containers just made: thousands of
    files), then let the writeback finish: measured during it, every fsync and journal commit
    of a create or a pull waited behind it (`run --rm` 1.29x the empty host's right after
    populating, 1.02x against an idle second berthd in alternation)."""
    os.sync()
    time.sleep(2)


def in_turns(sides):
    """sides: [(env, [argv, ...])...], as many argvs each; the k-th of each side runs in turn,
    and each side's median (ms). The comparisons with the empty host are taken so, against a
    second berthd that stays empty, not one after the other: the pull measured after the
    empty host's was 1.34x and 1.36x on Python 3.6 in two runs and 0.94x in a third, `run --rm`
    1.06-1.32x; in turns, 0.99x and 1.02x."""
    times = [[] for _ in sides]
    order = list(range(len(sides)))
    for k in range(len(sides[0][1])):
        # each side goes first every other round: what one run leaves behind (its writeback)
        # falls on both alike
        for i in order if k % 2 == 0 else order[::-1]:
            env, argvs = sides[i]
            times[i] += timed_runs(argvs[k], env, 1)
    return [ms(t) for t in times]


def figures(d, berth, env, runs, running_ids):
    """{name: value}: the latencies (ms medians), berthd's RSS, monitors' PSS. (`run --rm` is
    timed by in_turns, against the second berthd.)"""
    out = {}
    timed_runs(run_argv(berth), env, 3)  # warm-up, not counted (the first runs after a start are slower)
    out["ps (ms)"] = ms(timed_runs([berth, "ps"], env, runs))
    out["ps -a (ms)"] = ms(timed_runs([berth, "ps", "-a"], env, runs))
    out["images (ms)"] = ms(timed_runs([berth, "images"], env, runs))
    time.sleep(1)
    out["berthd RSS (MB)"] = rss_mb(d.proc.pid)
    if running_ids:
        pss = [pss_mb(p) for p in monitors(d, running_ids[:20])]
        out["monitor PSS, median of up to 20 (MB)"] = statistics.median(pss)
        out["monitor PSS, largest (MB)"] = max(pss)
    return out


def populate_images(d, tmp, images, layers):
    """`images` images of `layers` small layers each, loaded 10 images per archive."""
    for start in range(0, images, 10):
        imgs = [imagefactory.Image("scale/img%d:1" % k,
                                   [layer("i%d-l%d" % (k, j)) for j in range(layers)], cmd=["true"])
                for k in range(start, min(images, start + 10))]
        path = os.path.join(tmp, "scale-images.tar")
        imagefactory.docker_archive(path, imgs)
        with open(path, "rb") as f:
            status, _, body = d.api("POST", "/images/load?quiet=1", body=f.read())
        if status != 200:
            raise SystemExit("image load failed: %s" % body[-300:])
        os.unlink(path)


def populate_containers(d, running, created):
    """`created` created containers and `running` running ones; the running ones' ids."""
    ids = []
    for k in range(created + running):
        cmd = ["sleep", "1000000"] if k < running else ["true"]
        status, _, body = d.api("POST", "/containers/create", body={
            "Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}})
        if status != 201:
            raise SystemExit("create failed: %s" % body)
        cid = json.loads(body.decode())["Id"]
        if k < running:
            status, _, body = d.api("POST", "/containers/%s/start" % cid)
            if status != 204:
                raise SystemExit("start failed: %s" % body)
            ids.append(cid)
    return ids


def probe_image(tmp, reg, name):
    """Push a busybox image with 9 more small gzip layers (unique to name) to reg; its reference."""
    path = os.path.join(tmp, name + ".tar")
    extra = []
    for j in range(9):
        p = os.path.join(tmp, "%s-%d.tar" % (name, j))
        with open(p, "wb") as f:
            f.write(layer("%s-%d-%s" % (name, j, os.urandom(8).hex())))
        extra.append(p)
    imagefactory.busybox_image_tar(path, ref="probe/%s:1" % name, layers=extra, gzip=True)
    skopeo_copy("docker-archive:" + path, "docker://%s/probe/%s:1" % (reg.host, name))
    return "%s/probe/%s:1" % (reg.host, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="host", help="host or 3.6")
    ap.add_argument("--runs", type=int, default=15)
    size = FULL if os.environ.get("BERTH_BENCH_SCALE") == "full" else QUICK
    for k, v in size.items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--hold", action="store_true",
                    help="keep the loaded berthd up after the figures, until Enter is pressed "
                         "(to look at it: py-spy, /proc/PID/smaps)")
    args = ap.parse_args()
    pys = benchlib.pythons([args.python])
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    tmp = tempfile.mkdtemp(prefix="berth-bench-scale-", dir="/tmp")
    d = d0 = reg = None
    try:
        installed = benchlib.install(tmp, pys)[args.python]
        reg = Registry(os.path.join(tmp, "registry")).start()
        warm = probe_image(tmp, reg, "warm")
        # the pull's target is the store's load (images and layers): it is taken in turns
        # once the images are in, and again (without a target) once the containers are too
        on_empty, on_loaded = ([[probe_image(tmp, reg, "%s%d-%d" % (side, phase, k))
                                 for k in range(PULLS)] for phase in range(2)]
                               for side in ("empty", "loaded"))
        # d gets loaded; d0 stays empty, for the pulls taken in turns with d's
        d = benchlib.InstalledBerthd(os.path.join(tmp, "daemon"), installed["berthd"])
        d0 = benchlib.InstalledBerthd(os.path.join(tmp, "daemon-empty"), installed["berthd"])
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        berth = installed["berth"]
        for daemon in (d, d0):
            daemon.start()
            with open(archive, "rb") as f:
                assert daemon.api("POST", "/images/load", body=f.read())[0] == 200
            # one pull first, untimed: berthd imports its registry client at the first pull
            timed_runs([berth, "pull", warm], dict(os.environ, BERTH_HOST=daemon.host), 1)
        env = dict(os.environ, BERTH_HOST=d.host)
        settle()
        empty_load = benchlib.load()
        empty = figures(d, berth, env, args.runs, [])
        t = time.perf_counter()
        populate_images(d, tmp, args.images, args.layers)
        t_img = time.perf_counter() - t
        settle()
        env0 = dict(os.environ, BERTH_HOST=d0.host)

        def pulls_in_turns(phase):
            return in_turns([(env0, [[berth, "pull", r] for r in on_empty[phase]]),
                             (env, [[berth, "pull", r] for r in on_loaded[phase]])])

        pulls = [pulls_in_turns(0)]
        t = time.perf_counter()
        running = populate_containers(d, args.running, args.created)
        t_ctr = time.perf_counter() - t
        print("populated: %d images x %d layers in %.1f s; %d running + %d created containers in %.1f s"
              % (args.images, args.layers, t_img, args.running, args.created, t_ctr))
        settle()
        loaded_load = benchlib.load()
        loaded = figures(d, berth, env, args.runs, running)
        run = run_argv(berth)
        timed_runs(run, env0, 3)  # (d0's warm-up)
        on_empty_run, on_loaded_run = in_turns([(env0, [run] * args.runs), (env, [run] * args.runs)])
        empty, loaded = dict({RUN_MS: on_empty_run}, **empty), dict({RUN_MS: on_loaded_run}, **loaded)
        pulls.append(pulls_in_turns(1))
        (empty[PULL], loaded[PULL]), (empty[PULL_ALL], loaded[PULL_ALL]) = pulls
        targets = {RUN_MS: ("<= 1.2x empty", lambda v: v <= 1.2 * empty[RUN_MS]),
                   "ps (ms)": ("<= 50", lambda v: v <= 50), "ps -a (ms)": ("<= 100", lambda v: v <= 100),
                   "images (ms)": ("<= 50", lambda v: v <= 50),
                   PULL: ("<= 1.0x empty", lambda v: v <= empty[PULL]),
                   "berthd RSS (MB)": ("<= 40", lambda v: v <= 40),
                   "monitor PSS, largest (MB)": ("<= 5", lambda v: v <= 5)}
        print("python %s, median of %d; empty host: %s; loaded (%d running, %d created, %d images, "
              "%d layers): %s"
              % (args.python, args.runs, empty_load, args.running, args.created, args.images,
                 args.images * args.layers, loaded_load))
        print("  %-44s %9s %9s %7s  %s" % ("", "empty", "loaded", "ratio", "target"))
        for k, v in loaded.items():
            e = empty.get(k)
            target, ok = targets.get(k, ("", None))
            print("  %-44s %9s %9.1f %7s  %s%s" % (
                k, "%.1f" % e if e is not None else "-", v, "%.2fx" % (v / e) if e else "",
                target, "" if ok is None else ("  ok" if ok(v) else "  MISSED")))
        if args.hold:
            input("berthd (pid %d) is up at %s, the registry at %s; press Enter to clean up "
                  % (d.proc.pid, d.host, reg.host))
    finally:
        for daemon in (d, d0):
            if daemon is not None:
                daemon.cleanup()
        if reg is not None:
            reg.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
