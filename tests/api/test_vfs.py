"""berthd on a data root that cannot hold an overlay upper dir (a real overlay mount made here):
the vfs storage driver is chosen, `info` says so with the warning through the API, `berth info`
and `docker info`, and containers run and commit; storage-driver values are checked."""

import json
import os
import subprocess
import sys

import pytest

from tests.api.conftest import ROOT, Berthd

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(os.geteuid() != 0, reason="mounts and containers need root")]


def _mount_overlay(base):
    for d in ("lower", "upper", "work", "merged"):
        os.makedirs(os.path.join(base, d))
    merged = os.path.join(base, "merged")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
                    % tuple(os.path.join(base, d) for d in ("lower", "upper", "work")), merged],
                   check=True)
    return merged


@pytest.fixture(scope="module")
def overlay_dir(tmp_path_factory):
    """An overlay mount (removed after the module): what a container's root looks like."""
    base = str(tmp_path_factory.mktemp("ovlroot"))
    merged = _mount_overlay(base)
    yield merged
    subprocess.run(["umount", "-l", merged], check=True)


@pytest.fixture(scope="module")
def vfsd(tmp_path_factory, overlay_dir, busybox_tar):
    """A berthd whose data root is on that overlay, busybox:latest loaded."""
    d = Berthd(str(tmp_path_factory.mktemp("vfsd")))
    d.data_root = os.path.join(overlay_dir, "root")
    d.start()
    with open(busybox_tar, "rb") as f:
        status, _, body = d.api("POST", "/images/load", body=f.read(),
                                headers={"Content-Type": "application/x-tar"})
    assert status == 200, body
    yield d
    d.cleanup()


def _warning(d):
    return ("WARNING: the data root %s is on overlayfs, which cannot hold an overlay upper "
            "directory: using the vfs storage driver (a full copy per container: slow, more "
            "disk). Put the data root on ext4 or xfs to use overlay2." % d.data_root)


def test_info_says_vfs_and_why_through_api_berth_and_docker(vfsd):
    status, _, body = vfsd.api("GET", "/info")
    info = json.loads(body)
    assert status == 200 and info["Driver"] == "vfs"
    assert info["Warnings"] == [_warning(vfsd)]
    assert _warning(vfsd)[len("WARNING: "):] in vfsd.log()  # berthd's log says it at start
    out = vfsd.berth("info")
    assert out.returncode == 0, out.stderr
    assert " Storage Driver: vfs\n" in out.stdout.decode()
    assert _warning(vfsd) in out.stdout.decode()
    out = vfsd.docker("info")
    assert out.returncode == 0, out.stderr
    assert "Storage Driver: vfs" in out.stdout.decode()
    assert _warning(vfsd) in out.stderr.decode()


def test_docker_run_commit_and_inspect_on_vfs(vfsd):
    out = vfsd.docker("run", "--name", "v1", "busybox", "sh", "-c",
                      "rm /etc/group && echo made > /made && echo ran")
    assert (out.returncode, out.stdout) == (0, b"ran\n"), out.stderr
    out = vfsd.docker("inspect", "-f", "{{.GraphDriver.Name}} {{.Driver}}", "v1")
    assert out.stdout == b"vfs vfs\n", out.stderr
    out = vfsd.docker("commit", "v1", "vfscommit:1")
    assert out.returncode == 0, out.stderr
    out = vfsd.docker("run", "--rm", "vfscommit:1", "sh", "-c",
                      "cat /made; test -e /etc/group && echo still-there || echo gone")
    assert (out.returncode, out.stdout) == (0, b"made\ngone\n"), out.stderr
    out = vfsd.docker("rm", "v1")
    assert out.returncode == 0, out.stderr
    out = vfsd.docker("image", "inspect", "-f", "{{.GraphDriver.Name}}", "vfscommit:1")
    assert out.stdout == b"vfs\n"


def _berthd(*args):
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main"] + list(args), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def test_validate_checks_storage_driver(tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{"storage-driver": "zfs"}')
    out = _berthd("--validate", "--config-file", str(conf))
    err = out.stderr.decode()
    assert out.returncode == 1 and err.count("\n") == 1
    assert "storage-driver 'zfs' is not supported: use overlay2 or vfs" in err and str(conf) in err
    for value in ("vfs", "overlay2", ""):
        conf.write_text(json.dumps({"storage-driver": value}))
        out = _berthd("--validate", "--config-file", str(conf))
        assert out.returncode == 0, out.stderr


def test_forced_overlay2_on_overlayfs_fails_the_start_in_one_line(tmp_path, overlay_dir):
    d = Berthd(str(tmp_path / "d"), config={"storage-driver": "overlay2"})
    d.data_root = os.path.join(overlay_dir, "forced")
    try:
        with pytest.raises(RuntimeError):
            d.start()
        assert d.proc.returncode == 1
        lines = [x for x in d.log().splitlines() if x.startswith("berthd:")]
        assert lines == ["berthd: storage-driver overlay2 cannot work: the data root %s is on "
                         "overlayfs, which cannot hold an overlay upper directory. Put the data "
                         "root on ext4 or xfs, or set \"storage-driver\": \"vfs\" (or leave it out "
                         "to fall back to vfs)" % d.data_root]
    finally:
        d.cleanup()
