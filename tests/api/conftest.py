"""A real berthd per test module (own data root on ext4 under /tmp, socket, group, pidfile and
cgroup parent) and the three clients that drive it: `berth`, the docker CLI and docker-py."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests import imagefactory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker")
GROUP = "users"  # an existing group; tests never add groups or users to the machine


class Berthd(object):
    """One berthd subprocess and helpers to talk to it."""

    def __init__(self, base, config=None, extra_args=(), netns=None, env=None):
        self.base = base
        self.env = dict(env or {})  # extra environment for berthd (BERTH_ID_ROOT...)
        os.makedirs(base, exist_ok=True)
        self.sockdir = tempfile.mkdtemp(prefix="bt", dir="/tmp")
        os.chmod(self.sockdir, 0o755)  # outsiders must reach the socket itself, not stop at the dir
        self.sock = os.path.join(self.sockdir, "berth.sock")
        self.host = "unix://" + self.sock
        self.data_root = os.path.join(base, "root")
        self.pidfile = os.path.join(base, "berthd.pid")
        self.config_file = os.path.join(base, "daemon.json")
        self.cgroup_parent = "berth-test-%d-%s" % (os.getpid(), os.path.basename(self.sockdir))
        self.log_path = os.path.join(base, "berthd.log")
        self.config = dict(config or {})
        if netns is None:  # in the machine's own network namespace: no bridge, no rules
            self.config.setdefault("bridge", "none")
        self.netns = netns
        self.extra_args = list(extra_args)
        self.proc = None
        with open(self.config_file, "w") as f:
            json.dump(self.config, f)

    def argv(self):
        """The berthd command line."""
        return [
            sys.executable, "-m", "runtime.daemon.main",
            "--config-file", self.config_file, "--data-root", self.data_root, "-H", self.host,
            "--group", GROUP, "--pidfile", self.pidfile, "--cgroup-parent", self.cgroup_parent,
        ] + self.extra_args

    def start(self, timeout=15.0):
        """Start it and wait until /_ping answers."""
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=ROOT, **self.env)
        argv = self.argv()
        if self.netns:  # a network namespace of the test's (ip netns add NAME)
            argv = ["nsenter", "--net=/run/netns/" + self.netns, "--"] + argv
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=ROOT, env=env)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("berthd exited %s:\n%s" % (self.proc.returncode, self.log()))
            if os.path.exists(self.sock):
                try:
                    self.api("GET", "/_ping")
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("berthd did not answer within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        """What berthd wrote to stderr so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def api(self, method, path, body=None, headers=None):
        """A raw HTTP request: (status, headers dict lower-cased, body bytes)."""
        import http.client
        import socket

        class Conn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.settimeout(30)
                conn.sock.connect(self.sock)

        c = Conn("localhost")
        try:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            c.request(method, path, body=data, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def run(self, argv, input=None, timeout=60, env=None):
        """Run a client command line; CompletedProcess with text output."""
        full_env = dict(os.environ, BERTH_HOST=self.host, PYTHONPATH=ROOT, **(env or {}))
        return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=full_env, cwd=ROOT)

    def berth(self, *args, **kw):
        """`berth ARGS` (the console script's module, with this daemon's socket)."""
        return self.run([os.path.join(os.path.dirname(sys.executable), "berth")] + list(args), **kw)

    def docker(self, *args, **kw):
        """`docker -H unix://SOCK ARGS`."""
        env = {"DOCKER_CONFIG": os.path.join(self.base, "docker-config")}
        return self.run([DOCKER, "-H", self.host] + list(args), env=env, **kw)

    def client(self):
        """A docker-py client."""
        import docker
        return docker.DockerClient(base_url=self.host, timeout=60)

    def kill(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal berthd and wait for it to exit; its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cleanup(self):
        """Remove every container, stop berthd, and clean what it left (mounts, cgroups, dirs)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                for c in json.loads(self.api("GET", "/containers/json?all=1")[2] or b"[]"):
                    self.api("DELETE", "/containers/%s?force=1&v=1" % c["Id"])
            except Exception:  # noqa: BLE001 (best effort before the hard cleanup below)
                pass
        self.kill()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for mnt in sorted((m for m in mounts if m.startswith(self.base)), reverse=True):
            subprocess.call(["umount", "-l", mnt], stderr=subprocess.DEVNULL)
        for hier in os.listdir("/sys/fs/cgroup"):
            top = os.path.join("/sys/fs/cgroup", hier, self.cgroup_parent)
            if os.path.isdir(top):
                for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
        shutil.rmtree(self.sockdir, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    """A docker-save tarball of busybox:latest."""
    return str(imagefactory.busybox_image_tar(tmp_path_factory.mktemp("apiimages") / "busybox.tar"))


@pytest.fixture(scope="module")
def berthd(tmp_path_factory):
    """A running berthd for this module (no images loaded)."""
    d = Berthd(str(tmp_path_factory.mktemp("berthd")))
    d.start()
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def loaded(berthd, busybox_tar):
    """The module's berthd with busybox:latest loaded."""
    with open(busybox_tar, "rb") as f:
        status, _, body = berthd.api("POST", "/images/load", body=f.read(),
                                     headers={"Content-Type": "application/x-tar"})
    assert status == 200, body
    return berthd


def inspect_container(d, name):
    """GET /containers/{name}/json of berthd d, asserted 200, parsed."""
    status, _, body = d.api("GET", "/containers/%s/json" % name)
    assert status == 200, body
    return json.loads(body)
