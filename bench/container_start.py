#!/usr/bin/env python3
"""Container start-to-exit latency: create + start + wait + rm of `true` in a busybox image,
with berth's engine (in-process, as the daemon will call it), beside `crun run` and `runc run`
of the same rootfs and `podman run --rm --network none` of the same image, in one invocation;
plus the PSS a running container's monitor adds. Prints medians and ratios.

    sudo .venv/bin/python bench/container_start.py [--runs 50] [--peer-runs 20] [--nice -20]

Target (issue 4): berth <= 25 ms median; monitor <= 5 MB PSS.
Machine quirks (docs/peers.md): crun refuses the hybrid cgroup layout, so it runs in a private
mount namespace with /sys/fs/cgroup/unified unmounted; podman needs explicit ulimits here.
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

from runtime.container import cgroups  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.engine.conftest import make_engine  # noqa: E402

PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def ms(xs):
    """Median of seconds, in ms."""
    return statistics.median(xs) * 1000


def bench_berth(tmp, archive, runs):
    """(per-run totals, {phase: per-run times}, monitor PSS figures) for berth's engine."""
    parent = "berth-bench-" + uuid.uuid4().hex[:8]
    eng = make_engine(os.path.join(tmp, "berth"), {"cgroup-parent": parent})
    with open(archive, "rb") as f:
        eng.image_load(f)
    phases = {"create": [], "start": [], "wait": [], "rm": []}
    totals = []
    try:
        for i in range(runs + 3):  # 3 warm-up runs (the forkserver starts on the first)
            t0 = time.perf_counter()
            cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                        "HostConfig": {"NetworkMode": "none"}})["Id"]
            t1 = time.perf_counter()
            eng.container_start(cid)
            t2 = time.perf_counter()
            code = eng.container_wait(cid)["StatusCode"]
            t3 = time.perf_counter()
            eng.container_remove(cid)
            t4 = time.perf_counter()
            assert code == 0
            if i >= 3:
                totals.append(t4 - t0)
                for k, a, b in (("create", t0, t1), ("start", t1, t2), ("wait", t2, t3), ("rm", t3, t4)):
                    phases[k].append(b - a)
        pss = monitor_pss(eng)
    finally:
        for c in eng.container_list(all=True):
            eng.container_remove(c["Id"], force=True)
        eng.close()
        for d in {m + "/" + parent for m in cgroups.v1_mounts().values()}:
            if os.path.isdir(d):
                os.rmdir(d)
    return totals, phases, pss


def _pss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def monitor_pss(eng, n=5):
    """PSS (kB) of the monitors of n running containers, with the engine's forkserver alive."""
    ids = []
    for _ in range(n):
        cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "1000"]})["Id"]
        eng.container_start(cid)
        ids.append(cid)
    time.sleep(0.3)
    mons = [eng.containers.get(c).started()["MonitorPid"] for c in ids]
    one = _pss_kb(mons[0])
    each = [_pss_kb(p) for p in mons]
    server = eng.spawner._proc.pid
    out = {"monitor_pss_kb_median": statistics.median(each), "first_monitor_pss_kb": one,
           "forkserver_pss_kb": _pss_kb(server)}
    eng.close()  # the engine's forkserver goes; the monitors now share pages only with each other
    time.sleep(0.2)
    out["monitor_pss_kb_without_engine"] = statistics.median(_pss_kb(p) for p in mons)
    for c in ids:
        eng.container_remove(c, force=True)
    return out


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


INNER = """
import subprocess, sys, time, json
subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
cmd, runs, out = json.loads(sys.argv[1]), int(sys.argv[2]), []
for i in range(runs + 2):
    t = time.perf_counter()
    subprocess.run([a.replace("{i}", str(i)) for a in cmd], check=True)
    if i >= 2:
        out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def in_private_ns(cmd, runs):
    """Time cmd ("{i}" = run number) in a private mount namespace without the cgroup2 mount,
    where crun accepts this machine's hybrid cgroup layout."""
    res = subprocess.run(["unshare", "-m", sys.executable, "-c", INNER, json.dumps(cmd), str(runs)],
                         stdout=subprocess.PIPE, check=True)
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


def bench_crun(b, runs):
    return in_private_ns(["crun", "run", "--bundle", b, "bench-crun-%d-{i}" % os.getpid()], runs)


def bench_runc(b, runs):
    out = []
    for i in range(runs + 2):
        t = time.perf_counter()
        subprocess.run(["runc", "run", "--bundle", b, "bench-runc-%d-%d" % (os.getpid(), i)], check=True)
        if i >= 2:
            out.append(time.perf_counter() - t)
    return out


def bench_podman(tmp, archive, runs):
    """podman run --rm --network none with its own storage under tmp."""
    store, run = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    base = ["podman", "--root", store, "--runroot", run, "--cgroup-manager", "cgroupfs",
            "--events-backend", "none"]
    subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                    "containers-storage:[overlay@%s+%s]localhost/bench-busybox:latest" % (store, run)],
                   check=True, stdout=subprocess.DEVNULL)
    cmd = base + ["run", "--rm", "--network", "none"] + PODMAN_ULIMITS + [
        "localhost/bench-busybox:latest", "true"]
    try:
        return in_private_ns(cmd, runs)  # podman runs crun
    finally:
        subprocess.run(base + ["system", "reset", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--peer-runs", type=int, default=20)
    ap.add_argument("--skip", action="append", default=[], help="crun, runc or podman")
    ap.add_argument("--no-warm-up", action="store_true",
                    help="without the early no-op cgroup move (to see what it saves)")
    ap.add_argument("--nice", type=int, default=0, metavar="N",
                    help="run everything (berth and the peers alike: children inherit it) at this "
                         "nice value, e.g. -20, so a loaded machine disturbs less (SCHED_FIFO would "
                         "not do: an RT task cannot join a cpu cgroup without rt_runtime_us)")
    args = ap.parse_args()
    if args.nice:
        os.nice(args.nice)
    if args.no_warm_up:
        cgroups.CgroupV1.warm_up = lambda self: None
    tmp = tempfile.mkdtemp(prefix="berth-bench-", dir="/tmp")
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        totals, phases, pss = bench_berth(tmp, archive, args.runs)
        b = bundle(tmp)
        peers = {}
        if "crun" not in args.skip:
            peers["crun run"] = bench_crun(b, args.peer_runs)
        if "runc" not in args.skip:
            peers["runc run"] = bench_runc(b, args.peer_runs)
        if "podman" not in args.skip:
            peers["podman run --rm --network none"] = bench_podman(tmp, archive, args.peer_runs)
        berth = ms(totals)
        print("create+start+wait+rm of `true` in busybox, median ms (berth n=%d, peers n=%d):"
              % (args.runs, args.peer_runs))
        print("  %-34s %7.1f  (p10 %.1f, p90 %.1f)  target <= 25" % (
            "berth engine", berth, sorted(totals)[len(totals) // 10] * 1000,
            sorted(totals)[len(totals) * 9 // 10] * 1000))
        print("    " + ", ".join("%s %.1f" % (k, ms(v)) for k, v in phases.items()))
        for name, xs in peers.items():
            print("  %-34s %7.1f  berth/peer = %.2fx" % (name, ms(xs), berth / ms(xs)))
        print("monitor PSS: %.0f kB median over 5 running containers (first %d kB; %.0f kB once the "
              "engine's forkserver is gone); forkserver %d kB (target <= 5120 kB)" % (
                  pss["monitor_pss_kb_median"], pss["first_monitor_pss_kb"],
                  pss["monitor_pss_kb_without_engine"], pss["forkserver_pss_kb"]))
        with open("/proc/loadavg") as f:
            print("load average at the end: %s%s" % (" ".join(f.read().split()[:3]),
                                                     "; nice %d" % args.nice if args.nice else ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
