"""The escape corpus (tests/escape/probe.c, built static here): run as root in a default berth
container through the docker CLI, every probe must be blocked, and blocked the same way as in
podman's default container on this machine; under --privileged the documented differences
show (docs/security.md)."""

import os
import shutil
import subprocess

import pytest

from tests import imagefactory, podmanref
from tests.api.conftest import Berthd

HERE = os.path.dirname(os.path.abspath(__file__))
PROBES = ("mknod-disk-read", "mount", "open_by_handle_at", "sysrq-trigger", "proc-sys-kernel",
          "cgroup-write", "finit_module", "keyctl", "ptrace-outside", "unshare-user",
          "perf_event_open", "bpf", "reboot")
# what --privileged opens (all capabilities, no seccomp filter) in berth, as in dockerd; the
# rest stays blocked (the host's disk is refused even to the host's root on this machine;
# outside processes are not in the PID namespace; /proc/sys, sysrq-trigger and module
# loading stay refused by the read-only /proc paths and the kernel)
# podman's own seccomp profile (containers-common) allows keyctl and unshare(CLONE_NEWUSER),
# which dockerd's (berth's) refuses; and podman mounts a read-only cgroupfs (EROFS) where
# berth mounts none (ENOENT). Its default capabilities lack CAP_MKNOD, so its disk probe
# stops at mknod, also with EPERM.
PODMAN_ALLOWS = {"keyctl", "unshare-user"}
PODMAN_OTHER_ERRNO = {"cgroup-write"}
PRIVILEGED_OPENS = {"mount", "keyctl", "unshare-user", "perf_event_open", "bpf"}


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("no gcc to build the probe")
    out = str(tmp_path_factory.mktemp("probe") / "probe")
    r = subprocess.run(["gcc", "-static", "-O1", "-Wall", "-o", out, os.path.join(HERE, "probe.c")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        pytest.skip("cannot build the static probe: %s" % r.stdout.decode()[-300:])
    return out


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, probe):
    tmp = tmp_path_factory.mktemp("escd")
    with open(probe, "rb") as f:
        layer = imagefactory.layer_tar([("file", "probe", f.read(), 0o755)])
    tar = imagefactory.busybox_image_tar(tmp / "esc.tar", ref="escape:latest", layers=[layer])
    d = Berthd(str(tmp / "d"))
    d.start()
    try:
        with open(tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read(),
                         headers={"Content-Type": "application/x-tar"})[0] == 200
        yield d
    finally:
        d.cleanup()


def args():
    st = os.stat("/")
    return [str(os.major(st.st_dev)), str(os.minor(st.st_dev)), str(os.getpid())]


def outcomes(r):
    found = {}
    for line in r.stdout.decode().splitlines():
        name, _, result = line.partition(" ")
        found[name] = result
    assert sorted(found) == sorted(PROBES), (r.stdout, r.stderr)
    return found


def berth_run(daemon, *opts):
    return outcomes(daemon.docker("run", "--rm", "--network", "none", *opts, "escape", "/probe", *args()))


def test_default_container_is_kept_in(daemon):
    got = berth_run(daemon)
    assert {k: v for k, v in got.items() if not v.startswith("blocked")} == {}


def test_blocked_the_same_way_as_podman(daemon, probe, tmp_path):
    if not podmanref.available():
        pytest.skip("no podman")
    rootfs = imagefactory.busybox_rootfs(tmp_path / "rootfs")
    shutil.copy(probe, str(rootfs / "probe"))
    ours = berth_run(daemon)
    theirs = outcomes(podmanref.run(rootfs, ["/probe"] + args(), expect_output=True))
    table = "\n".join("%-18s berth: %-16s podman: %s" % (k, ours[k], theirs[k]) for k in PROBES)
    assert {k for k, v in theirs.items() if not v.startswith("blocked")} == PODMAN_ALLOWS, table
    same = [k for k in PROBES if k not in PODMAN_ALLOWS and k not in PODMAN_OTHER_ERRNO]
    assert [k for k in same if ours[k] != theirs[k]] == [], table


def test_privileged_shows_the_documented_differences(daemon):
    got = berth_run(daemon, "--privileged")
    opened = {k for k, v in got.items() if v == "escaped"}
    assert opened == PRIVILEGED_OPENS, "\n".join("%-18s %s" % kv for kv in sorted(got.items()))
