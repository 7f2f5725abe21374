#!/usr/bin/env python3
"""Container start-to-exit latency: create + start + wait + rm of `true` in a busybox image,
with berth's engine (in-process, as the daemon calls it), beside `crun run` and `runc run` of
the same rootfs and `podman run --rm --network none` of the same image, in one invocation;
plus the PSS a running container's monitor adds. Prints medians and ratios.

    sudo .venv/bin/python bench/container_start.py [--runs 50] [--peer-runs 20] [--nice -20]

Target: berth <= 25 ms median; monitor <= 5 MB PSS.

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

from runtime.container.proc import cgroups  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.engine.conftest import make_engine  # noqa: E402

PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
WARM_UP = 3


class Berth(object):
    """berth's engine in this process, with its own data root and cgroup parent."""

    name = "berth engine"

    def __init__(self, tmp, archive, host_config=None, name=None):
        self.host_config = dict({"NetworkMode": "none"}, **(host_config or {}))
        self.name = name or self.name
        self.parent = "berth-bench-" + uuid.uuid4().hex[:8]
        self.eng = make_engine(os.path.join(tmp, "berth"), {"cgroup-parent": self.parent})
        with open(archive, "rb") as f:
            self.eng.image_load(f)
        self.phases = {"create": [], "start": [], "wait": [], "rm": []}

    def once(self, keep):
        eng = self.eng
        t0 = time.perf_counter()
        cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                    "HostConfig": self.host_config})["Id"]
        t1 = time.perf_counter()
        eng.container_start(cid)
        t2 = time.perf_counter()
        code = eng.container_wait(cid)["StatusCode"]
        t3 = time.perf_counter()
        eng.container_remove(cid)
        t4 = time.perf_counter()
        assert code == 0, code
        if keep:
            for k, a, b in (("create", t0, t1), ("start", t1, t2), ("wait", t2, t3), ("rm", t3, t4)):
                self.phases[k].append(b - a)
        return t4 - t0

    def monitor_pss(self, n=5):
        """PSS (kB) of the monitors of n running containers, with and without the forkserver."""
        eng = self.eng
        ids = []
        for _ in range(n):
            cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "1000"]})["Id"]
            eng.container_start(cid)
            ids.append(cid)
        time.sleep(0.3)
        mons = [eng.containers.get(c).started()["MonitorPid"] for c in ids]
        out = {"median": statistics.median(_pss_kb(p) for p in mons), "first": _pss_kb(mons[0]),
               "forkserver": _pss_kb(eng.spawner._proc.pid)}
        eng.close()  # the forkserver goes; the monitors now share pages only with each other
        time.sleep(0.2)
        out["without_engine"] = statistics.median(_pss_kb(p) for p in mons)
        for c in ids:
            eng.container_remove(c, force=True)
        return out

    def close(self):
        for c in self.eng.container_list(all=True):
            self.eng.container_remove(c["Id"], force=True)
        self.eng.close()
        dirs = {m + "/" + self.parent for m in cgroups.v1_mounts().values()}
        if cgroups.detect_version() == 2:
            dirs = {"/sys/fs/cgroup/" + self.parent}
        for d in dirs:
            if os.path.isdir(d):
                os.rmdir(d)


def _pss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


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
    ap.add_argument("--skip", action="append", default=[], help="crun, runc or podman")
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
    tmp = tempfile.mkdtemp(prefix="berth-bench-", dir="/tmp")
    berth = cleanup = None
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        berth = Berth(tmp, archive)
        b = bundle(tmp)
        peers = []
        if "crun" not in args.skip:
            peers.append(Command("crun run", ["crun", "run", "--bundle", b, "bc-%d-{i}" % os.getpid()]))
        if "runc" not in args.skip:
            peers.append(Command("runc run", ["runc", "run", "--bundle", b, "br-%d-{i}" % os.getpid()]))
        if "podman" not in args.skip:
            run, cleanup = podman(tmp, archive)
            peers.append(Command("podman run --rm --network none", run))
        times = {t.name: [] for t in [berth] + peers}
        for i in range(WARM_UP + max(args.runs, args.peer_runs)):
            keep = i >= WARM_UP
            for tool in [berth] + peers:
                limit = args.runs if tool is berth else args.peer_runs
                if i < WARM_UP + limit:
                    dt = tool.once(keep)
                    if keep:
                        times[tool.name].append(dt)
        pss = berth.monitor_pss()
        bt = times[berth.name]
        print("create+start+wait+rm of `true` in busybox, median ms (berth n=%d, peers n=%d, taking turns):"
              % (len(bt), args.peer_runs))
        print("  %-32s %7.1f  (p10 %.1f, p90 %.1f)  target <= 25%s" % (
            berth.name, ms(bt), sorted(bt)[len(bt) // 10] * 1000, sorted(bt)[len(bt) * 9 // 10] * 1000,
            ""))
        print("    " + ", ".join("%s %.1f" % (k, ms(v)) for k, v in berth.phases.items()))
        for p in peers:
            peer = ms(times[p.name])
            print("  %-32s %7.1f  berth/peer = %.2fx" % (p.name, peer, ms(bt) / peer))
        print("monitor PSS: %.0f kB median over 5 running containers (first %d kB; %.0f kB once the engine's "
              "forkserver is gone); forkserver %d kB; target <= 5120 kB" % (
                  pss["median"], pss["first"], pss["without_engine"], pss["forkserver"]))
        with open("/proc/loadavg") as f:
            print("load average at the end: %s%s" % (" ".join(f.read().split()[:3]),
                                                     "; nice %d" % args.nice if args.nice else ""))
    finally:
        if berth is not None:
            berth.close()
        if cleanup:
            subprocess.run(cleanup, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
