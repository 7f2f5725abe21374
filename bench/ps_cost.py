#!/usr/bin/env python3
"""What one `ps` costs inside the engine (no HTTP, no client): an in-process Engine over a fresh
data root with C containers created and R of them running (a sleeping shell), then N calls of
`container_list` for `ps -a` and for `ps`, and the JSON encoding of the answer, with the
medians and the load average printed beside them. `--profile` prints cProfile's top functions
of the `ps -a` calls (cumulative time), so that where a ps goes is read, not guessed.

The peer is the same call on the same tree with `--tree OTHER` (an A/B of two checkouts in one
run: each tree's engine is built and measured in its own subprocess, in turn).

    sudo .venv/bin/python bench/ps_cost.py [--created 1000] [--running 200] [--calls 20]
                                           [--profile] [--tree /work/main]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLEEPER = ["sh", "-c", "while true; do sleep 60; done"]


def measure(created, running, calls, profile):
    """Build the population in this process's engine and time the lists; a dict of figures."""
    sys.path.insert(0, os.environ.get("BERTH_TREE") or ROOT)
    from runtime.engine import Engine
    from tests import imagefactory

    base = tempfile.mkdtemp(prefix="bench-ps-", dir="/tmp")
    parent = "berth-bench-ps-%d" % os.getpid()
    eng = Engine(data_root=os.path.join(base, "root"),
                 config={"bridge": "none", "cgroup-parent": parent})
    ids = []
    try:
        with open(imagefactory.busybox_image_tar(os.path.join(base, "bb.tar")), "rb") as f:
            eng.image_load(f)
        for i in range(created):
            cmd = SLEEPER if i < running else ["true"]
            ids.append(eng.container_create({"Image": "busybox", "Cmd": cmd}, name="ps%04d" % i)["Id"])
            if i < running:
                eng.container_start(ids[-1])
        out = {"created": created, "running": running, "calls": calls}
        for label, every in (("ps -a", True), ("ps", False)):
            times, encode = [], []
            for _ in range(calls):
                start = time.perf_counter()
                listed = eng.container_list(all=every)
                mid = time.perf_counter()
                json.dumps(listed)
                encode.append(time.perf_counter() - mid)
                times.append(mid - start)
            assert len(listed) == (created if every else running), (label, len(listed))
            out[label] = sorted(times)[len(times) // 2]
            out[label + " json"] = sorted(encode)[len(encode) // 2]
        if profile:
            import cProfile
            import io
            import pstats
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(calls):
                eng.container_list(all=True)
            prof.disable()
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(30)
            out["profile"] = text.getvalue()
        return out
    finally:
        for cid in ids[:running]:
            try:
                eng.container_kill(cid)
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        for cid in ids:
            try:
                eng.container_remove(cid, force=True)
            except Exception:  # noqa: BLE001
                pass
        eng.close()
        shutil.rmtree(base, ignore_errors=True)
        _remove_cgroups(parent)


def _remove_cgroups(parent):
    """The bench's cgroup parent, in every hierarchy (emptied by the removals above)."""
    from runtime.container.proc import cgroups
    roots = ["/sys/fs/cgroup"] if cgroups.detect_version() == 2 else list(cgroups.v1_mounts().values())
    for root in roots:
        path = os.path.join(root, parent)
        for _ in range(50):
            if not os.path.isdir(path):
                break
            for d, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            time.sleep(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--created", type=int, default=1000)
    p.add_argument("--running", type=int, default=200)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--tree", action="append", default=[],
                   help="another checkout to measure in turn (A/B); this one is always measured")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        json.dump(measure(args.created, args.running, args.calls, args.profile), sys.stdout)
        return 0
    for tree in [ROOT] + args.tree:
        env = dict(os.environ, BERTH_TREE=os.path.abspath(tree), PYTHONPATH=os.path.abspath(tree))
        argv = [sys.executable, os.path.abspath(__file__), "--child", "--created", str(args.created),
                "--running", str(args.running), "--calls", str(args.calls)]
        raw = subprocess.run(argv + (["--profile"] if args.profile else []), env=env, cwd=tree,
                             stdout=subprocess.PIPE, check=True).stdout
        fig = json.loads(raw.decode())
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        print("%s: %d created, %d running, %d calls (load %s)" % (tree, fig["created"], fig["running"],
                                                                  fig["calls"], load))
        for label in ("ps -a", "ps"):
            print("  %-5s  list %7.1f ms  json %6.1f ms" % (label, fig[label] * 1000,
                                                          fig[label + " json"] * 1000))
        if fig.get("profile"):
            print(fig["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
