"""The vfs storage driver: chosen when the data root cannot hold an overlay upper dir (here a
real overlay mount made by the test) or forced by storage-driver; whiteouts, opaque dirs, type
changes, volumes, commit (deletions as .wh. entries that overlay2 reads the same), the
writable copy going with the container, and the refusals (bad names, a store of the other
driver, overlay2 forced where it cannot work)."""

import io
import os
import subprocess
import tarfile
import uuid

import pytest

from runtime.daemon import config as cfgmod
from runtime.errors import Conflict, InvalidParameter
from runtime.store import vfs
from tests import imagefactory as f
from tests.engine.conftest import _cgroup_dirs, make_engine, remove_all_containers, run_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers and mounts need root")

LOWER = f.layer_tar([("file", "etc/motd", b"old\n"), ("dir", "data"), ("file", "data/a", b"a"),
                     ("file", "data/b", b"b"), ("file", "keep/x", b"x"), ("dir", "became"),
                     ("file", "became/inner", b"i"), ("file", "turned", b"t"),
                     ("hardlink", "data/a2", "data/a")])
UPPER = f.layer_tar([("whiteout", "bin/vi"), ("file", "etc/motd", b"new\n"),
                     ("opaque", "data"), ("file", "data/only", b"only"),
                     ("file", "became", b"now a file"), ("dir", "turned"),
                     ("file", "turned/in", b"in"), ("whiteout", "keep")])
EXPECTED_LS = "became=now a file data=only motd=new turned=in keep=gone vi=gone"
CHECK = ("echo became=$(cat /became) data=$(ls /data) motd=$(cat /etc/motd) "
         "turned=$(ls /turned) keep=$(test -e /keep && echo there || echo gone) "
         "vi=$(test -e /bin/vi && echo there || echo gone)")


@pytest.fixture(scope="module")
def layered_tar(tmp_path_factory):
    """wh:1 = busybox + LOWER + UPPER (whiteout, opaque dir, type changes both ways)."""
    return f.busybox_image_tar(tmp_path_factory.mktemp("vfsimg") / "wh.tar", ref="wh:1",
                               layers=[LOWER, UPPER])


@pytest.fixture
def overlay_root(tmp_path):
    """A data root on an overlay mount made here (as a container's or a live system's root)."""
    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    merged = tmp_path / "merged"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
                    % (tmp_path / "lower", tmp_path / "upper", tmp_path / "work"), str(merged)],
                   check=True)
    yield merged / "root"
    subprocess.run(["umount", "-l", str(merged)], check=True)


def _engine(root, **config):
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    eng = make_engine(root, dict(config, **{"cgroup-parent": parent}))
    eng.test_cgroup_parent = parent
    return eng


def _close(eng):
    remove_all_containers(eng)
    eng.close()
    for d in _cgroup_dirs(eng.test_cgroup_parent):
        if os.path.isdir(d):
            os.rmdir(d)


@pytest.fixture
def vfs_engine(tmp_path, busybox_tar, layered_tar):
    """An engine forced to vfs on ext4, busybox:latest and wh:1 loaded."""
    eng = _engine(tmp_path / "root", **{"storage-driver": "vfs"})
    for path in (busybox_tar, layered_tar):
        with open(path, "rb") as fh:
            eng.image_load(fh)
    yield eng
    _close(eng)


def test_overlay_data_root_chooses_vfs_and_runs_containers(overlay_root, busybox_tar, layered_tar):
    with open("/proc/self/mountinfo") as fh:
        assert " %s " % overlay_root.parent in fh.read()  # really on overlayfs
    eng = _engine(overlay_root)
    try:
        assert eng.storage.name == "vfs"
        info = eng.system_info()
        assert info["Driver"] == "vfs"
        assert info["Warnings"] == [
            "WARNING: the data root %s is on overlayfs, which cannot hold an overlay upper "
            "directory: using the vfs storage driver (a full copy per container: slow, more "
            "disk). Put the data root on ext4 or xfs to use overlay2." % overlay_root]
        for path in (busybox_tar, layered_tar):  # whiteouts unpack on overlayfs too
            with open(path, "rb") as fh:
                eng.image_load(fh)
        code, out, err, info = run_container(eng, CHECK, image="wh:1")
        assert (code, out.decode().strip(), err) == (0, EXPECTED_LS, b"")
        assert info["GraphDriver"] == {"Name": "vfs", "Data": None}
        assert info["Driver"] == "vfs"
        assert eng.image_inspect("wh:1")["GraphDriver"]["Name"] == "vfs"
    finally:
        _close(eng)
    # a restart keeps vfs (recorded in the store), and overlay2 forced is refused in one line
    eng = _engine(overlay_root)
    try:
        assert eng.storage.name == "vfs"
    finally:
        _close(eng)
    with pytest.raises(InvalidParameter) as exc:
        _engine(overlay_root, **{"storage-driver": "overlay2"})
    assert "\n" not in str(exc.value) and "vfs" in str(exc.value)


def test_a_data_root_without_trusted_xattrs_falls_back_to_vfs(tmp_path, busybox_tar,
                                                              layered_tar):
    """Not only overlayfs: ramfs holds devices but no trusted.* xattrs (opaque dirs), so the
    probe fails there too and says what failed."""
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mnt)], check=True)
    try:
        eng = _engine(mnt / "root")
        try:
            assert eng.storage.name == "vfs"
            assert eng.storage.warning.startswith(
                "the data root %s (on ramfs) cannot hold overlay whiteouts (Operation not "
                "supported): using the vfs storage driver" % (mnt / "root"))
            for path in (busybox_tar, layered_tar):
                with open(path, "rb") as fh:
                    eng.image_load(fh)
            code, out, err, _ = run_container(eng, CHECK, image="wh:1")
            assert (code, out.decode().strip(), err) == (0, EXPECTED_LS, b"")
        finally:
            _close(eng)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_overlay2_forced_on_overlayfs_is_refused_with_the_fix(overlay_root):
    with pytest.raises(InvalidParameter) as exc:
        _engine(overlay_root, **{"storage-driver": "overlay2"})
    msg = str(exc.value)
    assert msg.startswith("storage-driver overlay2 cannot work: the data root %s is on overlayfs"
                          % overlay_root)
    assert "ext4 or xfs" in msg and '"storage-driver": "vfs"' in msg and "\n" not in msg


def test_whiteouts_opaque_dirs_and_type_changes(vfs_engine):
    eng = vfs_engine
    assert eng.storage.name == "vfs"
    assert eng.system_info()["Driver"] == "vfs"
    assert "set in the daemon configuration" in eng.system_info()["Warnings"][0]
    top = eng.store.layer_dirs(eng.store.resolve("wh:1"))[-1]
    assert os.path.isfile(os.path.join(top, "bin/.wh.vi"))  # markers, not devices
    assert os.path.isfile(os.path.join(top, "data/.wh..wh..opq"))
    code, out, err, _ = run_container(eng, CHECK, image="wh:1")
    assert (code, out.decode().strip(), err) == (0, EXPECTED_LS, b"")
    code, out, _, _ = run_container(eng, "ls -a /data /bin | grep -c '^\\.wh\\.' || true",
                                    image="wh:1")
    assert out == b"0\n"  # no marker reaches the container


def test_lower_layer_hardlinks_and_files_are_not_changed_through_the_copy(vfs_engine):
    lower = f.layer_tar([("file", "d/a", b"one"), ("hardlink", "d/b", "d/a"),
                         ("file", "e/x", b"x"), ("hardlink", "e/y", "e/x")])
    upper = f.layer_tar([("file", "d/a", b"two")])
    path = f.busybox_image_tar(os.path.join(eng_tmp(vfs_engine), "hl.tar"), ref="hl:1",
                               layers=[lower, upper])
    with open(path, "rb") as fh:
        vfs_engine.image_load(fh)
    code, out, _, _ = run_container(vfs_engine, "cat /d/a /d/b", image="hl:1")
    assert (code, out) == (0, b"twoone")
    layers = vfs_engine.store.layer_dirs(vfs_engine.store.resolve("hl:1"))
    assert open(os.path.join(layers[1], "d/b"), "rb").read() == b"one"
    cid = vfs_engine.container_create({"Image": "hl:1", "Cmd": ["true"]})["Id"]
    copy = vfs_engine.container_upper_dir(cid)
    assert os.stat(os.path.join(copy, "e/x")).st_ino == os.stat(os.path.join(copy, "e/y")).st_ino
    assert os.stat(os.path.join(copy, "d/a")).st_ino != os.stat(os.path.join(copy, "d/b")).st_ino


def eng_tmp(eng):
    d = os.path.join(eng.data_root, "..", "tars")
    os.makedirs(d, exist_ok=True)
    return d


def test_writable_copy_is_the_containers_own_and_goes_with_it(vfs_engine):
    eng = vfs_engine
    cid = eng.container_create({"Image": "wh:1", "Cmd": ["sh", "-c", "echo mine > /etc/motd"]})["Id"]
    copy = eng.container_upper_dir(cid)
    assert copy.endswith("/rootfs") and os.path.isfile(os.path.join(copy, "bin/busybox"))
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 0
    with open(os.path.join(copy, "etc/motd")) as fh:
        assert fh.read() == "mine\n"
    _, out, _, _ = run_container(eng, "cat /etc/motd", image="wh:1")
    assert out == b"new\n"  # neither the image nor another container sees it
    before = sorted(os.listdir(eng.containers.root))
    with pytest.raises(Conflict, match="already in use"):
        eng.container_create({"Image": "wh:1", "Cmd": ["true"]},
                             name=eng.container_inspect(cid)["Name"][1:])
    assert sorted(os.listdir(eng.containers.root)) == before  # no copy left behind
    eng.container_remove(cid)
    eng.containers.flush(30)
    assert not os.path.exists(copy)


def test_volumes_and_binds(vfs_engine, tmp_path):
    eng = vfs_engine
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    eng.volume_create("vfsvol")
    try:
        code, out, err, _ = run_container(
            eng, "cat /h/in; echo hi > /v/f; echo back > /h/out; cat /v/f",
            HostConfig={"Binds": ["%s:/h" % host, "vfsvol:/v"]})
        assert (code, out, err) == (0, b"from host\nhi\n", b"")
        assert (host / "out").read_text() == "back\n"
        _, out, _, _ = run_container(eng, "cat /v/f", HostConfig={"Binds": ["vfsvol:/v"]})
        assert out == b"hi\n"
        code, _, err, _ = run_container(eng, "touch /x", HostConfig={"ReadonlyRootfs": True})
        assert code != 0 and b"Read-only file system" in err
    finally:
        eng.volume_remove("vfsvol")


def _layer_names(eng, image_id):
    diff_id = eng.store.diff_ids(image_id)[-1]
    with tarfile.open(fileobj=io.BytesIO(eng.store.open_blob(diff_id).read())) as tf:
        return sorted(tf.getnames())


def test_commit_records_additions_changes_and_deletions(vfs_engine, tmp_path):
    eng = vfs_engine
    cid = eng.container_create({"Image": "wh:1", "Cmd": ["sh", "-c",
                                "rm -r /data/only /became /bin/ls && echo added > /added && "
                                "echo changed > /etc/motd && mkdir -p /new/deep && "
                                "echo d > /new/deep/f && rm /turned/in"]})["Id"]
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 0
    image_id = eng.image_commit(cid, repo="committed", tag="1")
    names = _layer_names(eng, image_id)
    assert names == [".wh.became", "added", "bin", "bin/.wh.ls", "data", "data/.wh.only", "etc",
                     "etc/motd", "new", "new/deep", "new/deep/f", "turned", "turned/.wh.in"]
    check = ("ls /data | wc -l; test -e /became || echo no-became; test -e /bin/ls || echo no-ls; "
             "cat /added /etc/motd /new/deep/f; ls /turned | wc -l; cat /keep/x 2>&1 | wc -l")
    want = b"0\nno-became\nno-ls\nadded\nchanged\nd\n0\n1\n"
    code, out, err, _ = run_container(eng, check, image="committed:1")
    assert (code, out, err) == (0, want, b"")
    # a layer on top of those whiteouts: only the new change, and the deletions stay
    cid = eng.container_create({"Image": "committed:1", "Cmd": ["mkdir", "/more"]})["Id"]
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 0
    again = eng.image_commit(cid, repo="committed", tag="2")
    assert _layer_names(eng, again) == ["more"]
    code, out, err, _ = run_container(eng, check + "; ls -d /more", image="committed:2")
    assert (code, out, err) == (0, want + b"/more\n", b"")
    # the same image on an overlay2 engine (ext4 here) means the same
    eng.image_save(["committed:1"], open(tmp_path / "c.tar", "wb"))
    other = _engine(tmp_path / "ovl")
    try:
        assert other.storage.name == "overlay2"
        with open(tmp_path / "c.tar", "rb") as fh:
            other.image_load(fh)
        code, out, err, _ = run_container(other, check, image="committed:1")
        assert (code, out, err) == (0, want, b"")
    finally:
        _close(other)


def test_unchanged_container_commits_an_empty_layer(vfs_engine):
    eng = vfs_engine
    cid = eng.container_create({"Image": "wh:1", "Cmd": ["true"]})["Id"]
    eng.container_start(cid)
    eng.container_wait(cid)
    assert _layer_names(eng, eng.image_commit(cid)) == []


def test_image_index_applies_markers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for p in ("d/x", "d/y", "f", "g/z"):
        (a / p).parent.mkdir(parents=True, exist_ok=True)
        (a / p).write_text(p)
    (b / "d").mkdir(parents=True)
    (b / "d/.wh..wh..opq").write_text("")
    (b / "d/n").write_text("n")
    (b / ".wh.f").write_text("")
    (b / "g").write_text("file now")
    index = vfs.image_index([str(a), str(b)])
    assert sorted(index) == ["d", "d/n", "g"]
    assert index["g"] == str(b / "g")


def test_bad_storage_driver_values_are_refused(tmp_path):
    with pytest.raises(InvalidParameter, match="storage-driver 'aufs' is not supported: use "
                                               "overlay2 or vfs"):
        make_engine(tmp_path / "root", {"storage-driver": "aufs"})
    with pytest.raises(cfgmod.ConfigError, match="storage-driver 'devicemapper' is not supported"):
        cfgmod.parse('{"storage-driver": "devicemapper"}', "daemon.json")
    assert cfgmod.parse('{"storage-driver": "vfs"}', "daemon.json") == {"storage-driver": "vfs"}


def test_a_store_of_one_driver_is_refused_by_the_other(tmp_path, busybox_tar):
    eng = _engine(tmp_path / "root")
    try:
        assert eng.storage.name == "overlay2"
        with open(busybox_tar, "rb") as fh:
            eng.image_load(fh)
    finally:
        _close(eng)
    with pytest.raises(InvalidParameter, match="was made by the overlay2 storage driver and "
                                               "cannot be used with vfs"):
        _engine(tmp_path / "root", **{"storage-driver": "vfs"})
    eng = _engine(tmp_path / "root2", **{"storage-driver": "vfs"})
    try:
        with open(busybox_tar, "rb") as fh:
            eng.image_load(fh)
    finally:
        _close(eng)
    with pytest.raises(InvalidParameter, match="made by the vfs storage driver and cannot be "
                                               "used with overlay2"):
        _engine(tmp_path / "root2", **{"storage-driver": "overlay2"})
    eng = _engine(tmp_path / "root2")  # not forced: the store's driver, with a warning
    try:
        assert eng.storage.name == "vfs" and "made by the vfs" in eng.storage.warning
    finally:
        _close(eng)


def test_diff_tar_leaves_sockets_out(tmp_path):
    import socket
    layer, root = tmp_path / "layer", tmp_path / "root"
    layer.mkdir()
    (layer / "f").write_text("f")
    root.mkdir()
    (root / "g").write_text("g")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    try:
        buf = io.BytesIO()
        vfs.diff_tar(str(root), [str(layer)], buf)
    finally:
        s.close()
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        assert tf.getnames() == [".wh.f", "g"]
