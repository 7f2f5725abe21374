"""Device control through the docker CLI on both cgroup layouts: this machine's hybrid v1
(the devices controller) and cgroup v2, where berthd runs in a private mount namespace with
the cgroup2 hierarchy mounted on /sys/fs/cgroup, so only the eBPF device program can refuse.
In both, root in a default container may mknod the host's disk but not open it; --device,
--device-cgroup-rule and --privileged open what Docker's do."""

import json
import os
import pytest

from tests import imagefactory, podmanref
from tests.api.conftest import Berthd

UNIFIED = "/sys/fs/cgroup/unified"


def host_block_device():
    """(major, minor) of a block device root on this host can open (the sandbox this machine
    runs in refuses its disk even to the host's root, so a loop device stands in)."""
    candidates = ["/dev/loop%d" % i for i in range(8)]
    candidates += ["/dev/" + n for n in sorted(os.listdir("/sys/block"))]
    for path in candidates:
        try:
            st = os.stat(path)
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            continue
        return os.major(st.st_rdev), os.minor(st.st_rdev)
    pytest.skip("no block device the host's root can open")


class V2Berthd(Berthd):
    """berthd in its own mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy."""

    def argv(self):
        script = "mount --make-rprivate / && mount --bind %s /sys/fs/cgroup && exec \"$@\"" % UNIFIED
        return ["unshare", "-m", "sh", "-c", script, "sh"] + Berthd.argv(self)


@pytest.fixture(scope="module", params=["v1", "v2"])
def daemon(request, tmp_path_factory, busybox_tar):
    if request.param == "v2":
        if not os.path.exists(UNIFIED + "/cgroup.controllers"):
            pytest.skip("no cgroup2 mount at %s" % UNIFIED)
        d = V2Berthd(str(tmp_path_factory.mktemp("v2d")))
    else:
        d = Berthd(str(tmp_path_factory.mktemp("v1d")))
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read(),
                         headers={"Content-Type": "application/x-tar"})[0] == 200
        d.layout = request.param
        yield d
    finally:
        d.cleanup()


def _sh(d, script, *opts):
    return d.docker("run", "--rm", "--network", "none", *opts, "busybox", "sh", "-c", script)


def test_layout_is_the_one_under_test(daemon):
    info = json.loads(daemon.api("GET", "/info")[2])
    assert info["CgroupVersion"] == ("2" if daemon.layout == "v2" else "1")


OPEN = "mknod /disk b %d %d && echo made; dd if=/disk of=/dev/null bs=512 count=1 && echo OPENED"


def test_host_block_device_can_be_made_but_not_opened(daemon):
    r = _sh(daemon, OPEN % host_block_device())
    assert b"made" in r.stdout and b"OPENED" not in r.stdout, (r.stdout, r.stderr)
    assert b"Operation not permitted" in r.stderr


def test_device_cgroup_rule_and_privileged_open_it(daemon):
    major, minor = host_block_device()
    r = _sh(daemon, OPEN % (major, minor), "--device-cgroup-rule", "b %d:%d r" % (major, minor))
    assert b"OPENED" in r.stdout, r.stderr
    r = _sh(daemon, OPEN % (major, minor) + "; dd if=/dev/zero of=/disk count=0 && echo WROTE",
            "--device-cgroup-rule", "b %d:* r" % major)  # read only
    assert b"OPENED" in r.stdout and b"WROTE" not in r.stdout, (r.stdout, r.stderr)
    r = _sh(daemon, OPEN % (major, minor), "--privileged")
    assert b"OPENED" in r.stdout, r.stderr


def test_device_flag_makes_the_node_with_its_permissions(daemon):
    if not os.path.exists("/dev/vcs"):
        pytest.skip("no /dev/vcs")
    # /dev/vcs (c 7:0, 0600) is outside Docker's default device list
    r = _sh(daemon, "ls -l /dev/my/vcs; head -c 1 /dev/my/vcs >/dev/null; echo read=$?; "
            "echo x > /dev/my/vcs; echo write=$?", "--device", "/dev/vcs:/dev/my/vcs:r")
    assert r.stdout.startswith(b"crw-------") and b" 7,   0 " in r.stdout, r.stdout
    assert b"read=0" in r.stdout and b"write=1" in r.stdout, (r.stdout, r.stderr)
    assert b"Operation not permitted" in r.stderr
    r = _sh(daemon, "head -c 1 /dev/vcs >/dev/null; echo read=$?")
    assert b"read=1" in r.stdout  # not there without --device (and mknod of it would not open)


@pytest.mark.parametrize("opts, words", [
    (["--device", "/etc/passwd"], b"not a device node"),
    (["--device", "/dev/nosuch"], b"/dev/nosuch"),
])
def test_bad_device_options_are_refused(daemon, opts, words):
    r = daemon.docker("create", *opts, "busybox")
    assert r.returncode != 0 and words in r.stderr, r.stderr


def test_bad_device_cgroup_rule_is_refused_by_the_api(daemon):
    status, _, body = daemon.api("POST", "/containers/create", body=json.dumps({
        "Image": "busybox", "HostConfig": {"DeviceCgroupRules": ["c 1:3 rwx"]}}).encode(),
        headers={"Content-Type": "application/json"})
    assert status == 400 and b"invalid device cgroup rule" in body, body


def test_podman_refuses_the_device_the_same_way(tmp_path):
    """The reference: podman's default container on this machine (skipped without podman)."""
    if not podmanref.available():
        pytest.skip("no podman")
    rootfs = imagefactory.busybox_rootfs(tmp_path / "rootfs")
    r = podmanref.run(rootfs, ["sh", "-c", OPEN % host_block_device()])
    # podman drops CAP_MKNOD by default, so its refusal comes one step earlier
    assert b"OPENED" not in r.stdout, (r.stdout, r.stderr)
    assert b"Operation not permitted" in r.stderr
