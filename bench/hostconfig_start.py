#!/usr/bin/env python3
"""The default container start with every HostConfig field handled, against a base tree
without that work, and what the opt-in fields cost: create + start + wait + rm of `true` in
busybox, median of N, in one loop where the variants take turns in a shuffled order, 50 ms
apart (so a machine whose load drifts treats them alike, and every start finds its engine's
prepared spare when it can use one). Each tree runs in its own worker process with its own engine.

    sudo .venv/bin/python bench/hostconfig_start.py --base /path/to/main/tree [--runs 40]

Variants: base (the other tree, default HostConfig), this tree default, this tree with
--init, with PidMode host (no prepared spare: a fresh fork), with Ulimits + Sysctls +
OomScoreAdj, with CpusetCpus (the cpuset hierarchy too). Prints medians and ratios to base.
"""

import argparse
import json
import os
import statistics
import subprocess
import random
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from tests.engine.conftest import make_engine
eng = make_engine(sys.argv[2], {"cgroup-parent": sys.argv[3]})
with open(sys.argv[4], "rb") as f:
    eng.image_load(f)
for line in sys.stdin:
    hc = json.loads(line)
    hc["NetworkMode"] = "none"
    t0 = time.perf_counter()
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": hc})["Id"]
    eng.container_start(cid)
    code = eng.container_wait(cid)["StatusCode"]
    eng.container_remove(cid)
    ms = (time.perf_counter() - t0) * 1000
    print(json.dumps({"ms": ms, "code": code}), flush=True)
eng.close()
"""

VARIANTS = [
    ("base", "base", {}),
    ("default", "this", {}),
    ("--init", "this", {"Init": True}),
    ("--pid host", "this", {"PidMode": "host"}),
    ("ulimit+sysctl+oom", "this", {"Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}],
                                   "Sysctls": {"kernel.msgmax": "4096"}, "OomScoreAdj": 100}),
    ("--cpuset-cpus 0", "this", {"CpusetCpus": "0"}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="a berth tree to compare with (e.g. main's)")
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    sys.path.insert(0, ROOT)
    from tests import imagefactory
    tmp = tempfile.mkdtemp(prefix="hcf-bench-", dir="/tmp")
    tar = str(imagefactory.busybox_image_tar(os.path.join(tmp, "busybox.tar")))
    workers = {}
    parents = []
    for name, tree in (("base", os.path.abspath(args.base)), ("this", ROOT)):
        parent = "berth-bench-" + uuid.uuid4().hex[:8]
        parents.append(parent)
        workers[name] = subprocess.Popen(
            [sys.executable, "-c", WORKER, tree, os.path.join(tmp, name), parent, tar],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
    times = {v[0]: [] for v in VARIANTS}
    try:
        for i in range(args.runs + 3):
            order = list(VARIANTS)
            random.shuffle(order)  # no variant always follows the same one
            for label, tree, hc in order:
                time.sleep(0.05)  # each engine's spare is forked once it has been idle 20 ms
                w = workers[tree]
                w.stdin.write(json.dumps(hc) + "\n")
                w.stdin.flush()
                res = json.loads(w.stdout.readline())
                assert res["code"] == 0, (label, res)
                if i >= 3:  # warm-up
                    times[label].append(res["ms"])
    finally:
        for w in workers.values():
            w.stdin.close()
            w.wait()
        for parent in parents:
            for mnt in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"):
                try:
                    os.rmdir("/sys/fs/cgroup/%s/%s" % (mnt, parent))
                except OSError:
                    pass
        subprocess.call(["rm", "-rf", tmp])
    base = statistics.median(times["base"])
    print("create+start+wait+rm of `true`, median of %d, variants in turn" % args.runs)
    for label, _, _ in VARIANTS:
        med = statistics.median(times[label])
        print("%-20s %7.1f ms  %.2fx base" % (label, med, med / base))


if __name__ == "__main__":
    main()
