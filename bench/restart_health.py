#!/usr/bin/env python3
"""Services that stay up, measured against dockerd in one invocation (dockerd from Debian's
docker.io and containerd packages unpacked with `dpkg-deb -x` into --dockerd-root, run as
tests/dockerpy_compare.py runs it: its own network namespace, data root, exec root and socket,
no iptables, no bridge):

- restart: a container with `--restart always` running `sleep`; its PID 1 is SIGKILLed and the
  time until inspect shows the new PID 1 (exec'd: /proc/PID/cmdline is sleep) is measured,
  polling the API every 2 ms. A fresh container each time, so each restart is a first one
  (dockerd's delay floor: 100 ms + a start). Median of N, both engines taking turns.
- health checks: 20 containers `sleep` with `--health-cmd true --health-interval 1s`; the CPU
  the engine's own processes use over a window (berthd, forkserver, monitors, exec helpers;
  dockerd, containerd, shims, runc), from a cpuacct cgroup each engine is started in (the
  containers' processes, checks included, run in the containers' cgroups: not counted), as %
  of one CPU, with the same containers idle (no checks) as the baseline.

    sudo .venv/bin/python bench/restart_health.py [--dockerd-root DIR] [--runs 15] \
        [--containers 20] [--window 20]

Targets: restart <= 2x dockerd's floor (100 ms + start); health-check CPU <= dockerd's.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import imagefactory  # noqa: E402
from tests.api.conftest import DOCKER, Berthd  # noqa: E402
from tests.dockerpy_compare import Dockerd  # noqa: E402

CPUACCT = "/sys/fs/cgroup/cpuacct"


class Group(object):
    """A cpuacct cgroup the engine is started in; its children inherit it."""

    def __init__(self, name):
        self.path = os.path.join(CPUACCT, name)
        os.makedirs(self.path, exist_ok=True)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def usage(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def close(self):
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                left = f.read().split()
            root = os.path.join(CPUACCT, "cgroup.procs")
            for pid in left:  # (our own engines' processes, still running when it ends)
                with open(root, "w") as f:
                    f.write(pid)
            os.rmdir(self.path)
        except OSError:
            pass


class Engine(object):
    """A docker-API engine on a socket: berthd or dockerd, in its own cpuacct group."""

    def __init__(self, name, host, group):
        self.name, self.host, self.group = name, host, group

    def request(self, method, path):
        """(status, body) of an unversioned request (dockerd 20.10 refuses our client's 1.44)."""
        sock_path = self.host[len("unix://"):]

        class Conn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.connect(sock_path)

        c = Conn("localhost", timeout=30)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def inspect(self, cid):
        return json.loads(self.request("GET", "/containers/%s/json" % cid)[1])

    def start_time(self):
        """Seconds of POST /containers/ID/start of a created container (the start in the floor)."""
        cid = self.run("create", "--network", "none", "busybox", "sleep", "1000")
        try:
            t0 = time.perf_counter()
            status, body = self.request("POST", "/containers/%s/start" % cid)
            took = time.perf_counter() - t0
            if status != 204:
                raise SystemExit("%s: start: %s %s" % (self.name, status, body))
            return took
        finally:
            self.run("rm", "-f", cid)

    def run(self, *args):
        return subprocess.run([DOCKER, "-H", self.host] + list(args), check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE).stdout.decode().strip()

    def pid(self, cid):
        return self.inspect(cid)["State"]["Pid"]

    def restart_time(self):
        """Seconds from SIGKILL of PID 1 to the new PID 1 running sleep."""
        cid = self.run("run", "-d", "--network", "none", "--restart", "always", "busybox", "sleep", "1000")
        try:
            deadline = time.time() + 10
            while not self.pid(cid):
                if time.time() > deadline:
                    raise SystemExit("%s: container did not start" % self.name)
                time.sleep(0.01)
            time.sleep(0.3)
            old = self.pid(cid)
            t0 = time.perf_counter()
            os.kill(old, 9)
            while True:
                new = self.pid(cid)
                if new and new != old and _cmd(new) == b"sleep":
                    return time.perf_counter() - t0
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("%s: no restart within 30 s" % self.name)
                time.sleep(0.002)
        finally:
            self.run("rm", "-f", cid)

    def cpu_percent(self, n, window, health):
        """% of one CPU the engine used over window seconds with n containers."""
        flags = ["--health-cmd", "true", "--health-interval", "1s"] if health else []
        ids = [self.run("run", "-d", "--network", "none", *(flags + ["busybox", "sleep", "1000"]))
               for _ in range(n)]
        try:
            time.sleep(3)  # past the starts (and the first checks)
            before, t0 = self.group.usage(), time.time()
            time.sleep(window)
            used = self.group.usage() - before
            if health:
                states = [self.inspect(c)["State"]["Health"]["Status"] for c in ids]
                if states.count("healthy") != n:
                    raise SystemExit("%s: not all healthy: %s" % (self.name, states))
            return 100.0 * used / (time.time() - t0)
        finally:
            self.run("rm", "-f", *ids)


def _cmd(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].rsplit(b"/", 1)[-1]
    except OSError:
        return b""


def _remove_cgroups(name):
    """The (empty) cgroup dirs dockerd made for its containers under /NAME in each hierarchy."""
    for hier in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hier, name)
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def start_berthd(tmp, group):
    d = Berthd(os.path.join(tmp, "berthd"))
    d.start()
    group.add(d.proc.pid)  # before its first container: the forkserver starts then
    return d


def start_dockerd(tmp, group, pkg_root):
    base = os.path.join(tmp, "dockerd")
    os.makedirs(base)
    # an absolute cgroup parent: the containers (and so the checks' own processes) are outside
    # the engine's group, as berthd's are
    d = Dockerd(base, pkg_root, cgroup_parent="/bench-svc-dockerd-ctr-%d" % os.getpid())
    d.start(preexec_fn=lambda: group.add(os.getpid()))
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dockerd-root", help="unpacked docker.io + containerd packages (usr/sbin/dockerd)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--window", type=float, default=20.0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-svc-", dir="/tmp")
    archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "busybox.tar")))
    groups, engines, daemons = [], [], []
    try:
        g = Group("bench-svc-berthd-%d" % os.getpid())
        groups.append(g)
        berthd = start_berthd(tmp, g)
        daemons.append(berthd)
        engines.append(Engine("berthd", berthd.host, g))
        if args.dockerd_root:
            g = Group("bench-svc-dockerd-%d" % os.getpid())
            groups.append(g)
            dockerd = start_dockerd(tmp, g, args.dockerd_root)
            daemons.append(dockerd)
            engines.append(Engine("dockerd", dockerd.host, g))
        else:
            print("(no --dockerd-root: berthd alone; dpkg-deb -x docker.io and containerd into a dir"
                  " to compare)")
        for e in engines:
            subprocess.run([DOCKER, "-H", e.host, "load", "-q", "-i", archive], check=True,
                           stdout=subprocess.DEVNULL)
        times = {e.name: [] for e in engines}
        starts = {e.name: [] for e in engines}
        for _ in range(args.runs):
            for e in engines:
                times[e.name].append(e.restart_time())
                starts[e.name].append(e.start_time())
        print("restart of a killed --restart always container (SIGKILL -> new PID 1 running), median of %d:"
              % args.runs)
        for name, xs in times.items():
            print("  %-8s %7.1f ms  (min %.1f, max %.1f)"
                  % (name, statistics.median(xs) * 1000, min(xs) * 1000, max(xs) * 1000))
        for name, xs in starts.items():
            print("  (%s: POST /containers/ID/start of a created container, median %.1f ms)"
                  % (name, statistics.median(xs) * 1000))
        if "dockerd" in times:
            ratio = statistics.median(times["berthd"]) / statistics.median(times["dockerd"])
            floor = 0.1 + statistics.median(starts["dockerd"])
            print("  berthd/dockerd: %.2fx; berthd / dockerd's floor (100 ms + its start, %.0f ms): %.2fx"
                  % (ratio, floor * 1000, statistics.median(times["berthd"]) / floor))
        print("engine CPU, %d containers, %.0f s window, %% of one CPU:" % (args.containers, args.window))
        for e in engines:
            idle = e.cpu_percent(args.containers, args.window, health=False)
            checked = e.cpu_percent(args.containers, args.window, health=True)
            print("  %-8s idle %5.2f%%   health check every 1 s: %5.2f%%" % (e.name, idle, checked))
    finally:
        for d in daemons:
            d.cleanup() if isinstance(d, Berthd) else d.stop()
        for g in groups:
            g.close()
        _remove_cgroups("bench-svc-dockerd-ctr-%d" % os.getpid())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
