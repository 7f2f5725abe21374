#!/usr/bin/env python3
"""Image build, cold and fully cached, `berth build` (against a berthd started here) and
`podman build` (its own storage, runc, --network none), taking turns in one invocation:

    FROM a local busybox base; COPY of 2,000 small files; 2 RUN; ENV; CMD

cold = `--no-cache` (every step runs), cached = the same build again (every step a cache hit).
Median of N each, and the ratios berth/podman; beside wall time, the CPU seconds (client,
its children, and berthd for berth), which depend far less on the machine's load. berth is
the engine bundle as provision installs it (bench/benchlib.py's install: byte-compiled, run
by the wrapper script).

    sudo .venv/bin/python bench/build.py [--runs 5] [--files 2000] [--skip podman]

Targets (issue 16): cold <= 0.5x podman; cached <= 0.3 s.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.api.conftest import Berthd  # noqa: E402

BASE = "localhost/bench-busybox:latest"
DOCKERFILE = """\
FROM %s
COPY files/ /app/files/
RUN find /app/files -type f | wc -l > /app/count
RUN echo built > /app/built
ENV BENCH=1
CMD ["cat", "/app/count"]
""" % BASE


def make_context(d, files):
    """The context dir: the Dockerfile and `files` small files in 100 dirs (100 B - 2 KiB)."""
    per = max(1, files // 100)
    n = 0
    for i in range(100):
        sub = os.path.join(d, "files", "d%02d" % i)
        os.makedirs(sub)
        for j in range(per):
            if n == files:
                break
            with open(os.path.join(sub, "f%03d.txt" % j), "w") as f:
                f.write("x" * (100 + (i * j) % 1948))
            n += 1
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    return d


def _proc_cpu(pid):
    """CPU seconds (user + system) a live process has used, from /proc/PID/stat."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv, env=None, expect=None, daemon_pid=0):
    """(wall seconds, CPU seconds) to run argv, which must succeed (and print expect, when
    given). CPU: the command and its reaped children, plus daemon_pid's (berthd) meanwhile;
    unlike wall time it hardly depends on how loaded the machine is."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    daemon_before = _proc_cpu(daemon_pid)
    t = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
           + _proc_cpu(daemon_pid) - daemon_before)
    if res.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(argv), res.returncode,
                                                 res.stderr.decode()[-2000:]))
    if expect is not None and expect not in res.stdout.decode():
        raise SystemExit("%s: %r not in its output:\n%s" % (" ".join(argv), expect,
                                                            res.stdout.decode()[-2000:]))
    return elapsed, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--skip", action="append", default=[], help="podman")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-bench-build-", dir="/tmp")
    d = Berthd(os.path.join(tmp, "berthd"))
    pstore, prun = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    podman = ["podman", "--root", pstore, "--runroot", prun, "--cgroup-manager", "cgroupfs",
              "--events-backend", "none"]
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar"), ref=BASE))
        ctx = make_context(os.path.join(tmp, "ctx"), args.files)
        d.start()
        with open(archive, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        env = dict(os.environ, BERTH_HOST=d.host)
        berth = [benchlib.install(tmp, benchlib.pythons(["host"]))["host"]["berth"]]  # as installed
        tools = {"berth": (berth + ["build", "-t", "bench:1"], ["--no-cache"], env,
                           "---> Using cache")}
        if "podman" not in args.skip:
            subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                            "containers-storage:[overlay@%s+%s]%s" % (pstore, prun, BASE)],
                           check=True, stdout=subprocess.DEVNULL)
            tools["podman"] = (podman + ["build", "--runtime", "runc", "--network", "none"]
                               + benchlib.PODMAN_ULIMITS + ["-t", "bench:1"], ["--no-cache"], None,
                               "Using cache")
        times = {(name, kind): [] for name in tools for kind in ("cold", "cached")}
        cpus = {k: [] for k in times}
        daemon = {"berth": d.proc.pid}
        for argv, _, tenv, _ in tools.values():  # warm-up: base image, page cache
            timed(argv + [ctx], tenv)
        for _ in range(args.runs):
            for name, (argv, cold_flags, tenv, hit) in tools.items():
                for kind, extra, expect in (("cold", cold_flags, None), ("cached", [], hit)):
                    wall, cpu = timed(argv + extra + [ctx], tenv, expect, daemon.get(name, 0))
                    times[(name, kind)].append(wall)
                    cpus[(name, kind)].append(cpu)
        med = {k: statistics.median(v) for k, v in times.items()}
        print("build of the 6-step Dockerfile (COPY of %d files), median of %d, seconds "
              "(load average %s):" % (args.files, args.runs,
                                      " ".join(open("/proc/loadavg").read().split()[:3])))
        for (name, kind), value in sorted(med.items()):
            print("  %-8s %-7s %6.3f  CPU %6.3f  (all: %s)" % (
                name, kind, value, statistics.median(cpus[(name, kind)]),
                " ".join("%.3f" % x for x in times[(name, kind)])))
        if "podman" in tools:
            cold = med[("berth", "cold")] / med[("podman", "cold")]
            cached = med[("berth", "cached")] / med[("podman", "cached")]
            print("  berth/podman: cold %.2fx (target <= 0.5x), cached %.2fx" % (cold, cached))
        print("  berth cached %.3f s (target <= 0.3 s)" % med[("berth", "cached")])
    finally:
        d.cleanup()
        if "podman" not in args.skip:
            subprocess.run(podman + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
