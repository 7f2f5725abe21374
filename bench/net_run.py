#!/usr/bin/env python3
"""Bridge networking end to end, in one invocation, inside a network namespace this script makes
(the machine's own namespace, links and iptables are never touched):

1. `berth run --rm busybox true` on the default bridge (berthd with its berth0, NAT rules; the
   client as a provisioned host runs it: the installed bundle, bench/benchlib.py),
   beside `berth run --rm --network none` (the same daemon: what the bridge costs),
   `podman run --rm` with its default network (CNI bridge + iptables, here) and
   `docker run --rm` against a dockerd with its docker0 bridge, iptables and userland proxy
   (Debian's docker.io 20.10), interleaved, median of N each, with ratios;
2. 50 containers started on one user network, then every one reaching every other by name
   (one `exec` per container pinging the 49 others by name): start time, check time, failures.

    sudo .venv/bin/python bench/net_run.py [--runs 30] [--many 50] [--skip podman|dockerd|many]
                                           [--dockerd-root DIR]

dockerd is not installed here: --dockerd-root names Debian's docker.io, containerd and tini
packages unpacked with `dpkg-deb -x` (default: fetched once with `apt-get download` and
unpacked into /var/cache/berth-bench/dockerd-debs; nothing is installed, no service started).
dockerd runs inside the bench's namespace with its bridge and iptables on (as installed), its
own data root, exec root, pidfile, socket and cgroup parent, and its own containerd.

Target (issue 13): bridge `run --rm` <= 60 ms median and <= 0.3x podman's in the same run.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.join(ROOT, "bench"))

import benchlib  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.api.conftest import DOCKER, Berthd  # noqa: E402

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")
DEBS_CACHE = "/var/cache/berth-bench/dockerd-debs"
DOCKER_DEBS = ("docker.io", "containerd", "tini")
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def ms(xs):
    return statistics.median(xs) * 1000


def dockerd_root(given):
    """A dir holding usr/sbin/dockerd and usr/bin/containerd: given, or Debian's packages
    fetched and unpacked once into DEBS_CACHE."""
    if given:
        return given
    root = os.path.join(DEBS_CACHE, "root")
    if os.path.exists(os.path.join(DEBS_CACHE, ".complete")):
        return root
    os.makedirs(os.path.dirname(DEBS_CACHE), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(DEBS_CACHE))
    subprocess.run(["apt-get", "download"] + list(DOCKER_DEBS), cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for deb in sorted(f for f in os.listdir(tmp) if f.endswith(".deb")):
        subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, deb), os.path.join(tmp, "root")], check=True)
    open(os.path.join(tmp, ".complete"), "w").close()
    shutil.rmtree(DEBS_CACHE, ignore_errors=True)
    os.rename(tmp, DEBS_CACHE)
    return root


def _neigh_overflows():
    """How many 'neighbor table overflow' lines the kernel log has (0 if it cannot be read)."""
    r = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode("utf-8", "replace").count("neighbor table overflow")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--many", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=5, help="execs at a time in the name check")
    ap.add_argument("--skip", action="append", default=[])
    ap.add_argument("--dockerd-root", help="docker.io/containerd/tini unpacked (default: fetched into %s)"
                    % DEBS_CACHE)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-bench-net-", dir="/tmp")
    ns = "bnet%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    inside = ["nsenter", "--net=/run/netns/" + ns, "--"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "runtime")], check=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    d = Berthd(os.path.join(tmp, "berthd"), netns=ns)
    dockerd = None
    dockerd_cgroup = "berth-bench-dockerd-%d" % os.getpid()
    pstore, prun = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    podman = inside + ["podman", "--root", pstore, "--runroot", prun, "--tmpdir", os.path.join(tmp, "ptmp"),
                       "--cgroup-manager", "cgroupfs",
                       "--events-backend", "none", "--runtime", "runc"]
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        d.start()
        with open(archive, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        env = dict(os.environ, BERTH_HOST=d.host, DOCKER_CONFIG=os.path.join(tmp, "docker-config"))
        os.makedirs(env["DOCKER_CONFIG"])
        with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
            f.write("{}\n")
        installed = [benchlib.install(tmp, benchlib.pythons(["host"]))["host"]["berth"]]  # as provisioned
        cmds = {"berth run --rm (bridge)": installed + ["run", "--rm", "busybox", "true"],
                "berth run --rm --network none": installed + ["run", "--rm", "--network", "none", "busybox",
                                                              "true"]}
        if "dockerd" not in args.skip:
            pkg = dockerd_root(args.dockerd_root)
            ddir = os.path.join(tmp, "dockerd")
            os.makedirs(ddir)
            dhost = "unix://" + os.path.join(ddir, "docker.sock")
            log = open(os.path.join(ddir, "log"), "wb")
            path = os.pathsep.join([os.path.join(pkg, "usr/bin"), os.path.join(pkg, "usr/sbin"),
                                    os.environ.get("PATH", "")])
            dockerd = subprocess.Popen(inside + [os.path.join(pkg, "usr/sbin/dockerd"),
                                                 "--data-root", os.path.join(ddir, "root"),
                                                 "--exec-root", os.path.join(ddir, "exec"), "--pidfile",
                                                 os.path.join(ddir, "pid"), "-H", dhost,
                                                 "--cgroup-parent", dockerd_cgroup],
                                       stdout=log, stderr=log, env=dict(os.environ, PATH=path))
            deadline = time.time() + 60
            while subprocess.run([DOCKER, "-H", dhost, "version"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode:
                if dockerd.poll() is not None or time.time() > deadline:
                    raise SystemExit("dockerd did not start: see %s/log" % ddir)
                time.sleep(0.2)
            subprocess.run([DOCKER, "-H", dhost, "load", "-q", "-i", archive], check=True,
                           stdout=subprocess.DEVNULL)
            cmds["docker run --rm (dockerd, docker0)"] = [DOCKER, "-H", dhost, "run", "--rm", "busybox",
                                                          "true"]
        if "podman" not in args.skip:
            subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                            "containers-storage:[overlay@%s+%s]localhost/busybox:latest" % (pstore, prun)],
                           check=True, stdout=subprocess.DEVNULL)
            cmds["podman run --rm (default network)"] = podman + ["run", "--rm"] + PODMAN_ULIMITS + \
                ["localhost/busybox:latest", "true"]
        times = {k: [] for k in cmds}
        for i in range(args.runs + 2):  # 2 warm-up rounds; interleaved so load hits all alike
            for name, argv in cmds.items():
                t = time.perf_counter()
                r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if r.returncode:
                    raise SystemExit("%s failed: %s" % (name, r.stderr.decode()))
                if i >= 2:
                    times[name].append(time.perf_counter() - t)
        base = ms(times["berth run --rm (bridge)"])
        print("run --rm busybox true, median of %d (ms), in one network namespace:" % args.runs)
        for name, xs in times.items():
            print("  %-38s %7.1f   (berth bridge / this = %.2fx)" % (name, ms(xs), base / ms(xs)))

        if "many" in args.skip:
            return
        subprocess.run([BERTH, "network", "create", "many"], env=env, check=True, stdout=subprocess.DEVNULL)
        names = ["c%d" % k for k in range(args.many)]
        t = time.perf_counter()
        for n in names:
            subprocess.run([BERTH, "run", "-d", "--network", "many", "--name", n, "busybox", "sleep", "600"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        started = time.perf_counter() - t
        script = "for n in %s; do ping -c1 -W5 $n >/dev/null 2>&1 || echo $n; done" % " ".join(names)
        overflows = _neigh_overflows()
        t = time.perf_counter()
        failures = []
        for k in range(0, len(names), args.parallel):  # a few at a time: the machine has 2 cores
            procs = [(n, subprocess.Popen([BERTH, "exec", n, "sh", "-c", script], env=env,
                                          stdout=subprocess.PIPE)) for n in names[k:k + args.parallel]]
            for n, p in procs:
                failures += ["%s->%s" % (n, x) for x in p.communicate()[0].decode().split()]
        failed = len(failures)
        checked = time.perf_counter() - t
        print("%d containers on one user network: started in %.1f s (%.0f ms each); every one pinged the "
              "others by name (%d pairs) in %.1f s: %d failed"
              % (args.many, started, started * 1000 / args.many, args.many * args.many, checked, failed))
        if failures:
            print("  failed: %s" % " ".join(failures[:20]))
        with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as f:
            thresh = int(f.read())
        print("  kernel 'neighbor table overflow' messages meanwhile: %d (the ARP table is one for all "
              "namespaces, gc_thresh3 = %d; all pairs need up to %d entries)"
              % (_neigh_overflows() - overflows, thresh, args.many * (args.many - 1)))
    finally:
        d.cleanup()
        if dockerd is not None:
            dockerd.terminate()
            try:
                dockerd.wait(30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
            for hier in os.listdir("/sys/fs/cgroup"):
                top = os.path.join("/sys/fs/cgroup", hier, dockerd_cgroup)
                for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
            subprocess.run(["umount", "-R", os.path.join(tmp, "dockerd")], stderr=subprocess.DEVNULL)
        if "podman" not in args.skip:
            subprocess.run(podman + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", ns])
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
