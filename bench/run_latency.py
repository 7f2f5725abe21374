#!/usr/bin/env python3
"""End-to-end latency through berthd, in one invocation:

- `berth run --rm IMAGE true`, `docker -H unix://... run --rm IMAGE true` (both against berthd)
  `podman run --rm --network none IMAGE true` (its own storage, runc) and, when dockerd is
  installed (Debian's docker.io), `docker run --rm --network none IMAGE true` against a dockerd
  started here (own data root, exec root and socket; no iptables, no bridge), interleaved, median
  of N each, as ratios. berth runs as a provisioned host runs it: the engine bundle
  (provision/bundle.py) extracted and byte-compiled, started by the installed wrapper script
  (`/usr/bin/python3 -I -S -c ...`); also under CentOS 7's Python 3.6 when the
  pyenv one is there, and as this checkout's venv console script (editable install: its site
  hooks are a development cost, shown for comparison);
- `berth ps`, the same ways;
- 50 concurrent clients doing `ps` (GET /containers/json) and `inspect` against berthd: p50/p99;
- berthd's idle RSS.

    sudo .venv/bin/python bench/run_latency.py [--runs 30] [--clients 50] [--skip podman|dockerd|docker]

Targets: berth run --rm true <= 50 ms median; berth ps <= 30 ms; idle RSS <= 40 MB.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runtime.cli.client import Client  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.api.conftest import DOCKER, Berthd  # noqa: E402

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PY36 = "/root/.pyenv/versions/3.6.15/bin/python3.6"
DOCKERD = shutil.which("dockerd")  # CentOS 7's python3 is 3.6
INSTALLED = "berth (installed bundle)"
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def ms(xs):
    """Median of seconds, in ms."""
    return statistics.median(xs) * 1000


def pct(xs, p):
    """The p-th percentile of seconds, in ms."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] * 1000


FAILURES = {}  # type: dict
CPU = {}  # type: dict


def timed(argv, env=None, cwd=None, retries=0, key=None):
    """Seconds to run argv (which must succeed; a peer's rare failure may be retried). The
    client's own CPU time (user + sys) is collected under key: unlike wall time it does not
    depend on how loaded the machine is."""
    for _attempt in range(retries + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
        elapsed = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode == 0:
            if key:
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                CPU.setdefault(key, []).append(cpu)
            return elapsed
        FAILURES[argv[0]] = FAILURES.get(argv[0], 0) + 1
    raise SystemExit("%s failed (%d): %s" % (" ".join(argv), res.returncode, res.stderr.decode()))


def rss_kb(pid):
    """VmRSS of a process, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def concurrent_clients(host, names, clients, per_client):
    """Latencies of `clients` threads each doing per_client alternating list/inspect requests."""
    lat = []
    lock = threading.Lock()
    start = threading.Event()

    def worker(k):
        c = Client(host)
        mine = []
        start.wait()
        for i in range(per_client):
            t = time.perf_counter()
            if i % 2:
                c.get("/containers/%s/json" % names[(k + i) % len(names)])
            else:
                c.get("/containers/json", {"all": True})
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - t0


class Dockerd(object):
    """A dockerd of our own (notes/peers.md: by hand, no iptables, no bridge), ended by PID."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "dockerd")
        os.makedirs(self.dir)
        self.host = "unix://" + os.path.join(self.dir, "docker.sock")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [DOCKERD, "--iptables=false", "--bridge=none", "--data-root", os.path.join(self.dir, "root"),
             "--exec-root", os.path.join(self.dir, "exec"), "--pidfile", os.path.join(self.dir, "pid"),
             "-H", self.host], stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while subprocess.run([DOCKER, "-H", self.host, "version"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("dockerd did not start: see %s/log" % self.dir)
            time.sleep(0.2)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def install_bundle(tmp):
    """The engine bundle as provision installs it: extracted, byte-compiled by each python that
    runs it, started through the installed wrapper script (provision/bundle.py `wrapper`).
    Returns the argv prefixes that run `berth`, by label."""
    from provision import bundle
    b = bundle.build()
    pyz = os.path.join(tmp, b.filename)
    with open(pyz, "wb") as f:
        f.write(b.data)
    lib = os.path.join(tmp, "lib")
    subprocess.run([HOST_PYTHON, "-m", "zipfile", "-e", pyz, lib], check=True)
    pythons = {INSTALLED: HOST_PYTHON}
    if os.path.exists(PY36):
        pythons["berth (installed, Python 3.6)"] = PY36
    out = {}
    for label, py in pythons.items():
        subprocess.run([py, "-m", "compileall", "-q", lib], check=True, stdout=subprocess.DEVNULL)
        script = bundle.wrapper("berth").decode().replace(bundle.PYTHON, py)
        path = os.path.join(tmp, "berth-" + os.path.basename(py))
        with open(path, "w") as f:
            f.write(script.replace(bundle.LIB_DIR + "/current", lib))
        os.chmod(path, 0o755)
        out[label] = [path]
    out["berth (venv console script)"] = [BERTH]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=20)
    ap.add_argument("--skip", action="append", default=[], help="docker, dockerd or podman")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-bench-lat-", dir="/tmp")
    d = Berthd(os.path.join(tmp, "berthd"))
    dockerd = None
    pstore, prun = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    podman = ["podman", "--root", pstore, "--runroot", prun, "--cgroup-manager", "cgroupfs",
              "--events-backend", "none", "--runtime", "runc"]
    # As an installed package is: byte-compiled (this sandbox sets PYTHONDONTWRITEBYTECODE,
    # which would make every client start compile its modules from source).
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "runtime")], check=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        d.start()
        with open(archive, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        env = dict(os.environ, BERTH_HOST=d.host, DOCKER_CONFIG=os.path.join(tmp, "docker-config"))
        os.makedirs(env["DOCKER_CONFIG"])
        with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
            f.write("{}\n")  # podman reads it too
        berths = install_bundle(tmp)
        cmds = {k: argv + ["run", "--rm", "busybox", "true"] for k, argv in berths.items()}
        if "docker" not in args.skip:
            cmds["docker run --rm (berthd)"] = [DOCKER, "-H", d.host, "run", "--rm", "busybox", "true"]
        if DOCKERD and "dockerd" not in args.skip:
            dockerd = Dockerd(tmp)
            subprocess.run([DOCKER, "-H", dockerd.host, "load", "-q", "-i", archive], check=True,
                           stdout=subprocess.DEVNULL)
            cmds["docker run --rm --network none (dockerd)"] = [
                DOCKER, "-H", dockerd.host, "run", "--rm", "--network", "none", "busybox", "true"]
        elif not DOCKERD:
            print("(dockerd is not installed: apt-get install docker.io to compare with it)")
        if "podman" not in args.skip:
            subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                            "containers-storage:[overlay@%s+%s]localhost/busybox:latest" % (pstore, prun)],
                           check=True, stdout=subprocess.DEVNULL)
            cmds["podman run --rm --network none"] = podman + ["run", "--rm", "--network", "none"] + \
                PODMAN_ULIMITS + ["localhost/busybox:latest", "true"]
        times = {k: [] for k in cmds}
        for i in range(args.runs + 2):  # 2 warm-up rounds, interleaved so load hits all alike
            for name, argv in cmds.items():
                t = timed(argv, env, ROOT, retries=0 if name.startswith("berth") else 2,
                          key=name if i >= 2 else None)
                if i >= 2:
                    times[name].append(t)
        base = ms(times[INSTALLED])
        print("run --rm IMAGE true, median of %d (ms): wall, then the client's own CPU" % args.runs)
        for name, xs in times.items():
            print("  %-38s %7.1f   (%.2fx berth)   client CPU %5.1f" % (name, ms(xs), ms(xs) / base,
                                                                       ms(CPU[name])))
        for name in cmds:
            if not name.startswith("berth"):
                print("  berth is %.2fx faster than %s" % (ms(times[name]) / base, name))
        if FAILURES:
            print("  (failed and retried: %s)" % ", ".join("%s %d" % kv for kv in FAILURES.items()))

        ps = {k: (argv + ["ps"], None) for k, argv in berths.items()}
        ps["(%s -I -S -c pass)" % HOST_PYTHON] = ([HOST_PYTHON, "-S", "-I", "-c", "pass"], None)
        if "docker" not in args.skip:
            ps["(docker -H ... ps)"] = ([DOCKER, "-H", d.host, "ps"], None)
        ps_times = {k: [] for k in ps}
        for _ in range(args.runs):
            for name, (argv, cwd) in ps.items():
                ps_times[name].append(timed(argv, env, cwd, key="ps " + name))
        print("ps, median of %d (ms): wall, client CPU" % args.runs)
        for name, xs in ps_times.items():
            print("  %-42s %7.1f   %5.1f" % (name, ms(xs), ms(CPU["ps " + name])))

        names = []
        for k in range(5):
            out = subprocess.run([BERTH, "run", "-d", "--name", "bench%d" % k, "busybox", "sleep", "300"],
                                 env=env, stdout=subprocess.PIPE, check=True)
            names.append(out.stdout.decode().strip())
        lat, wall = concurrent_clients(d.host, names, args.clients, args.per_client)
        print("%d concurrent clients x %d requests (ps/inspect alternating, 5 containers):"
              % (args.clients, args.per_client))
        print("  p50 %.1f ms   p99 %.1f ms   %.0f requests/s" % (pct(lat, 50), pct(lat, 99), len(lat) / wall))
        time.sleep(2)
        print("berthd idle RSS: %.1f MB (pid %d)" % (rss_kb(d.proc.pid) / 1024.0, d.proc.pid))
    finally:
        d.cleanup()
        if dockerd is not None:
            dockerd.close()
        if "podman" not in args.skip:
            subprocess.run(podman + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
