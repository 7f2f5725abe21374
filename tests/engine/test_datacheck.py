"""The data root's checker (runtime/datacheck.py): a clean store has no findings; each kind of
damage is found with the right fix; --repair applies only the safe ones and never removes a
complete image, container or volume; the engine's start repairs what was never complete and
keeps interrupted downloads for reuse."""

import json
import os
import subprocess
import sys

import pytest

from runtime import datacheck
from runtime.findings import MANUAL, SAFE
from runtime.store import newlayer
from runtime.store.refs import ReferenceStore
from tests.engine.conftest import make_engine, remove_all_containers
from tests.engine.test_vfs import layered_tar, vfs_engine  # noqa: F401 (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _check(eng, deep=True):
    return datacheck.check(eng.data_root, eng.store, deep=deep)


def _berthd_check(data_root, *extra):
    base = os.path.dirname(str(data_root))
    config = os.path.join(base, "daemon.json")
    with open(config, "w") as f:
        f.write("{}")
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main", "--data-root",
                           str(data_root), "-H", "unix://" + os.path.join(base, "none.sock"),
                           "--config-file", config, "--check-store"] + list(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), universal_newlines=True)


@pytest.fixture
def populated(engine, busybox_image):
    """busybox, a commit on top of it, a volume and a container using it."""
    eng = engine
    eng.volume_create("keepvol")
    c = eng.container_create({"Image": busybox_image, "Cmd": ["true"],
                              "HostConfig": {"Binds": ["keepvol:/v"]}})
    with open(os.path.join(eng.container_upper_dir(c["Id"]), "added"), "w") as f:
        f.write("x")
    committed = newlayer.commit(eng.store, eng.container_upper_dir(c["Id"]),
                                eng.store.resolve(busybox_image), ["mine:1"])
    yield eng, c["Id"], committed
    remove_all_containers(eng)
    eng.containers.flush(10)
    eng.close()


def test_clean_store_has_no_findings(populated):
    eng, _, _ = populated
    assert [f.line() for f in _check(eng)] == []
    assert datacheck.report(_check(eng, deep=False)) == {"Findings": [], "Problems": 0,
                                                         "Partial": 0}


def test_damage_is_found_and_only_safe_fixes_apply(populated, tmp_path):
    eng, cid, _ = populated
    store = eng.store
    image_id = store.resolve("busybox")
    rec = store.record(image_id)
    layer_blob = rec["layers"][0]["digest"]
    # leftovers of interrupted operations (safe)
    os.makedirs(os.path.join(store.tmp, "layer-999999-abc", "diff"))
    orphan_layer = os.path.join(store.layers.layers, "c" * 64, "diff")
    os.makedirs(orphan_layer)
    orphan_blob = store.blobs.put_bytes(b"a download nobody finished")
    half_container = os.path.join(eng.data_root, "containers", "d" * 64)
    os.makedirs(os.path.join(half_container, "upper"))
    half_volume = os.path.join(eng.data_root, "volumes", "halfvol")
    os.makedirs(os.path.join(half_volume, "_data"))
    with store.lock:
        store.refs.set(["docker.io/library/ghost:latest"], "sha256:" + "e" * 64)
    with open(store.refs.log_path, "a") as f:  # a tag's append cut short by a crash
        f.write('{"set": {"docker.io/library/torn:1": "sha')
    os.unlink(os.path.join(store.layers.links, rec["layers"][0]["diffId"][7:19]))
    # damage to complete things (manual): a corrupt layer blob, a volume's _data gone
    blob_path = store.blob_path(layer_blob)
    os.chmod(blob_path, 0o644)
    with open(blob_path, "r+b") as f:
        f.seek(100)
        f.write(b"XXXX")
    os.rmdir(os.path.join(eng.data_root, "volumes", "keepvol", "_data"))

    found = _check(eng)
    by = {(f.area, f.repair) for f in found}
    lines = "\n".join(f.line() for f in found)
    assert ("blob", MANUAL) in by, lines
    assert any(f.area == "blob" and f.subject == layer_blob and "hashes to" in f.problem
               for f in found), lines
    assert any(f.area == "volume" and f.subject == "keepvol" and f.repair == MANUAL
               for f in found), lines
    for needle in ("layer-999999-abc", "c" * 64, orphan_blob, "d" * 12, "halfvol", "ghost",
                   "short link", "cut short"):
        assert any(needle in f.line() and f.repair == SAFE for f in found), (needle, lines)
    # the quick check does not hash: the corrupt blob is not seen, the rest is
    quick = _check(eng, deep=False)
    assert not any("hashes to" in f.problem for f in quick if f.subject == layer_blob)

    eng.close()
    out = _berthd_check(eng.data_root, "--repair")
    assert out.returncode == 1, out.stdout + out.stderr  # the manual ones are left
    assert "[repaired]" in out.stdout and "[manual]" in out.stdout, out.stdout
    for path in (orphan_layer, half_container, half_volume, store.blob_path(orphan_blob)):
        assert not os.path.exists(path), path
    refs = ReferenceStore(store.refs.path)
    assert not refs.torn() and "docker.io/library/ghost:latest" not in refs.all()
    # nothing complete went: the image (with its corrupt blob), the container, the volume
    assert os.path.exists(blob_path)
    assert store.resolve("busybox") == image_id
    assert os.path.isfile(os.path.join(eng.data_root, "containers", cid, "config.v2.json"))
    assert os.path.isfile(os.path.join(eng.data_root, "volumes", "keepvol", "volume.json"))
    assert store.refs.get("docker.io/library/ghost:latest") is None
    left = _check(eng)
    assert {f.repair for f in left} == {MANUAL}, "\n".join(f.line() for f in left)
    out = _berthd_check(eng.data_root)
    assert out.returncode == 1 and "need a decision" in out.stdout
    # undo the damage so the fixture's cleanup runs on a sane store
    os.mkdir(os.path.join(eng.data_root, "volumes", "keepvol", "_data"))


def test_container_record_problems_are_manual(populated):
    eng, cid, _ = populated
    path = os.path.join(eng.data_root, "containers", cid)
    os.rename(os.path.join(path, "upper"), os.path.join(path, "upper.away"))
    with open(os.path.join(path, "state.json"), "w") as f:  # a start whose monitor died
        json.dump({"Pid": 999999999, "PidStart": 1, "MonitorPid": 999999998, "MonitorStart": 1}, f)
    found = [f for f in _check(eng) if f.area == "container"]
    lines = "\n".join(f.line() for f in found)
    assert any("upper/ directory is missing" in f.problem and f.repair == MANUAL
               for f in found), lines
    assert any("monitor died" in f.problem and f.repair == "none" for f in found), lines
    assert datacheck.repair(found) == 0
    assert os.path.isdir(path)
    os.rename(os.path.join(path, "upper.away"), os.path.join(path, "upper"))


def test_start_repairs_the_incomplete_and_keeps_downloads(engine, busybox_image, tmp_path):
    eng = engine
    store = eng.store
    orphan_blob = store.blobs.put_bytes(b"half a pull")
    half_container = os.path.join(eng.data_root, "containers", "f" * 64)
    os.makedirs(os.path.join(half_container, "work"))
    half_volume = os.path.join(eng.data_root, "volumes", "halfvol")
    os.makedirs(os.path.join(half_volume, "_data"))
    temp_record = os.path.join(store.images_dir, "x.json.0123.tmp")
    open(temp_record, "w").close()
    eng.close()

    again = make_engine(eng.data_root)
    try:
        repaired = [f for f in again.start_findings if f.repaired]
        assert len(repaired) == 3, [f.line() for f in again.start_findings]
        assert not os.path.exists(half_container) and not os.path.exists(half_volume)
        assert not os.path.exists(temp_record)
        assert store.has_blob(orphan_blob)  # a pull may reuse it
        rest = _check(again)
        assert [f.partial for f in rest] == [True], [f.line() for f in rest]
        assert again.store.resolve("busybox")
    finally:
        again.close()


def test_vfs_store_and_containers(vfs_engine):  # noqa: F811 (the fixture imported above)
    """On vfs: the layers hold marker files (no finding), a container's root is its rootfs/
    copy; an overlay whiteout device in a vfs layer is found."""
    eng = vfs_engine
    c = eng.container_create({"Image": "wh:1", "Cmd": ["true"]})
    assert [f.line() for f in _check(eng)] == []
    rootfs = os.path.join(eng.data_root, "containers", c["Id"], "rootfs")
    os.rename(rootfs, rootfs + ".away")
    top = eng.store.layer_dirs(eng.store.resolve("wh:1"))[-1]
    os.mknod(os.path.join(top, "stray"), 0o600 | 0o020000, os.makedev(0, 0))
    try:
        lines = [f.line() for f in _check(eng)]
        assert any("rootfs/ directory is missing" in x and "[manual]" in x for x in lines), lines
        assert any("overlay whiteout device stray in a vfs store" in x for x in lines), lines
    finally:
        os.unlink(os.path.join(top, "stray"))
        os.rename(rootfs + ".away", rootfs)
