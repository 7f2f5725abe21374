#!/usr/bin/env python3
"""End-to-end latency of `run --rm IMAGE true` through berthd as a provisioned host runs it, beside
podman and dockerd, in one invocation (issue 20's first target):

- berthd and `berth` as installed (the engine bundle extracted, byte-compiled, started by the
  installed -I -S wrapper scripts) on the machine's python3 and on CentOS 7's Python 3.6 (the
  pyenv one), each berthd in a network namespace this script makes, with its default bridge;
  seccomp (dockerd's default profile) and the device rules on, as for any container;
- `berth run --rm --network none busybox true` and `berth run --rm busybox true` (the default
  bridge: a veth, an address, the NAT rules), the docker CLI against the host-python berthd;
- `podman run --rm` (its own storage, runc) with `--network none` and with its default network,
  and `docker run --rm` against a dockerd from Debian's packages (benchlib.Dockerd) with
  `--network none` and on its docker0 bridge, each in a namespace of its own;
- the commands take turns (2 warm-up rounds), median of N each, ratios to berth's;
- then `exec C true` into a running container of each (berthd, dockerd, podman), taking turns;
- then `berth ps` and 50 concurrent API clients (ps/inspect) against the host-python berthd,
  and its idle RSS.

    sudo .venv/bin/python bench/run_latency.py [--runs 30] [--block N] [--python host --python 3.6]
                                               [--skip podman|dockerd|docker|bridge|exec]

Targets: --network none <= 30 ms (machine's python), <= 40 ms (Python 3.6); default bridge
<= 60 ms; beside podman and dockerd. The machine's own namespace, links and iptables are never
touched.
"""

import argparse
import os
import resource
import subprocess
import tempfile
import threading
import time

import benchlib
from benchlib import DOCKER, ms

from runtime.cli.client import Client
from tests import imagefactory

TARGETS = {("host", "none"): 30, ("3.6", "none"): 40, ("host", "bridge"): 60, ("3.6", "bridge"): 60}
FAILURES = {}  # type: dict
CPU = {}  # type: dict


def pct(xs, p):
    """The p-th percentile of seconds, in ms."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] * 1000


def timed(argv, env=None, retries=0, key=None):
    """Seconds to run argv (which must succeed; a peer's rare failure may be retried). The
    client's own CPU time (user + sys) is kept under key: unlike wall time it does not depend on
    how loaded the machine is."""
    for _attempt in range(retries + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        elapsed = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode == 0:
            if key:
                CPU.setdefault(key, []).append(after.ru_utime - before.ru_utime + after.ru_stime
                                               - before.ru_stime)
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


def exec_latency(args, trees, pys, envs, env, dockerd, podman):
    """`exec C true` into a running container (`sleep`, --network none) of each berthd, of the
    dockerd and of podman, taking turns: median of args.runs each, ratios to berth's."""
    def detached(argv, denv):
        return subprocess.run(argv, env=denv, stdout=subprocess.PIPE, check=True).stdout.decode().strip()

    cmds = {}
    for tool, inst in trees:
        for label in pys:
            key = label if tool == "berth" else tool + label
            b = inst[label]["berth"]
            cid = detached([b, "run", "-d", "--network", "none", "busybox", "sleep", "300"], envs[key])
            cmds["%s (python %s)" % (tool, label)] = ([b, "exec", cid, "true"], envs[key])
    if dockerd is not None:
        cid = detached([DOCKER, "-H", dockerd.host, "run", "-d", "--network", "none", "busybox", "sleep",
                        "300"], env)
        cmds["docker -> dockerd"] = ([DOCKER, "-H", dockerd.host, "exec", cid, "true"], env)
    if podman is not None:
        cid = detached(podman + ["run", "-d", "--network", "none"] + benchlib.PODMAN_ULIMITS +
                       ["localhost/busybox:latest", "sleep", "300"], env)
        cmds["podman"] = (podman + ["exec", cid, "true"], env)
    times = {k: [] for k in cmds}
    for i in range(args.runs + 2):
        for name, (argv, denv) in cmds.items():
            t = timed(argv, denv, retries=0 if name.startswith("berth") else 2)
            if i >= 2:
                times[name].append(t)
    ref = times[next(iter(times))]
    print("exec C true into a running container, median of %d (ms), taking turns; %s"
          % (args.runs, benchlib.load()))
    for name, xs in times.items():
        print("  %-44s %8.1f %7.2fx" % (name, ms(xs), ms(xs) / ms(ref)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--python", action="append", default=[], help="host or 3.6 (default: both)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=20)
    ap.add_argument("--skip", action="append", default=[], help="docker, dockerd, podman, bridge or exec")
    ap.add_argument("--block", type=int, default=1, metavar="N",
                    help="each command runs N times back to back in its turn (a script of runs: "
                    "the next run comes while the daemon still cleans up after the last)")
    ap.add_argument("--base", metavar="TREE", help="also berthd + berth of this checkout (A/B), "
                    "--network none")
    args = ap.parse_args()
    pys = benchlib.pythons(args.python or ["host", "3.6"])
    nets = ["none"] + ([] if "bridge" in args.skip else ["bridge"])
    tmp = tempfile.mkdtemp(prefix="berth-bench-lat-", dir="/tmp")
    namespaces, daemons, peers, podman_reset = [], {}, [], None
    dockerd = podman = None
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-compiled, cached
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        installed = benchlib.install(tmp, pys)
        trees = [("berth", installed)]
        if args.base:
            base_tmp = os.path.join(tmp, "base")
            os.makedirs(base_tmp)
            trees.append(("berth base", benchlib.install(base_tmp, pys, os.path.abspath(args.base))))
        env = dict(os.environ, DOCKER_CONFIG=os.path.join(tmp, "docker-config"))
        os.makedirs(env["DOCKER_CONFIG"])
        with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
            f.write("{}\n")
        cmds, envs = {}, {}
        for tool, inst in trees:
            for label in pys:
                ns = benchlib.Netns("blat%s%s%d" % (len(tool), label.replace(".", ""), os.getpid()))
                namespaces.append(ns)
                key = label if tool == "berth" else tool + label
                d = benchlib.InstalledBerthd(os.path.join(tmp, "daemon-" + key.replace(" ", "-")),
                                             inst[label]["berthd"], netns=ns.name)
                daemons[key] = d
                d.start()
                with open(archive, "rb") as f:
                    assert d.api("POST", "/images/load", body=f.read())[0] == 200
                envs[key] = dict(env, BERTH_HOST=d.host)
                for net in (nets if tool == "berth" else ["none"]):
                    flag = ["--network", "none"] if net == "none" else []
                    cmds[(tool, label, net)] = [inst[label]["berth"], "run", "--rm"] + flag + \
                        ["busybox", "true"]
        first = list(pys)[0]
        if "docker" not in args.skip:
            cmds[("docker CLI -> berthd", first, "none")] = [
                DOCKER, "-H", daemons[first].host, "run", "--rm", "--network", "none", "busybox", "true"]
        if "dockerd" not in args.skip and benchlib.docker_pkg():
            ns = benchlib.Netns("blatd%d" % os.getpid())
            namespaces.append(ns)
            dockerd = benchlib.Dockerd(os.path.join(tmp, "dockerd"), netns=ns)
            peers.append(dockerd)
            dockerd.start()
            assert dockerd.docker("load", "-q", "-i", archive).returncode == 0
            for net in nets:
                flag = ["--network", "none"] if net == "none" else []
                cmds[("docker -> dockerd", "", net)] = [DOCKER, "-H", dockerd.host, "run", "--rm"] + flag + \
                    ["busybox", "true"]
        elif "dockerd" not in args.skip:
            print("(no dockerd: no docker.io/containerd/runc .debs in %s)" % benchlib.DOCKER_DEBS)
        if "podman" not in args.skip:
            ns = benchlib.Netns("blatp%d" % os.getpid())
            namespaces.append(ns)
            podman, podman_reset = benchlib.podman(tmp, archive, netns=ns)
            for net in nets:
                flag = ["--network", "none"] if net == "none" else []
                cmds[("podman", "", net)] = podman + ["run", "--rm"] + flag + benchlib.PODMAN_ULIMITS + \
                    ["localhost/busybox:latest", "true"]
        times = {k: [] for k in cmds}
        before = benchlib.load()
        block = max(1, args.block)
        for i in range(-(-args.runs // block) + 2):  # 2 warm-up rounds, taking turns so load hits all alike
            for key, argv in cmds.items():
                denv = envs.get(key[1] if key[0] == "berth" else key[0] + key[1], env)
                for _ in range(block):
                    t = timed(argv, denv, retries=0 if key[0].startswith("berth") else 2,
                              key=key if i >= 2 else None)
                    if i >= 2:
                        times[key].append(t)
        print("run --rm busybox true, median of %d (ms), taking turns%s; %s before, %s after"
              % (len(times[next(iter(times))]), " in blocks of %d" % block if block > 1 else "", before,
                 benchlib.load()))
        print("  %-44s %8s %8s %10s %8s" % ("", "wall", "target", "client CPU", "vs berth"))
        for key, xs in times.items():
            tool, label, net = key
            name = "%s%s --network %s" % (tool, " (python %s)" % label if label else "", net)
            ref = times.get(("berth", first, net))
            target = TARGETS.get((label, net)) if tool.startswith("berth") else None
            print("  %-44s %8.1f %8s %10.1f %7.2fx%s" % (
                name, ms(xs), "<= %d" % target if target else "", ms(CPU[key]), ms(xs) / ms(ref),
                "" if not target else ("  ok" if ms(xs) <= target else "  MISSED")))
        if FAILURES:
            print("  (failed and retried: %s)" % ", ".join("%s %d" % kv for kv in FAILURES.items()))

        d = daemons[first]
        berth = installed[first]["berth"]
        ps = {"berth ps": ([berth, "ps"], envs[first]), "berth ps -a": ([berth, "ps", "-a"], envs[first]),
              "(%s -I -S -c pass)" % pys[first]: ([pys[first], "-S", "-I", "-c", "pass"], envs[first])}
        for tool, inst in trees[1:]:
            ps[tool + " ps"] = ([inst[first]["berth"], "ps"], envs[tool + first])
        ps_times = {k: [] for k in ps}
        for _ in range(args.runs):
            for name, (argv, penv) in ps.items():
                ps_times[name].append(timed(argv, penv, key="ps " + name))
        print("ps, python %s, median of %d (ms): wall, client CPU; %s" % (first, args.runs, benchlib.load()))
        for name, xs in ps_times.items():
            print("  %-42s %7.1f   %5.1f" % (name, ms(xs), ms(CPU["ps " + name])))

        if "exec" not in args.skip:
            exec_latency(args, trees, pys, envs, env, dockerd, podman)

        names = []
        for k in range(5):
            out = subprocess.run([berth, "run", "-d", "--network", "none", "--name", "bench%d" % k, "busybox",
                                  "sleep", "300"], env=envs[first], stdout=subprocess.PIPE, check=True)
            names.append(out.stdout.decode().strip())
        lat, wall = concurrent_clients(d.host, names, args.clients, args.per_client)
        print("%d concurrent clients x %d requests (ps/inspect alternating, 5 containers); %s:"
              % (args.clients, args.per_client, benchlib.load()))
        print("  p50 %.1f ms   p99 %.1f ms   %.0f requests/s" % (pct(lat, 50), pct(lat, 99), len(lat) / wall))
        time.sleep(2)
        print("berthd idle RSS: %.1f MB (pid %d)" % (rss_kb(d.proc.pid) / 1024.0, d.proc.pid))
    finally:
        for d in daemons.values():
            d.cleanup()
        for p in peers:
            p.cleanup()
        if podman_reset:
            subprocess.run(podman_reset, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for ns in namespaces:
            ns.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
