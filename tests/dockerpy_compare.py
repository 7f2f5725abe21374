"""docker-py's own integration suite (docker/docker-py tests/integration) against berthd and
against a dockerd started here, in one run; prints the tests dockerd passes and berthd does
not (and the reverse), and writes both JUnit files.

    python -m tests.dockerpy_compare --dockerpy DIR --dockerd-root DIR [--only FILE ...]

DIR (--dockerpy) is a checkout of docker/docker-py; --dockerd-root holds `usr/sbin/dockerd` and
`usr/bin/containerd*` (Debian's docker.io and containerd packages unpacked with `dpkg-deb -x`:
nothing is installed, no service is started). dockerd runs in its own network namespace with
`--iptables=false --bridge=none`, its own data root, exec root, pidfile and socket, so it
touches nothing of the machine's; berthd runs in a network namespace of its own too (with its
default bridge and rules there). Both daemons get the same busybox image, tagged as the
images the suite uses (alpine:3.10, alpine), since there is no registry to pull from. The swarm-mode
files (services, secrets, configs, nodes, plugins, swarm) are left out, as issue 15 says.
Run as root.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import imagefactory  # noqa: E402
from tests.api.conftest import Berthd  # noqa: E402
from tests.network.conftest import NetNs  # noqa: E402

SWARM = ("api_service_test.py", "api_secret_test.py", "api_config_test.py", "api_swarm_test.py",
         "api_plugin_test.py", "models_services_test.py", "models_nodes_test.py",
         "models_swarm_test.py")
IMAGE_TAGS = ("alpine:3.10", "alpine:latest", "busybox:latest", "busybox:buildroot-2014.02")


class Dockerd(object):
    """dockerd (with its own containerd) in a fresh network namespace, everything under base."""

    def __init__(self, base, pkg_root, cgroup_parent=None):
        self.base = base
        self.cgroup_parent = cgroup_parent or "dockerpy-compare-%d" % os.getpid()
        self.sock = os.path.join(base, "docker.sock")
        self.host = "unix://" + self.sock
        self.pkg = pkg_root
        self.proc = None

    def start(self, timeout=60, preexec_fn=None):
        """Start it (preexec_fn runs in the child before exec) and wait until it answers."""
        path = os.pathsep.join([os.path.join(self.pkg, "usr/bin"), os.path.join(self.pkg, "usr/sbin"),
                                os.environ.get("PATH", "")])
        argv = ["unshare", "--net", "--", "sh", "-c",
                'ip link set lo up && exec "$0" "$@"',
                os.path.join(self.pkg, "usr/sbin/dockerd"),
                "--data-root", os.path.join(self.base, "root"),
                "--exec-root", os.path.join(self.base, "exec"),
                "--pidfile", os.path.join(self.base, "dockerd.pid"), "-H", self.host,
                "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=overlay2",
                "--cgroup-parent", self.cgroup_parent]
        log = open(os.path.join(self.base, "dockerd.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=dict(os.environ, PATH=path),
                                     start_new_session=True, preexec_fn=preexec_fn)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited: see %s/dockerd.log" % self.base)
            if os.path.exists(self.sock) and _docker(self.host, "version").returncode == 0:
                return self
            time.sleep(0.3)
        raise RuntimeError("dockerd did not answer: see %s/dockerd.log" % self.base)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        for cid in _docker(self.host, "ps", "-aq").stdout.split():
            _docker(self.host, "rm", "-f", cid.decode())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for mnt in sorted((m for m in mounts if m.startswith(self.base)), reverse=True):
            subprocess.call(["umount", "-l", mnt], stderr=subprocess.DEVNULL)


def _docker(host, *args, **kw):
    return subprocess.run(["/usr/local/bin/docker", "-H", host] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw)


def _load_images(host, tar):
    with open(tar, "rb") as f:
        out = _docker(host, "load", input=f.read())
    if out.returncode != 0:
        raise RuntimeError("docker load into %s: %s" % (host, out.stderr.decode()))
    for tag in IMAGE_TAGS:
        _docker(host, "tag", "busybox:latest", tag)


def _run_suite(host, dockerpy, files, junit, timeout, home):
    """pytest over files with DOCKER_HOST=host; home: the run's own HOME (with an empty
    ~/.docker/config.json), so what the client side keeps (contexts) does not pass from one
    daemon's run to the other's."""
    os.makedirs(os.path.join(home, ".docker"), exist_ok=True)
    with open(os.path.join(home, ".docker", "config.json"), "w") as f:
        f.write("{}")
    env = dict(os.environ, DOCKER_HOST=host, PYTHONPATH=dockerpy, DOCKER_TEST_API_VERSION="1.41", HOME=home)
    env.pop("DOCKER_CONFIG", None)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", str(timeout),
            "--junitxml", junit, "-o", "addopts="] + files
    return subprocess.call(argv, cwd=dockerpy, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def _outcomes(junit):
    """{test id: "passed" | "failed" | "skipped"} from a JUnit file."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = "%s::%s" % (case.get("classname"), case.get("name"))
        kinds = {child.tag for child in case}
        out[name] = "failed" if kinds & {"failure", "error"} else \
            "skipped" if "skipped" in kinds else "passed"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dockerpy", required=True, help="a docker/docker-py checkout")
    ap.add_argument("--dockerd-root", required=True, help="unpacked docker.io + containerd packages")
    ap.add_argument("--only", action="append", default=[], help="one test file (repeatable)")
    ap.add_argument("--timeout", type=int, default=60, help="seconds per test")
    ap.add_argument("--out", default=None, help="where the JUnit files go (default: a temp dir)")
    args = ap.parse_args(argv)
    integ = os.path.join(args.dockerpy, "tests", "integration")
    files = args.only or sorted(os.path.join("tests", "integration", f) for f in os.listdir(integ)
                                if f.endswith("_test.py") and f not in SWARM)
    work = tempfile.mkdtemp(prefix="dpc", dir="/tmp")
    out_dir = args.out or work
    os.makedirs(out_dir, exist_ok=True)
    tar = str(imagefactory.busybox_image_tar(os.path.join(work, "busybox.tar")))
    netns = NetNs("dpc%d" % os.getpid())  # berthd's own, as dockerd has one: bridges and rules in it
    berthd = Berthd(os.path.join(work, "berthd"), netns=netns.name)
    dockerd = Dockerd(os.path.join(work, "dockerd"), args.dockerd_root)
    os.makedirs(dockerd.base)
    results = {}
    try:
        for name, daemon in (("dockerd", dockerd), ("berthd", berthd)):
            daemon.start()
            _load_images(daemon.host, tar)
            junit = os.path.join(out_dir, "%s.xml" % name)
            started = time.time()
            _run_suite(daemon.host, args.dockerpy, files, junit, args.timeout,
                       os.path.join(work, name + "-home"))
            results[name] = _outcomes(junit)
            print("%s: %d passed, %d failed, %d skipped in %.0f s" % (
                name, *[sum(1 for v in results[name].values() if v == k)
                        for k in ("passed", "failed", "skipped")], time.time() - started))
            (daemon.cleanup if name == "berthd" else daemon.stop)()
    finally:
        berthd.cleanup()
        netns.close()
        dockerd.stop()
    theirs, ours = results.get("dockerd", {}), results.get("berthd", {})
    missing = sorted(t for t, v in theirs.items() if v == "passed" and ours.get(t) != "passed")
    extra = sorted(t for t, v in ours.items() if v == "passed" and theirs.get(t) != "passed")
    print("\npassed on dockerd, not on berthd (%d):" % len(missing))
    print("".join("  %s (%s)\n" % (t, ours.get(t, "absent")) for t in missing), end="")
    print("passed on berthd, not on dockerd (%d):" % len(extra))
    print("".join("  %s (%s)\n" % (t, theirs.get(t, "absent")) for t in extra), end="")
    print("JUnit files: %s" % out_dir)
    # the JUnit files stay
    for leftover in ("berthd", "dockerd", "busybox.tar", "dockerd-home", "berthd-home"):
        path = os.path.join(work, leftover)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)
    if args.out:
        os.rmdir(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
