"""Bad input to the image store: refused with one clear line, and the store exactly as before.
Plus concurrent loads from threads and from separate processes."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from runtime.errors import InvalidParameter, NotFound
from tests import imagefactory as f


def snapshot(root):
    """Every path under the store with its type, size and mode (the lock file aside)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if p == os.path.join(root, "lock"):
                continue
            st = os.lstat(p)
            out.add((os.path.relpath(p, root), st.st_mode, 0 if os.path.isdir(p) else st.st_size))
    return out


@pytest.fixture
def loaded(engine, busybox_image):
    """An engine with busybox loaded; returns (engine, snapshot before the bad input)."""
    return engine, snapshot(engine.store.root)


def _refuse(engine, before, data, match, kind=InvalidParameter):
    with pytest.raises(kind) as err:
        engine.image_load(io.BytesIO(data))
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert match in msg, msg
    assert snapshot(engine.store.root) == before
    return msg


def _archive_bytes(tmp_path, layer, name="bad.tar", **kw):
    path = f.busybox_image_tar(tmp_path / name, "bad:1", layers=[layer], **kw)
    return path.read_bytes()


@pytest.mark.parametrize("entries, match", [
    ([("file", "../evil", b"x")], "'../evil' climbs out"),
    ([("file", "a/../../evil", b"x")], "climbs out"),
    ([("file", "/abs", b"x")], "'/abs' has an absolute path"),
    ([("symlink", "d", "{outside}"), ("file", "d/pwned", b"x")], "through the symlink 'd'"),
    ([("symlink", "d", "../../../../../../.."), ("file", "d/{outside_rel}/pwned", b"x")],
     "through the symlink"),
    ([("symlink", "d", "{outside}"), ("whiteout", "d/pwned")], "through the symlink"),
    ([("symlink", "d", "{outside}"), ("opaque", "d")], "through the symlink"),
    ([("hardlink", "h", "../../../etc/passwd")], "climbs out"),
    ([("hardlink", "h", "/etc/passwd")], "absolute path"),
    ([("symlink", "d", "/etc"), ("hardlink", "h", "d/passwd")], "through the symlink"),
    ([("hardlink", "h", "not/here")], "not in this layer"),
])
def test_escaping_layers_are_refused(loaded, tmp_path, entries, match):
    engine, before = loaded
    outside = tmp_path / "outside"
    outside.mkdir()
    fill = {"outside": str(outside), "outside_rel": str(outside).lstrip("/")}
    entries = [tuple(e.format(**fill) if isinstance(e, str) else e for e in ent) for ent in entries]
    _refuse(engine, before, _archive_bytes(tmp_path, f.layer_tar(entries)), match)
    assert os.listdir(outside) == []


def test_symlink_replaced_by_a_file_does_not_write_through(engine, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("safe")
    layer = f.layer_tar([("symlink", "f", str(victim)), ("file", "f", b"pwned")])
    with open(f.busybox_image_tar(tmp_path / "ok.tar", "ok:1", layers=[layer]), "rb") as fh:
        engine.image_load(fh)
    top = engine.store.layer_dirs(engine.store.resolve("ok:1"))[-1]
    assert victim.read_text() == "safe"
    assert open(os.path.join(top, "f"), "rb").read() == b"pwned"


def test_truncated_archives(loaded, tmp_path):
    engine, before = loaded
    data = _archive_bytes(tmp_path, f.layer_tar([("file", "big", os.urandom(300000))]))
    _refuse(engine, before, data[:len(data) // 2], "truncated")
    # a complete archive whose layer tar itself stops inside a file
    layer = f.layer_tar([("file", "big", os.urandom(300000))])
    cut = layer[:100000]
    img = f.Image("cut:1", [f.busybox_layer_tar(), cut])
    f.oci_layout_tar(tmp_path / "cut.tar", [img])
    _refuse(engine, before, (tmp_path / "cut.tar").read_bytes(), "truncated inside entry 'big'")


def test_digest_mismatch_names_both(loaded, tmp_path):
    engine, before = loaded
    f.oci_layout_tar(tmp_path / "oci.tar", [f.Image("m:1", [f.busybox_layer_tar()])])
    members = {}
    with tarfile.open(tmp_path / "oci.tar") as tf:
        for m in tf.getmembers():
            members[m.name] = (m, tf.extractfile(m).read() if m.isfile() else None)
    index = json.loads(members["index.json"][1])
    man_name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    man = json.loads(members[man_name][1])
    layer_name = "blobs/sha256/" + man["layers"][0]["digest"][7:]
    bad = bytearray(members[layer_name][1])
    bad[-1] ^= 1
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, (m, data) in members.items():
            if name == layer_name:
                data = bytes(bad)
            m.size = len(data) if data is not None else 0
            tf.addfile(m, io.BytesIO(data) if data is not None else None)
    msg = _refuse(engine, before, buf.getvalue(), "digest mismatch")
    assert man["layers"][0]["digest"] in msg and hashlib.sha256(bad).hexdigest() in msg


def test_put_blob_mismatch_leaves_nothing(loaded):
    engine, before = loaded
    want = "sha256:" + "0" * 64
    with pytest.raises(InvalidParameter) as err:
        engine.store.put_blob(io.BytesIO(b"hello"), expected_digest=want)
    assert want in str(err.value) and f.sha256(b"hello") in str(err.value)
    with pytest.raises(InvalidParameter, match="truncated"):
        engine.store.put_blob(io.BytesIO(b"hello"), size=10)
    assert snapshot(engine.store.root) == before
    digest = engine.store.put_blob(io.BytesIO(b"hello"), expected_digest=f.sha256(b"hello"))
    assert engine.store.has_blob(digest) and engine.store.open_blob(digest).read() == b"hello"


def test_config_diff_id_mismatch(loaded, tmp_path):
    engine, before = loaded
    img = f.Image("x:1", [f.busybox_layer_tar(), f.layer_tar([("file", "a", b"a")])])
    layers, config = img.blobs()
    cfg = json.loads(config)
    cfg["rootfs"]["diff_ids"][1] = "sha256:" + "1" * 64
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for data, diff, _ in layers:
            add(diff[7:] + "/layer.tar", data)
        add("c.json", json.dumps(cfg).encode())
        add("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": [
            d[7:] + "/layer.tar" for _, d, _ in layers]}]).encode())
    _refuse(engine, before, buf.getvalue(), "sha256:" + "1" * 64)


@pytest.mark.parametrize("media_type", ["application/vnd.oci.image.layer.v1.tar+zstd",
                                        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                        "application/x-nonsense"])
def test_unknown_media_types_are_refused_by_name(loaded, tmp_path, media_type):
    engine, before = loaded
    f.oci_layout_tar(tmp_path / "o.tar", [f.Image("z:1", [f.busybox_layer_tar()])])
    # change the layer's media type in the manifest, whose digest changes too: rebuild around it
    with tarfile.open(tmp_path / "o.tar") as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    old = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    man = files.pop(old).replace(f.LAYER_TAR.encode() + b'"', media_type.encode() + b'"')
    files["blobs/sha256/" + f.sha256(man)[7:]] = man
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = f.sha256(man), len(man)
    files["index.json"] = json.dumps(index).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    msg = _refuse(engine, before, buf.getvalue(), media_type)
    assert "unsupported layer media type" in msg
    digest = engine.store.put_blob(io.BytesIO(f.busybox_layer_tar()))
    with pytest.raises(InvalidParameter, match="unsupported layer media type"):
        engine.store.unpack_layer(digest, media_type)


def test_not_an_archive_and_bad_references(loaded):
    engine, before = loaded
    _refuse(engine, before, b"hello world" * 100, "not a tar archive")
    _refuse(engine, before, f.layer_tar([("file", "x", b"1")]), "neither manifest.json")
    for call in (lambda: engine.image_inspect("Bad:Name"), lambda: engine.image_tag("busybox", "Bad:Name"),
                 lambda: engine.image_remove("Bad:Name"),
                 lambda: engine.image_save(["Bad:Name"], io.BytesIO())):
        with pytest.raises(InvalidParameter, match="invalid reference format"):
            call()
    for call in (lambda: engine.image_inspect("nope"), lambda: engine.image_remove("nope:1"),
                 lambda: engine.image_history("nope"), lambda: engine.image_save(["nope"], io.BytesIO())):
        with pytest.raises(NotFound, match="No such image: nope"):
            call()
    assert snapshot(engine.store.root) == before


def test_concurrent_loads_from_threads_and_processes(engine, tmp_path):
    shared = f.layer_tar([("file", "shared", b"s" * 100000)])
    paths = []
    for i in range(4):
        paths.append(f.busybox_image_tar(tmp_path / ("c%d.tar" % i), "conc:%d" % i,
                                         layers=[shared, f.layer_tar([("file", "own", b"%d" % i)])]))
    errors = []

    def load(p):
        try:
            with open(p, "rb") as fh:
                engine.image_load(fh)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=load, args=(p,)) for p in paths[:2]]
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from tests.engine.conftest import make_engine\n"
              "e = make_engine(sys.argv[1])\n"
              "print(e.image_load(open(sys.argv[2], 'rb')))\n") % os.getcwd()
    procs = [subprocess.Popen([sys.executable, "-c", script, engine.data_root, str(p)])
             for p in paths[2:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert errors == []
    ids = {engine.store.resolve("conc:%d" % i) for i in range(4)}
    assert len(ids) == 4
    layers = os.listdir(os.path.join(engine.store.root, "layers"))
    assert len(layers) == 1 + 1 + 4  # busybox, shared, one own layer each
    assert os.listdir(engine.store.tmp) == []
    for i in range(4):
        top = engine.store.layer_dirs(engine.store.resolve("conc:%d" % i))
        assert open(os.path.join(top[-1], "own"), "rb").read() == b"%d" % i


def test_store_lock_is_not_kept_by_a_forked_child(engine):
    """A process forked while the store is locked (a container monitor, say) must not keep
    the lock once the parent lets go."""
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except OSError:\n    sys.exit(1)\n")
    path = engine.store.lock.path
    with engine.store.lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child only waits to be killed
            import time
            time.sleep(30)
            os._exit(0)
        try:
            assert subprocess.run([sys.executable, "-c", probe, path]).returncode == 1
        except BaseException:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise
    try:
        assert subprocess.run([sys.executable, "-c", probe, path]).returncode == 0
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_parallel_unpacks_of_one_blob_share_one_layer(engine):
    import gzip
    data = gzip.compress(f.layer_tar([("file", "x/%d" % i, b"%d" % i) for i in range(300)]), 1)
    digest = engine.store.put_blob(io.BytesIO(data))
    media = "application/vnd.oci.image.layer.v1.tar+gzip"
    got, errors = [], []

    def work():
        try:
            got.append(engine.store.unpack_layer(digest, media))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(got)) == 1
    assert got[0] == f.sha256(gzip.decompress(data))
    assert os.listdir(os.path.join(engine.store.root, "layers")) == [got[0][7:]]
    assert len(os.listdir(os.path.join(engine.store.layers.diff_dir(got[0]), "x"))) == 300
    assert os.listdir(engine.store.tmp) == []
