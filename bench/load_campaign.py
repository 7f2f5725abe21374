#!/usr/bin/env python3
"""Load on one berthd: N concurrent clients for S seconds, each looping over a seeded random mix
of ps, inspect, logs, run --rm (create + start + wait + rm) and exec (create + detached start)
through the API socket. Prints per-operation counts and p50/p99 latencies, errors (every one
named), berthd's peak RSS and open fds (sampled each second), and the data root's checker
afterwards. The issue's size is 200 clients for 3 minutes; the defaults are small, so that a run
beside other work stays short.

    sudo .venv/bin/python bench/load_campaign.py [--clients 20] [--seconds 20] [--seed 18]
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import imagefactory  # noqa: E402
from tests.api.conftest import Berthd  # noqa: E402

MIX = (("ps", 4), ("inspect", 4), ("logs", 3), ("run --rm", 2), ("exec", 2))


def _proc_stats(pid):
    """(RSS bytes, open fds) of pid."""
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % pid))


class Client(threading.Thread):
    """One client looping until the deadline; latencies and errors per operation."""

    def __init__(self, d, rng, deadline, target, results):
        threading.Thread.__init__(self, daemon=True)
        self.d, self.rng, self.deadline, self.target, self.results = d, rng, deadline, target, results
        self.ops = [name for name, weight in MIX for _ in range(weight)]

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        status, _, data = self.d.api(method, path, body=body)
        if status not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, path, status, data[:200]))
        return data

    def one(self, op):
        if op == "ps":
            self.call("GET", "/containers/json?all=1")
        elif op == "inspect":
            self.call("GET", "/containers/%s/json" % self.target)
        elif op == "logs":
            self.call("GET", "/containers/%s/logs?stdout=1&stderr=1&tail=20" % self.target)
        elif op == "run --rm":
            cid = json.loads(self.call("POST", "/containers/create", {
                "Image": "busybox", "Cmd": ["true"]}))["Id"]
            self.call("POST", "/containers/%s/start" % cid)
            self.call("POST", "/containers/%s/wait" % cid)
            self.call("DELETE", "/containers/%s" % cid)
        elif op == "exec":
            eid = json.loads(self.call("POST", "/containers/%s/exec" % self.target,
                                       {"Cmd": ["true"]}))["Id"]
            self.call("POST", "/exec/%s/start" % eid, {"Detach": True})

    def run(self):
        while time.time() < self.deadline:
            op = self.rng.choice(self.ops)
            start = time.perf_counter()
            try:
                self.one(op)
                self.results.setdefault(op, []).append(time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001 - every error is reported
                self.results.setdefault("errors", []).append("%s: %s" % (op, e))


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--dir", default="/tmp")
    args = p.parse_args()
    base = tempfile.mkdtemp(prefix="bench-load-", dir=args.dir)
    d = Berthd(base)
    try:
        d.start()
        archive = imagefactory.busybox_image_tar(os.path.join(base, "bb.tar"))
        with open(archive, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        target = json.loads(d.api("POST", "/containers/create?name=target", {
            "Image": "busybox", "Cmd": ["sh", "-c", "while true; do echo tick; sleep 1; done"]})[2])["Id"]
        assert d.api("POST", "/containers/%s/start" % target)[0] == 204
        rng = random.Random(args.seed)
        deadline = time.time() + args.seconds
        results = [{} for _ in range(args.clients)]
        clients = [Client(d, random.Random(rng.random()), deadline, target, r) for r in results]
        peak_rss = peak_fds = 0
        for c in clients:
            c.start()
        while time.time() < deadline:
            rss, fds = _proc_stats(d.proc.pid)
            peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
            time.sleep(1)
        for c in clients:
            c.join(120)
        merged = {}
        for r in results:
            for k, v in r.items():
                merged.setdefault(k, []).extend(v)
        print("%d clients for %.0f s (seed %d), load average %s" % (
            args.clients, args.seconds, args.seed, " ".join("%.1f" % x for x in os.getloadavg())))
        for op, _ in MIX:
            lat = merged.get(op, [])
            print("  %-9s %6d  p50 %7.1f ms  p99 %7.1f ms" % (op, len(lat), _pct(lat, 0.5) * 1000,
                                                             _pct(lat, 0.99) * 1000))
        errors = merged.get("errors", [])
        print("  errors: %d%s" % (len(errors), "".join("\n    " + e for e in errors[:20])))
        print("  berthd peak RSS %.1f MB, peak open fds %d" % (peak_rss / 1e6, peak_fds))
        report = json.loads(d.api("GET", "/berth/check")[2])
        print("  data root check: %d problem(s), %d leftover(s)" % (report["Problems"],
                                                                     report["Partial"]))
        return 1 if errors or report["Problems"] else 0
    finally:
        d.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
