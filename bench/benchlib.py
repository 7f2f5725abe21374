"""What the speed benches share: berth as a provisioned host runs it (the engine bundle
extracted, byte-compiled and started through the installed wrapper scripts, on the machine's
python3 or on CentOS 7's Python 3.6), a dockerd from Debian's unpacked packages, network
namespaces of the bench's own, medians and the load average to print beside every figure.

Scripts import it as `benchlib` (bench/ is on sys.path when a script there runs).
"""

import glob
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.api.conftest import DOCKER, Berthd  # noqa: E402

HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PY36 = "/root/.pyenv/versions/3.6.15/bin/python3.6"
DOCKER_DEBS = "/var/cache/berth-test/docker-debs"  # docker.io, containerd, runc (tests/provision)
DOCKER_PKG = "/var/cache/berth-bench/docker"  # those packages unpacked (dpkg-deb -x), once
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def ms(xs):
    """Median of seconds, in ms."""
    return statistics.median(xs) * 1000


def load():
    """The load average (1, 5, 15 min) as printed beside every figure."""
    with open("/proc/loadavg") as f:
        return "load %s" % " ".join(f.read().split()[:3])


def pythons(wanted):
    """{label: python} for the labels asked for: "host" (the machine's python3) and "3.6"."""
    out = {}
    for w in wanted:
        if w == "host":
            out["host"] = HOST_PYTHON
        elif w == "3.6":
            if not os.path.exists(PY36):
                raise SystemExit("no Python 3.6 at %s (pyenv install 3.6.15)" % PY36)
            out["3.6"] = PY36
        else:
            raise SystemExit("unknown python %r: host or 3.6" % w)
    return out


def install(tmp, pys, tree=None):
    """The engine bundle as provision installs it, once per python (each byte-compiles its own
    copy; -I -S wrappers, provision/bundle.py). Returns {label: {"berth": path, "berthd": path}}.
    With tree (another checkout, for an A/B run), its runtime/ is copied instead of the bundle."""
    from provision import bundle
    pyz = None
    if tree is None:
        b = bundle.build()
        pyz = os.path.join(tmp, b.filename)
        with open(pyz, "wb") as f:
            f.write(b.data)
    out = {}
    for label, py in pys.items():
        lib = os.path.join(tmp, "lib-" + label)
        if pyz:
            subprocess.run([HOST_PYTHON, "-m", "zipfile", "-e", pyz, lib], check=True)
        else:
            shutil.copytree(os.path.join(tree, "runtime"), os.path.join(lib, "runtime"),
                            ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([py, "-m", "compileall", "-q", lib], check=True, stdout=subprocess.DEVNULL)
        out[label] = {}
        for prog in ("berth", "berthd"):
            script = bundle.wrapper(prog).decode().replace(bundle.PYTHON, py)
            path = os.path.join(tmp, "%s-%s" % (prog, label))
            with open(path, "w") as f:
                f.write(script.replace(bundle.LIB_DIR + "/current", lib))
            os.chmod(path, 0o755)
            out[label][prog] = path
    return out


class InstalledBerthd(Berthd):
    """tests/api/conftest.Berthd started through an installed `berthd` wrapper script."""

    def __init__(self, base, wrapper, **kw):
        Berthd.__init__(self, base, **kw)
        self.wrapper = wrapper

    def argv(self):
        return [self.wrapper] + Berthd.argv(self)[3:]


class Netns(object):
    """A network namespace of the bench's own (lo up), deleted by close()."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        self.enter = ["nsenter", "--net=/run/netns/" + name, "--"]

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name])


def docker_pkg():
    """Where dockerd, containerd and runc from Debian's packages are unpacked (nothing is
    installed on the machine); None when the packages are not cached here."""
    if os.path.exists(os.path.join(DOCKER_PKG, "usr/sbin/dockerd")):
        return DOCKER_PKG
    debs = [d for pat in ("docker.io_*.deb", "containerd_*.deb", "runc_*.deb")
            for d in glob.glob(os.path.join(DOCKER_DEBS, pat))]
    if len(debs) < 3:
        return None
    tmp = DOCKER_PKG + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for d in debs:
        subprocess.run(["dpkg-deb", "-x", d, tmp], check=True)
    os.rename(tmp, DOCKER_PKG)
    return DOCKER_PKG


class Dockerd(object):
    """A dockerd (with its own containerd) of the bench's, all under base; in a network
    namespace of ours (netns: Netns) with its docker0 bridge and iptables rules there, or with
    neither (`--bridge=none --iptables=false`) when netns is None. Ended by PID."""

    def __init__(self, base, netns=None, extra=()):
        pkg = docker_pkg()
        if pkg is None:
            raise SystemExit("no dockerd: Debian's docker.io, containerd and runc .debs are not in "
                             + DOCKER_DEBS)
        self.base = base
        os.makedirs(base)
        self.host = "unix://" + os.path.join(base, "docker.sock")
        path = os.pathsep.join([os.path.join(pkg, "usr/bin"), os.path.join(pkg, "usr/sbin"),
                                os.environ.get("PATH", "")])
        self.env = dict(os.environ, PATH=path, DOCKER_CONFIG=os.path.join(base, "config"))
        os.makedirs(self.env["DOCKER_CONFIG"])
        with open(os.path.join(self.env["DOCKER_CONFIG"], "config.json"), "w") as f:
            f.write("{}\n")
        argv = [os.path.join(pkg, "usr/sbin/dockerd"), "--data-root", os.path.join(base, "root"),
                "--exec-root", os.path.join(base, "exec"), "--pidfile", os.path.join(base, "pid"),
                "-H", self.host, "--storage-driver=overlay2", "--ip6tables=false"] + list(extra)
        if netns is None:
            argv += ["--iptables=false", "--bridge=none"]
        else:
            argv = netns.enter + argv
        self.argv = argv
        self.proc = None

    def start(self, timeout=60):
        """Start it; seconds until `docker version` answers."""
        t = time.perf_counter()
        self.log = open(os.path.join(self.base, "log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log, env=self.env,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while self.docker("version").returncode != 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("dockerd did not start: see %s/log" % self.base)
            time.sleep(0.02)
        return time.perf_counter() - t

    def docker(self, *args, **kw):
        """`docker -H ours ARGS`, output captured."""
        return subprocess.run([DOCKER, "-H", self.host] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.env, **kw)

    def stop(self, timeout=60):
        """SIGTERM, wait (SIGKILL to its process group after timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.log.close()

    def cleanup(self):
        """Remove its containers, stop it, unmount what it left under base, remove base."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *[i.decode() for i in ids])
        self.stop()
        umount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def umount_under(base):
    """Lazily unmount every mount point under base (deepest first)."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for mnt in sorted((m for m in mounts if m.startswith(base.rstrip("/") + "/")), reverse=True):
        subprocess.call(["umount", "-l", mnt], stderr=subprocess.DEVNULL)


def podman(tmp, archive, netns=None, ref="localhost/busybox:latest"):
    """(argv prefix of a podman with its own storage under tmp, its reset argv), the busybox
    archive copied into that storage as ref."""
    store, run = os.path.join(tmp, "pstore"), os.path.join(tmp, "prun")
    base = (netns.enter if netns else []) + [
        "podman", "--root", store, "--runroot", run, "--tmpdir", os.path.join(tmp, "ptmp"),
        "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", "runc"]
    subprocess.run(["skopeo", "copy", "-q", "docker-archive:" + archive,
                    "containers-storage:[overlay@%s+%s]%s" % (store, run, ref)],
                   check=True, stdout=subprocess.DEVNULL)
    return base, base + ["system", "reset", "-f"]
