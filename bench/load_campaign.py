#!/usr/bin/env python3
"""Load on one berthd: a population of containers (C created, R of them running), then N
concurrent clients for S seconds, each looping over a seeded random mix of ps, inspect, logs,
run --rm (create + start + wait + rm) and exec (create + detached start) through the API socket,
against random running containers. Clients are threads spread over several processes (one
Python client process would measure its own GIL). Prints `ps` latency with the population idle,
per-operation counts and p50/p99 under load, berthd's back-pressure answers apart (503 "berthd is
busy": a request that waited longer than berthd's queue allows, nothing of it done; see
runtime/api/admission.py), errors (every other failure, each named: another status, a refused or
dropped connection, a timeout), berthd's RSS and open fds (sampled each second, and at the end
against the start), and the data root's checker afterwards.

The issue's size is 200 clients for 3 minutes with 1,000 containers created and 200 running
(`--full`, or BERTH_LOAD_FULL=1); the defaults are small, so that a run beside other work stays
short. tests/api/test_load_campaign.py runs a small seeded size in the suite.

    sudo .venv/bin/python bench/load_campaign.py [--clients 20] [--seconds 20] [--created 40]
                                                  [--running 10] [--seed 18] [--full]
"""

import argparse
import json
import multiprocessing
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

BUSY = b"berthd is busy"  # the message of berthd's back-pressure answer (503)
MIX = (("ps", 4), ("inspect", 4), ("logs", 3), ("run --rm", 2), ("exec", 2))
FULL = {"clients": 200, "seconds": 180.0, "created": 1000, "running": 200}
TICKER = ["sh", "-c", "while true; do echo tick; sleep 5; done"]


def proc_stats(pid):
    """(RSS bytes, open fds) of pid."""
    rss, _ = _status(pid)
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def _status(pid):
    """(RSS bytes, threads) of pid."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


class Busy(Exception):
    """berthd answered 503 "busy": its documented back-pressure."""


class Client(threading.Thread):
    """One client looping until the deadline; latencies and errors per operation."""

    def __init__(self, d, rng, deadline, targets, results):
        threading.Thread.__init__(self, daemon=True)
        self.d, self.rng, self.deadline, self.targets, self.results = d, rng, deadline, targets, results
        self.ops = [name for name, weight in MIX for _ in range(weight)]

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        status, _, data = self.d.api(method, path, body=body)
        if status == 503 and BUSY in data:
            raise Busy()
        if status not in ok:
            raise RuntimeError("%s %s -> %d %s" % (method, path, status, data[:200]))
        return data

    def one(self, op):
        target = self.rng.choice(self.targets)
        if op == "ps":
            self.call("GET", "/containers/json?all=1")
        elif op == "inspect":
            self.call("GET", "/containers/%s/json" % target)
        elif op == "logs":
            self.call("GET", "/containers/%s/logs?stdout=1&stderr=1&tail=20" % target)
        elif op == "run --rm":
            cid = json.loads(self.call("POST", "/containers/create", {
                "Image": "busybox", "Cmd": ["true"]}))["Id"]
            try:
                self.call("POST", "/containers/%s/start" % cid)
                self.call("POST", "/containers/%s/wait" % cid)
                self.call("DELETE", "/containers/%s" % cid)
            except Busy:  # as a client told to retry later: its container does not stay
                try:
                    self.d.api("DELETE", "/containers/%s?force=1" % cid)
                except OSError:
                    pass
                raise
        elif op == "exec":
            eid = json.loads(self.call("POST", "/containers/%s/exec" % target, {"Cmd": ["true"]}))["Id"]
            self.call("POST", "/exec/%s/start" % eid, {"Detach": True})

    def run(self):
        while time.time() < self.deadline:
            op = self.rng.choice(self.ops)
            start = time.perf_counter()
            try:
                self.one(op)
                self.results.setdefault(op, []).append(time.perf_counter() - start)
            except Busy:
                self.results.setdefault("busy", []).append(op)
            except Exception as e:  # noqa: BLE001 - every error is reported
                self.results.setdefault("errors", []).append("%s: %s" % (op, e))


def _client_process(d, seeds, deadline, targets, out):
    """A client process: one thread per seed; its merged results go on the queue."""
    results = [{} for _ in seeds]
    threads = [Client(d, random.Random(s), deadline, targets, r) for s, r in zip(seeds, results)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline - time.time() + 120)
    merged = {}
    for r in results:
        for k, v in r.items():
            merged.setdefault(k, []).extend(v)
    out.put(merged)


def api(d, method, path, timeout):
    """(status, body) of one request to d with its own timeout."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(d.sock)

    c = Conn("localhost")
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def pct(values, p):
    """The p-quantile (0..1) of values, nan when empty."""
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def populate(d, created, running):
    """`created` containers, the first `running` of them started (a ticking shell); the ids of
    the running ones. Creation runs on 8 threads."""
    if not 0 < running <= created:
        raise ValueError("--running must be from 1 to --created")
    ids = [None] * created
    errors = []

    def work(indexes):
        for i in indexes:
            cmd = TICKER if i < running else ["true"]
            status, _, body = d.api("POST", "/containers/create?name=pop%04d" % i,
                                    {"Image": "busybox", "Cmd": cmd})
            if status != 201:
                errors.append("create pop%04d: %d %s" % (i, status, body[:200]))
                continue
            ids[i] = json.loads(body)["Id"]
            if i < running:
                status, _, body = d.api("POST", "/containers/%s/start" % ids[i])
                if status != 204:
                    errors.append("start pop%04d: %d %s" % (i, status, body[:200]))
    threads = [threading.Thread(target=work, args=(range(k, created, 8),)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("populating failed: %s" % "; ".join(errors[:5]))
    return ids[:running]


def idle_ps(d, n=20):
    """ps -a latencies (seconds) with nothing else going on."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        status, _, _ = d.api("GET", "/containers/json?all=1")
        out.append(time.perf_counter() - start)
        assert status == 200
    return out


def campaign(d, clients, seconds, seed, targets):
    """Run the clients; (merged results, peak RSS, peak fds)."""
    rng = random.Random(seed)
    seeds = [rng.random() for _ in range(clients)]
    nproc = max(1, min(clients, 2 * (os.cpu_count() or 1), 8))
    deadline = time.time() + seconds
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_client_process, args=(d, seeds[k::nproc], deadline, targets,
                                                                  queue), daemon=True)
             for k in range(nproc)]
    for p in procs:
        p.start()
    peak_rss = peak_fds = peak_threads = 0
    while time.time() < deadline:
        rss, fds = proc_stats(d.proc.pid)
        peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
        peak_threads = max(peak_threads, _status(d.proc.pid)[1])
        time.sleep(1)
    merged = {}
    for _ in procs:
        for k, v in queue.get(timeout=deadline - time.time() + 300).items():
            merged.setdefault(k, []).extend(v)
    for p in procs:
        p.join(30)
    return merged, peak_rss, peak_fds, peak_threads


def run(clients, seconds, created, running, seed, workdir="/tmp"):
    """The whole campaign on a fresh berthd; a dict of figures (see report)."""
    base = tempfile.mkdtemp(prefix="bench-load-", dir=workdir)
    d = Berthd(base)
    try:
        d.start()
        archive = imagefactory.busybox_image_tar(os.path.join(base, "bb.tar"))
        with open(archive, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        rss0, fds0 = proc_stats(d.proc.pid)
        started = time.time()
        targets = populate(d, created, running)
        populate_s = time.time() - started
        time.sleep(1)
        rss1, fds1 = proc_stats(d.proc.pid)
        ps_idle = idle_ps(d)
        merged, peak_rss, peak_fds, peak_threads = campaign(d, clients, seconds, seed, targets)
        ended = time.time()
        # requests whose clients gave up are still being served: how long until a ps answers
        status, body = api(d, "GET", "/containers/json?all=1", timeout=900)
        settle_s = time.time() - ended
        listed = json.loads(body) if status == 200 else []
        time.sleep(2)  # the last run --rm's monitors and exec helpers end
        rss2, fds2 = proc_stats(d.proc.pid)
        report = json.loads(api(d, "GET", "/berth/check", timeout=900)[1])
        running_now = sum(1 for c in listed if c["State"] == "running")
        return {"clients": clients, "seconds": seconds, "created": created, "running": running,
                "seed": seed, "populate_s": populate_s, "ps_idle": ps_idle, "results": merged,
                "rss": (rss0, rss1, peak_rss, rss2), "fds": (fds0, fds1, peak_fds, fds2),
                "threads": peak_threads,
                "check": report, "listed": len(listed), "running_now": running_now,
                "settle_s": settle_s, "load": os.getloadavg()}
    finally:
        d.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def report(fig, out=sys.stdout):
    """Print the figures; returns the exit status (1 on any error or checker problem)."""
    w = out.write
    w("%d clients for %.0f s (seed %d) over %d containers (%d running); populated in %.0f s; "
      "load average %s\n" % (fig["clients"], fig["seconds"], fig["seed"], fig["created"], fig["running"],
                             fig["populate_s"], " ".join("%.1f" % x for x in fig["load"])))
    w("  ps idle    %6d  p50 %7.1f ms  p99 %7.1f ms\n" % (
        len(fig["ps_idle"]), pct(fig["ps_idle"], 0.5) * 1000, pct(fig["ps_idle"], 0.99) * 1000))
    merged = fig["results"]
    for op, _ in MIX:
        lat = merged.get(op, [])
        w("  %-9s  %6d  p50 %7.1f ms  p99 %7.1f ms\n" % (op, len(lat), pct(lat, 0.5) * 1000,
                                                          pct(lat, 0.99) * 1000))
    busy = merged.get("busy", [])
    w("  back-pressure (503 busy): %d%s\n" % (len(busy), "".join(
        " %s %d" % (op, busy.count(op)) for op, _ in MIX if op in busy)))
    errors = merged.get("errors", [])
    kinds = {}
    for e in errors:
        kinds[e[:90]] = kinds.get(e[:90], 0) + 1
    w("  errors: %d%s\n" % (len(errors), "".join("\n    %5d x %s" % (n, k) for k, n in
                                                 sorted(kinds.items(), key=lambda x: -x[1])[:15])))
    rss, fds = fig["rss"], fig["fds"]
    w("  berthd RSS %.1f MB empty, %.1f MB populated, %.1f MB peak, %.1f MB after\n"
      % tuple(x / 1e6 for x in rss))
    w("  berthd fds %d empty, %d populated, %d peak, %d after; %d threads at the peak\n"
      % (fds + (fig.get("threads", 0),)))
    w("  after: a ps answered %.1f s after the load ended; %d containers listed, %d running\n"
      % (fig["settle_s"], fig["listed"], fig["running_now"]))
    check = fig["check"]
    w("  data root check: %d problem(s), %d leftover(s)\n" % (check["Problems"], check["Partial"]))
    return 1 if errors or check["Problems"] else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--created", type=int, default=40, help="containers created before the load")
    p.add_argument("--running", type=int, default=10, help="how many of them run")
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--full", action="store_true", default=bool(os.environ.get("BERTH_LOAD_FULL")),
                   help="the issue's size: 200 clients, 180 s, 1,000 created, 200 running")
    p.add_argument("--dir", default="/tmp")
    args = p.parse_args()
    size = dict(FULL) if args.full else {"clients": args.clients, "seconds": args.seconds,
                                         "created": args.created, "running": args.running}
    return report(run(seed=args.seed, workdir=args.dir, **size))


if __name__ == "__main__":
    sys.exit(main())
