#!/usr/bin/env python3
"""Startup after a reboot (issue 20's last target), berthd beside dockerd, in one invocation.

Each daemon runs in a PID + mount (+ network) namespace of its own (`unshare --pid --mount
--net --fork --mount-proc --kill-child`), holds N containers (`sleep`, all running, a quarter
of them with `--restart always`), and is then "rebooted": unshare is SIGKILLed, so the kernel
kills every process of the namespace (daemon, monitors or shims, containers) at once and the
mounts made in it go, as at a power cut. The daemon is started again on the same data root
(dockerd: the same data root, a fresh exec root, as /run is after a boot) and timed until it
answers /_ping, and until the restart-policy containers run again.

    sudo .venv/bin/python bench/startup.py [--python host|3.6] [--rounds 3] [--skip dockerd]
    BERTH_BENCH_SCALE=full ...    # 200 containers (the default is 20)

Target: berthd serving with 200 containers to restore, the restart-policy ones started,
in <= 2 s.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import benchlib
from benchlib import DOCKER

from tests import imagefactory

NS = ["unshare", "--pid", "--mount", "--net", "--fork", "--mount-proc", "--kill-child", "--",
      "sh", "-c", 'ip link set lo up; exec "$@"', "sh"]


class Daemon(object):
    """berthd or dockerd in a namespace of its own, on a data root that outlives it."""

    def __init__(self, kind, base, argv, env, ping):
        self.kind = kind
        self.base = base
        self.argv = argv
        self.env = env
        self.ping = ping
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.base, "%s.log" % self.kind), "ab")
        self.proc = subprocess.Popen(NS + self.argv, stdout=self.log, stderr=self.log, env=self.env)

    def wait_serving(self, timeout=900):
        deadline = time.time() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.time() > deadline:
                with open(self.log.name, "rb") as f:
                    tail = f.read()[-1500:].decode("utf-8", "replace")
                raise SystemExit("%s did not start:\n%s" % (self.kind, tail))
            time.sleep(0.005)

    def reboot(self):
        """SIGKILL to unshare: the namespace's PID 1 gets SIGKILL (--kill-child), so does every
        process in it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        time.sleep(0.5)  # the kernel tears the namespace down


def api(sock, method, path, body=None):
    """(status, body bytes) of one request on a unix socket; (0, b"") when it does not answer."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(conn):
            conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.sock.settimeout(30)
            conn.sock.connect(sock)
    c = Conn("localhost")
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    except OSError:
        return 0, b""
    finally:
        c.close()


def running(sock):
    status, body = api(sock, "GET", "/containers/json")
    return len(json.loads(body.decode())) if status == 200 else -1


def populate(sock, n, always):
    for k in range(n):
        hc = {"NetworkMode": "none"}
        if k < always:
            hc["RestartPolicy"] = {"Name": "always"}
        status, body = api(sock, "POST", "/containers/create",
                           {"Image": "busybox", "Cmd": ["sleep", "1000000"], "HostConfig": hc})
        if status != 201:
            raise SystemExit("create: %s %s" % (status, body))
        cid = json.loads(body.decode())["Id"]
        status, body = api(sock, "POST", "/containers/%s/start" % cid)
        if status != 204:
            raise SystemExit("start: %s %s" % (status, body))


def measure(d, sock, always, rounds):
    """[(seconds to serving, seconds until `always` containers run)] over rounds reboots."""
    out = []
    for _ in range(rounds):
        d.reboot()
        if d.kind == "dockerd":  # /run is a tmpfs: emptied by a boot
            shutil.rmtree(os.path.join(d.base, "exec"), ignore_errors=True)
            os.unlink(os.path.join(d.base, "pid"))
        benchlib.umount_under(d.base)
        t = time.perf_counter()
        d.start()
        d.wait_serving()
        serving = time.perf_counter() - t
        deadline = time.time() + 900
        while running(sock) < always:
            if time.time() > deadline:
                raise SystemExit("%s: restart-policy containers did not all start" % d.kind)
            time.sleep(0.005)
        out.append((serving, time.perf_counter() - t))
    return out


def report(name, xs, always, ref):
    """Print one daemon's medians (and the ratio to ref's); its median seconds to restored."""
    serving = statistics.median(x[0] for x in xs)
    restored = statistics.median(x[1] for x in xs)
    print("  %-22s serving after %6.2f s, the %d restart-policy containers running after %6.2f s%s; %s"
          % (name, serving, always, restored,
             "  (%.2fx berthd)" % (restored / ref) if ref else
             "  target <= 2 s: %s" % ("ok" if restored <= 2 else "MISSED"), benchlib.load()))
    return restored


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="host", help="host or 3.6")
    full = os.environ.get("BERTH_BENCH_SCALE") == "full"
    ap.add_argument("--containers", type=int, default=200 if full else 20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", action="append", default=[], help="dockerd")
    args = ap.parse_args()
    pys = benchlib.pythons([args.python])
    always = args.containers // 4
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    tmp = tempfile.mkdtemp(prefix="berth-bench-startup-", dir="/tmp")
    daemons = []
    try:
        installed = benchlib.install(tmp, pys)[args.python]
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        base = os.path.join(tmp, "berthd")
        os.makedirs(base)
        sock = os.path.join(base, "berth.sock")
        with open(os.path.join(base, "daemon.json"), "w") as f:
            f.write('{"bridge": "none"}\n')
        parent = "berth-bench-startup-%d" % os.getpid()
        berthd = Daemon("berthd", base, [
            installed["berthd"], "--config-file", os.path.join(base, "daemon.json"),
            "--data-root", os.path.join(base, "root"), "-H", "unix://" + sock, "--group", "users",
            "--pidfile", os.path.join(base, "pid"), "--cgroup-parent", parent],
            os.environ, lambda: api(sock, "GET", "/_ping")[0] == 200)
        daemons.append(berthd)
        figures = {}
        berthd.start()
        berthd.wait_serving()
        subprocess.run([installed["berth"], "load", "-i", archive], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, BERTH_HOST="unix://" + sock))
        populate(sock, args.containers, always)
        print("startup after a reboot with %d containers (%d with --restart always), median of %d rounds"
              % (args.containers, always, args.rounds))
        figures["berthd (python %s)" % args.python] = report(
            "berthd (python %s)" % args.python, measure(berthd, sock, always, args.rounds), always, None)
        if "dockerd" not in args.skip and benchlib.docker_pkg():
            dbase = os.path.join(tmp, "dockerd")
            os.makedirs(dbase)
            dsock = os.path.join(dbase, "docker.sock")
            pkg = benchlib.docker_pkg()
            env = dict(os.environ, PATH=os.pathsep.join([os.path.join(pkg, "usr/bin"),
                                                        os.path.join(pkg, "usr/sbin"), os.environ["PATH"]]))
            dockerd = Daemon("dockerd", dbase, [
                os.path.join(pkg, "usr/sbin/dockerd"), "--data-root", os.path.join(dbase, "root"),
                "--exec-root", os.path.join(dbase, "exec"), "--pidfile", os.path.join(dbase, "pid"),
                "-H", "unix://" + dsock, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=overlay2", "--cgroup-parent", parent + "-d"],
                env, lambda: api(dsock, "GET", "/_ping")[0] == 200)
            daemons.append(dockerd)
            dockerd.start()
            dockerd.wait_serving()
            subprocess.run([DOCKER, "-H", "unix://" + dsock, "load", "-q", "-i", archive], check=True,
                           stdout=subprocess.DEVNULL, env=dict(env, DOCKER_CONFIG=os.path.join(dbase, "cfg")))
            populate(dsock, args.containers, always)
            report("dockerd", measure(dockerd, dsock, always, args.rounds), always,
                   figures["berthd (python %s)" % args.python])
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.reboot()
        benchlib.umount_under(tmp)
        deadline = time.time() + 10  # the killed namespace's tasks leave their cgroups lazily
        tops = [os.path.join("/sys/fs/cgroup", hier, top) for hier in os.listdir("/sys/fs/cgroup")
                for top in ("berth-bench-startup-%d" % os.getpid(), "berth-bench-startup-%d-d" % os.getpid())]
        while any(os.path.isdir(t) for t in tops) and time.time() < deadline:
            for top in tops:
                for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
            time.sleep(0.2)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
