#!/usr/bin/env python3
"""Container start-to-exit latency: create + start + wait + rm of `true` in a busybox image,
with berth's engine (in-process, as the daemon calls it), beside `crun run` and `runc run` of
the same rootfs and `podman run --rm --network none` of the same image, in one invocation;
plus the PSS a running container's monitor adds. Prints medians and ratios.

    sudo .venv/bin/python bench/container_start.py [--runs 50] [--peer-runs 20] [--nice -20]
        [--python host --python 3.6] [--skip crun|runc|podman]

berth runs as bench/engine_loop.py on the machine's python3 and on CentOS 7's Python 3.6 (the
pyenv one), each a process of its own taking its turn in the loop.

Targets: berth <= 0.6x crun's median in the same loop, on both pythons; monitor <= 5 MB PSS.

The tools take turns inside one loop (berth, crun, runc, podman, berth, ...), so a machine
whose load changes during the run treats them alike. Everything runs in a private mount
namespace with /sys/fs/cgroup/unified unmounted: crun (alone and under podman) refuses this
machine's hybrid cgroup layout otherwise (notes/peers.md); berth and runc use the v1
controllers either way. podman needs explicit ulimits here (root lacks CAP_SYS_RESOURCE).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import benchlib  # noqa: E402
from runtime.container.proc import cgroups  # noqa: E402
from tests import imagefactory  # noqa: E402

PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
WARM_UP = 3


class Berth(object):
    """berth's engine as the daemon calls it, in a process of its own on the given python
    (bench/engine_loop.py), with its own data root and cgroup parent."""

    def __init__(self, tmp, archive, python, name, host_config=None, tree=None):
        self.name = name
        self.parent = "berth-bench-" + uuid.uuid4().hex[:8]
        self.proc = subprocess.Popen(
            [python, os.path.join(ROOT, "bench", "engine_loop.py"), os.path.join(tmp, self.parent),
             self.parent, archive, json.dumps(host_config or {})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, BERTH_TREE=tree or ROOT))
        if self.proc.stdout.readline() != b"ready\n":
            raise SystemExit("bench/engine_loop.py on %s did not start" % python)
        self.phases = {"create": [], "start": [], "wait": [], "rm": [], "cpu": []}

    def ask(self, cmd):
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench/engine_loop.py exited (%s)" % cmd)
        return json.loads(line.decode())

    def once(self, keep):
        r = self.ask("once")
        if keep:
            for k in self.phases:
                self.phases[k].append(r[k])
        return r["total"]

    def monitor_pss(self):
        """PSS (kB) of the monitors of 5 running containers, with and without the forkserver."""
        return self.ask("pss")

    def close(self):
        if self.proc.poll() is None:
            self.ask("close")
            self.proc.wait()
        dirs = {m + "/" + self.parent for m in cgroups.v1_mounts().values()}
        if cgroups.detect_version() == 2:
            dirs = {"/sys/fs/cgroup/" + self.parent}
        for d in dirs:
            if os.path.isdir(d):
                os.rmdir(d)


class Command(object):
    """A peer: one process per run."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.n = 0

    def once(self, keep):
        self.n += 1
        t = time.perf_counter()
        subprocess.run([a.replace("{i}", str(self.n)) for a in self.argv], check=True)
        return time.perf_counter() - t


def bundle(tmp):
    """An OCI bundle of the busybox rootfs running `true`, no terminal (crun's default spec)."""
    b = os.path.join(tmp, "bundle")
    imagefactory.busybox_rootfs(os.path.join(b, "rootfs"))
    subprocess.run(["crun", "spec"], cwd=b, check=True)
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    return b


def podman(tmp, archive):
    """(podman run command, cleanup command) with its own storage under tmp."""
    store, run = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    base = ["podman", "--root", store, "--runroot", run, "--cgroup-manager", "cgroupfs",
            "--events-backend", "none"]
    subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                    "containers-storage:[overlay@%s+%s]localhost/bench-busybox:latest" % (store, run)],
                   check=True, stdout=subprocess.DEVNULL)
    run_cmd = base + ["run", "--rm", "--network", "none"] + PODMAN_ULIMITS + [
        "localhost/bench-busybox:latest", "true"]
    return run_cmd, base + ["system", "reset", "-f"]


def ms(xs):
    return statistics.median(xs) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--peer-runs", type=int, default=20)
    ap.add_argument("--python", action="append", default=[], help="host or 3.6 (default: both)")
    ap.add_argument("--skip", action="append", default=[], help="crun, runc or podman")
    ap.add_argument("--base", metavar="TREE", help="also the engine of this checkout (A/B)")
    ap.add_argument("--nice", type=int, default=0, metavar="N",
                    help="run everything (children inherit it) at this nice value, e.g. -20")
    args = ap.parse_args()
    if os.environ.get("BERTH_BENCH_NS") != "1":  # re-run in a private mount namespace
        os.environ["BERTH_BENCH_NS"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--", sys.executable] + sys.argv)
    if os.path.ismount("/sys/fs/cgroup/unified"):
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
    if args.nice:
        os.nice(args.nice)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-compiled
    pys = benchlib.pythons(args.python or ["host", "3.6"])
    tmp = tempfile.mkdtemp(prefix="berth-bench-", dir="/tmp")
    berths, cleanup = [], None
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        for label, py in pys.items():
            berths.append(Berth(tmp, archive, py, "berth engine (python %s)" % label))
            if args.base:
                berths.append(Berth(tmp, archive, py, "berth base (python %s)" % label,
                                    tree=os.path.abspath(args.base)))
        b = bundle(tmp)
        peers = []
        if "crun" not in args.skip:
            peers.append(Command("crun run", ["crun", "run", "--bundle", b, "bc-%d-{i}" % os.getpid()]))
        if "runc" not in args.skip:
            peers.append(Command("runc run", ["runc", "run", "--bundle", b, "br-%d-{i}" % os.getpid()]))
        if "podman" not in args.skip:
            run, cleanup = podman(tmp, archive)
            peers.append(Command("podman run --rm --network none", run))
        tools = berths + peers
        times = {t.name: [] for t in tools}
        before = benchlib.load()
        for i in range(WARM_UP + max(args.runs, args.peer_runs)):
            keep = i >= WARM_UP
            for tool in tools:
                limit = args.runs if tool in berths else args.peer_runs
                if i < WARM_UP + limit:
                    dt = tool.once(keep)
                    if keep:
                        times[tool.name].append(dt)
        print("create+start+wait+rm of `true` in busybox, median ms (berth n=%d, peers n=%d, taking turns); "
              "%s before, %s after%s" % (args.runs, args.peer_runs, before, benchlib.load(),
                                         "; nice %d" % args.nice if args.nice else ""))
        crun = ms(times["crun run"]) if "crun run" in times else None
        for berth in berths:
            bt = times[berth.name]
            print("  %-36s %7.1f  (p10 %.1f, p90 %.1f)%s" % (
                berth.name, ms(bt), sorted(bt)[len(bt) // 10] * 1000, sorted(bt)[len(bt) * 9 // 10] * 1000,
                "  berth/crun = %.2fx (target <= 0.6x: %s)" % (ms(bt) / crun, "ok" if ms(bt) / crun <= 0.6
                                                               else "MISSED") if crun else ""))
            print("    " + ", ".join("%s %.1f" % (k, ms(v)) for k, v in berth.phases.items())
                  + " (the engine process's own CPU)")
        for p in peers:
            peer = ms(times[p.name])
            ratios = ["%s/peer = %.2fx" % (b.name.replace("berth ", ""), ms(times[b.name]) / peer)
                      for b in berths]
            print("  %-36s %7.1f  %s" % (p.name, peer, ", ".join(ratios)))
        for berth in berths:
            pss = berth.monitor_pss()
            print("%s: monitor PSS %.0f kB median over 5 running containers (first %d kB; %.0f kB once the "
                  "engine's forkserver is gone); forkserver %d kB; target <= 5120 kB" % (
                      berth.name, pss["median"], pss["first"], pss["without_engine"], pss["forkserver"]))
    finally:
        for berth in berths:
            berth.close()
        if cleanup:
            subprocess.run(cleanup, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
