"""The image store through the engine: load, refs, inspect, tag, rmi, history, import, commit,
whiteouts on disk and under a real overlay mount, 100+ layer images."""

import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound
from runtime.store import newlayer, overlay
from runtime.store.refs import LOG_MIN, ReferenceStore
from runtime.store.unpack import OPAQUE_XATTR
from tests import imagefactory as f


def _load(engine, path):
    with open(path, "rb") as fh:
        return engine.image_load(fh)


@pytest.fixture
def mnt(tmp_path):
    """Mount points under tmp_path, unmounted at the end whatever happens."""
    mounted = []

    def mount(image_store, image_id, name, writable=False):
        target = tmp_path / name
        target.mkdir()
        base, lower = image_store.mount_lowerdir_option(image_id)
        upper = work = None
        if writable:
            upper, work = tmp_path / (name + ".upper"), tmp_path / (name + ".work")
            upper.mkdir()
            work.mkdir()
        overlay.mount_overlay(str(target), base, lower, upper and str(upper), work and str(work))
        mounted.append(str(target))
        return target

    yield mount
    for m in reversed(mounted):
        overlay.umount(m, detach=True)


def test_load_resolves_every_reference_form(engine, busybox_image):
    store = engine.store
    image_id = store.resolve("busybox")
    assert image_id.startswith("sha256:") and len(image_id) == 71
    for ref in ("busybox:latest", "docker.io/library/busybox:latest", "library/busybox",
                image_id, image_id[7:], image_id[7:19], "sha256:" + image_id[7:15]):
        assert store.resolve(ref) == image_id, ref
    with pytest.raises(NotFound, match="No such image: busybox:1.36"):
        store.resolve("busybox:1.36")
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        store.resolve("Bad:Name")
    engine.image_tag("busybox", "localhost:5000/x/y", "tag")
    engine.image_tag("busybox", "busybox:1.36")
    assert store.resolve("localhost:5000/x/y:tag") == image_id
    assert sorted(engine.image_inspect(image_id)["RepoTags"]) == [
        "busybox:1.36", "busybox:latest", "localhost:5000/x/y:tag"]
    digest = "busybox@sha256:" + "ab" * 32
    store.tag("busybox", digest)
    assert store.resolve(digest) == image_id
    assert engine.image_inspect("busybox")["RepoDigests"] == [digest]


def test_inspect_list_history_shapes(engine, busybox_image):
    info = engine.image_inspect(busybox_image)
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["sh"] and info["Os"] == "linux"
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert info["Size"] > 1000000
    [summary] = engine.image_list()
    assert summary["Id"] == info["Id"] and summary["RepoTags"] == ["busybox:latest"]
    assert summary["Created"] == 1700000000  # the config's 2023-11-14T22:13:20Z
    hist = engine.image_history("busybox")
    assert hist[0]["Id"] == info["Id"] and hist[0]["Tags"] == ["busybox:latest"]
    assert hist[0]["Size"] > 1000000
    assert engine.image_list(filters={"dangling": ["true"]}) == []
    assert len(engine.image_list(filters={"reference": ["busy*"]})) == 1
    assert engine.image_list(filters={"before": ["busybox"]}) == []
    with pytest.raises(InvalidParameter, match="invalid filter"):
        engine.image_list(filters={"colour": ["red"]})


def test_a_listing_kept_in_memory_follows_record_rewrites(engine, busybox_image):
    """ImageStore.listed() is read once, then forgotten when the record is rewritten (here a
    new parent, as a build or commit of the same config would record) or removed; an rmi
    whose recorded parent is gone removes the image and stops its prune there."""
    store = engine.store
    image_id = store.resolve(busybox_image)
    assert engine.image_list()[0]["ParentId"] == ""
    assert store.listed(image_id) is store.listed(image_id)  # kept
    rec = store.record(image_id)
    rec["parent"] = "sha256:" + "cd" * 32
    store._write_record(rec)
    assert engine.image_list()[0]["ParentId"] == "sha256:" + "cd" * 32
    engine.image_remove(busybox_image, force=True)
    assert engine.image_list() == []
    with pytest.raises(NotFound):
        store.listed(image_id)


def test_layer_dirs_hold_real_busybox(engine, busybox_image):
    [layer] = engine.store.layer_dirs(engine.store.resolve(busybox_image))
    assert os.path.isabs(layer)
    out = subprocess.run(["chroot", layer, "/bin/sh", "-c", "echo hi from $(basename $0); id -u"],
                         stdout=subprocess.PIPE, check=True).stdout
    assert out == b"hi from sh\n0\n"
    assert os.readlink(os.path.join(layer, "bin/sh")) == "/bin/busybox"
    assert stat.S_IMODE(os.stat(os.path.join(layer, "tmp")).st_mode) == 0o1777


def test_whiteouts_mark_upper_and_keep_lower(engine, tmp_path, mnt):
    upper = f.layer_tar([("whiteout", "bin/vi"), ("file", "etc/motd", b"new\n"),
                         ("opaque", "root"), ("file", "root/only", b"x")])
    lower_extra = f.layer_tar([("file", "root/old", b"old"), ("file", "etc/motd", b"old\n")])
    f.busybox_image_tar(tmp_path / "wh.tar", "wh:1", layers=[lower_extra, upper])
    _load(engine, tmp_path / "wh.tar")
    image_id = engine.store.resolve("wh:1")
    base, mid, top = engine.store.layer_dirs(image_id)
    st = os.lstat(os.path.join(top, "bin/vi"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "root"), OPAQUE_XATTR) == b"y"
    assert not os.path.exists(os.path.join(top, ".wh..wh..opq"))
    assert os.path.islink(os.path.join(base, "bin/vi"))  # the lower layer keeps it
    assert open(os.path.join(mid, "root/old"), "rb").read() == b"old"
    root = mnt(engine.store, image_id, "merged")
    assert not os.path.lexists(root / "bin/vi")
    assert sorted(os.listdir(root / "root")) == ["only"]
    assert (root / "etc/motd").read_bytes() == b"new\n"
    assert (root / "bin/ls").is_symlink()


def test_a_120_layer_image_mounts(engine, tmp_path, mnt):
    layers = [f.layer_tar([("file", "layers/%03d" % i, b"%d" % i)]) for i in range(120)]
    f.busybox_image_tar(tmp_path / "tall.tar", "tall:1", layers=layers)
    _load(engine, tmp_path / "tall.tar")
    image_id = engine.store.resolve("tall:1")
    base, lower = engine.store.mount_lowerdir_option(image_id)
    absolute = ":".join(reversed(engine.store.layer_dirs(image_id)))
    assert len(lower) < 4096 < len("lowerdir=" + absolute)  # why the short names exist
    root = mnt(engine.store, image_id, "tall", writable=True)
    assert len(os.listdir(root / "layers")) == 120
    assert (root / "layers/119").read_bytes() == b"119"
    (root / "layers/new").write_bytes(b"w")
    assert (tmp_path / "tall.upper/layers/new").read_bytes() == b"w"


def test_layers_are_shared_between_images(engine, tmp_path):
    extra = f.layer_tar([("file", "a", b"a")])
    f.busybox_image_tar(tmp_path / "one.tar", "one:1", layers=[extra], cmd=["one"])
    f.busybox_image_tar(tmp_path / "two.tar", "two:1", cmd=["two"])
    _load(engine, tmp_path / "one.tar")
    _load(engine, tmp_path / "two.tar")
    one = engine.store.layer_dirs(engine.store.resolve("one:1"))
    two = engine.store.layer_dirs(engine.store.resolve("two:1"))
    assert one[0] == two[0]
    assert len(os.listdir(os.path.join(engine.store.root, "layers"))) == 2
    engine.image_remove("one:1")
    assert os.path.isdir(two[0]) and not os.path.exists(one[1])
    assert engine.store.resolve("two:1")


def test_rmi_untags_then_deletes_and_refuses_in_use(engine, busybox_image):
    store = engine.store
    image_id = store.resolve("busybox")
    engine.image_tag("busybox", "other", "1")
    assert engine.image_remove("other:1") == [{"Untagged": "other:1"}]
    engine.image_tag("busybox", "other", "1")
    with pytest.raises(Conflict, match="multiple repositories"):
        engine.image_remove(image_id[7:19])
    engine.image_remove("other:1")
    engine.containers_using_image = lambda i: ["c0ffee" * 10] if i == image_id else []
    try:
        with pytest.raises(Conflict, match="being used|is using"):
            engine.image_remove("busybox")
        assert store.resolve("busybox") == image_id
        assert engine.image_remove("busybox", force=True) == [{"Untagged": "busybox:latest"}]
        assert store.resolve(image_id) == image_id  # untagged, kept for its container
        assert engine.image_list(filters={"dangling": ["true"]})[0]["Id"] == image_id
    finally:
        del engine.containers_using_image
    out = engine.image_remove(image_id)
    assert out == [{"Deleted": image_id}]
    with pytest.raises(NotFound):
        store.resolve(image_id)
    assert os.listdir(os.path.join(store.root, "layers")) == []
    assert os.listdir(os.path.join(store.root, "blobs/sha256")) == []


def test_import_with_changes(engine, tmp_path):
    rootfs = f.busybox_rootfs(tmp_path / "rootfs")
    data = f.tar_dir(rootfs)
    import gzip
    image_id = engine.image_import(io.BytesIO(gzip.compress(data, 1)), "imported", "v1",
                                   changes=['CMD ["/bin/sh", "-c", "echo $A"]', "ENV A=b C=d",
                                            "WORKDIR /tmp", "EXPOSE 80"], message="from test")
    info = engine.image_inspect("imported:v1")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["/bin/sh", "-c", "echo $A"]
    assert info["Config"]["Env"] == ["A=b", "C=d"] and info["Config"]["WorkingDir"] == "/tmp"
    assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["RootFS"]["Layers"] == [f.sha256(data)]
    assert engine.image_history(image_id)[0]["Comment"] == "from test"
    with pytest.raises(InvalidParameter, match="RUN is not a valid change"):
        engine.image_import(io.BytesIO(data), changes=["RUN true"])


def test_commit_turns_upper_dir_into_a_layer(engine, busybox_image, tmp_path, mnt):
    store = engine.store
    parent = store.resolve(busybox_image)
    root = mnt(store, parent, "c1", writable=True)
    (root / "etc/motd").write_text("committed\n")
    os.unlink(root / "bin/vi")
    subprocess.run(["rm", "-rf", str(root / "root")], check=True)
    (root / "root").mkdir()
    (root / "root/fresh").write_text("x")
    (root / "tmp/big").write_bytes(os.urandom(100000))
    os.link(root / "tmp/big", root / "tmp/big2")
    upper = tmp_path / "c1.upper"
    assert stat.S_ISCHR(os.lstat(upper / "bin/vi").st_mode)
    new = newlayer.commit(store, str(upper), parent, refs=["committed:1"], changes=["ENV X=1"],
                          comment="msg", author="me")
    cfg = store.image_config(new)
    assert cfg["config"]["Env"][-1] == "X=1" and cfg["config"]["Cmd"] == ["sh"]
    assert cfg["rootfs"]["diff_ids"][0] == store.image_config(parent)["rootfs"]["diff_ids"][0]
    assert len(cfg["history"]) == 2 and cfg["author"] == "me"
    top = store.layer_dirs(new)[-1]
    assert stat.S_ISCHR(os.lstat(os.path.join(top, "bin/vi")).st_mode)
    assert os.path.samefile(os.path.join(top, "tmp/big"), os.path.join(top, "tmp/big2"))
    # the layer blob is a real tar with .wh. entries (pushable / saveable)
    layer_blob = store.record(new)["layers"][-1]["digest"]
    with tarfile.open(store.blob_path(layer_blob)) as tf:
        names = tf.getnames()
    assert "bin/.wh.vi" in names and "etc/motd" in names
    merged = mnt(store, new, "c2")
    assert (merged / "etc/motd").read_text() == "committed\n"
    assert not os.path.lexists(merged / "bin/vi")
    assert os.listdir(merged / "root") == ["fresh"]
    assert engine.image_history("committed:1")[0]["Comment"] == "msg"


def test_save_then_load_into_a_fresh_engine(engine, busybox_image, tmp_path):
    from tests.engine.conftest import make_engine
    engine.image_tag("busybox", "busybox", "2")
    out = tmp_path / "saved.tar"
    with open(out, "wb") as fh:
        engine.image_save(["busybox:latest", "busybox:2"], fh)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert manifest[0]["RepoTags"] == ["busybox:latest", "busybox:2"]
    other = make_engine(tmp_path / "other")
    assert sorted(_load(other, out)) == ["busybox:2", "busybox:latest"]
    assert other.store.resolve("busybox:2") == engine.store.resolve("busybox")
    # a bare repository name saves all its tags, as docker save does
    with open(out, "wb") as fh:
        engine.image_save(["docker.io/library/busybox"], fh)
    with tarfile.open(out) as tf:
        assert sorted(json.load(tf.extractfile("manifest.json"))[0]["RepoTags"]) == [
            "busybox:2", "busybox:latest"]


def test_legacy_docker_save_and_gzip_oci_layout_load(engine, tmp_path):
    layer = f.layer_tar([("file", "x", b"1")])
    f.busybox_image_tar(tmp_path / "legacy.tar", "legacy:1", layers=[layer], legacy=True)
    assert _load(engine, tmp_path / "legacy.tar") == ["legacy:1"]
    f.oci_layout_tar(tmp_path / "oci.tar", [f.Image("gz:1", [f.busybox_layer_tar(), layer],
                                                     gzip=True)])
    assert _load(engine, tmp_path / "oci.tar") == ["gz:1"]
    gz = engine.store.resolve("gz:1")
    assert engine.store.diff_ids(gz) == engine.store.diff_ids(engine.store.resolve("legacy:1"))
    assert engine.store.record(gz)["layers"][0]["mediaType"].endswith("+gzip")
    # a gzip image saves with plain layers whose digests are the diff_ids
    with open(tmp_path / "gz-saved.tar", "wb") as fh:
        engine.image_save(["gz:1"], fh)
    with tarfile.open(tmp_path / "gz-saved.tar") as tf:
        layers = json.load(tf.extractfile("manifest.json"))[0]["Layers"]
    assert ["sha256:" + n.rsplit("/", 1)[1] for n in layers] == engine.store.diff_ids(gz)


def test_commit_a_real_container(engine, busybox_image):
    """Through the engine: a container writes and deletes, its layer becomes an image."""
    cid = engine.container_create({"Image": busybox_image, "Env": ["MINE=1"],
                                   "Cmd": ["sh", "-c", "echo hi > /hello && rm /bin/vi"]})["Id"]
    try:
        engine.container_start(cid)
        assert engine.container_wait(cid, timeout=30)["StatusCode"] == 0
        new = engine.image_commit(cid, "committed", "2", changes=["CMD [\"cat\", \"/hello\"]"])
        info = engine.image_inspect("committed:2")
        assert info["Id"] == new and info["Config"]["Cmd"] == ["cat", "/hello"]
        assert "MINE=1" in info["Config"]["Env"]
        assert not any(e.startswith("HOSTNAME=") for e in info["Config"]["Env"])
        top = engine.store.layer_dirs(new)[-1]
        assert open(os.path.join(top, "hello")).read() == "hi\n"
        assert stat.S_ISCHR(os.lstat(os.path.join(top, "bin/vi")).st_mode)
        assert not os.path.exists(os.path.join(top, "etc/hosts"))
        with pytest.raises(Conflict, match="is using"):
            engine.image_remove(busybox_image)
    finally:
        engine.container_remove(cid, force=True)
    parent = engine.store.resolve(busybox_image)
    # the container is gone; the committed child keeps its parent: untag only, as docker does
    assert engine.image_remove(busybox_image) == [{"Untagged": "busybox:latest"}]
    with pytest.raises(Conflict, match="dependent child images"):
        engine.image_remove(parent)
    # removing the child prunes the untagged parent it leaves unused, as docker rmi does
    assert engine.image_remove("committed:2") == [
        {"Untagged": "committed:2"}, {"Deleted": new}, {"Deleted": parent}]
    with pytest.raises(NotFound):
        engine.image_remove(parent)


def test_loading_twice_changes_nothing_and_moves_tags(engine, busybox_image, busybox_tar, tmp_path):
    from tests.engine.test_images_bad_input import snapshot
    store = engine.store
    before = snapshot(store.root)
    _load(engine, busybox_tar)
    after = snapshot(store.root)
    assert {p for p in after if not p[0].startswith("images/")} == \
        {p for p in before if not p[0].startswith("images/")}
    old = store.resolve("busybox")
    f.busybox_image_tar(tmp_path / "new.tar", cmd=["echo", "new"])  # same tag, new config
    _load(engine, tmp_path / "new.tar")
    assert store.resolve("busybox") != old
    dangling = engine.image_list(filters={"dangling": ["true"]})
    assert [d["Id"] for d in dangling] == [old]
    assert os.listdir(store.tmp) == []


def test_image_manifest_for_push(engine, busybox_image):
    store = engine.store
    image_id = store.resolve(busybox_image)
    raw, media_type = store.image_manifest(image_id)
    man = json.loads(raw)
    assert media_type == man["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert man["config"]["digest"] == image_id
    assert man["config"]["size"] == os.path.getsize(store.blob_path(image_id))
    for desc in man["layers"]:
        assert store.has_blob(desc["digest"]) and desc["size"] == store.blob_size(desc["digest"])
    # an image recorded with the manifest it was pulled with gives those exact bytes back
    config = open(store.blob_path(image_id), "rb").read()
    layers = [(d["digest"], d["mediaType"], d["size"]) for d in man["layers"]]
    pulled = raw.replace(b"   ", b"  ")
    assert store.create_image(config, layers, refs=["localhost:5000/bb:1"], manifest=pulled,
                              repo_digest="localhost:5000/bb@" + f.sha256(pulled)) == image_id
    assert store.image_manifest(image_id) == (pulled, media_type)
    assert engine.image_inspect(image_id)["RepoDigests"] == ["localhost:5000/bb@" + f.sha256(pulled)]


def test_commit_of_a_container_that_exits_before_its_pause(engine, busybox_image):
    """docker-py commits right after start (pause=True): a container seen running that has
    exited by the pause is committed unpaused, not refused."""
    from runtime.services import commit

    class SeenRunning(object):
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def container_inspect(self, name):
            info = self.real.container_inspect(name)
            return dict(info, State=dict(info["State"], Running=True, Paused=False))

    cid = engine.container_create({"Image": busybox_image, "Cmd": ["touch", "/test"]})["Id"]
    try:
        engine.container_start(cid)
        assert engine.container_wait(cid, timeout=30)["StatusCode"] == 0
        new = commit.commit(SeenRunning(engine.container_service), engine.store, cid, "quick", "1")
        assert os.path.exists(os.path.join(engine.store.layer_dirs(new)[-1], "test"))
    finally:
        engine.container_remove(cid, force=True)
    engine.image_remove("quick:1")


def test_the_reference_map_is_read_again_when_its_file_changes(tmp_path):
    """The map is kept between reads while the files are the same; a write through another
    ReferenceStore (as another process would) or a removal of the files is seen at once."""
    path = str(tmp_path / "repositories.json")
    mine, other = ReferenceStore(path), ReferenceStore(path)
    assert mine.all() == {}
    mine.set(["docker.io/library/a:1"], "sha256:" + "1" * 64)
    got = mine.all()
    got["changed by the caller"] = "x"  # a copy: the kept map is not changed
    assert mine.get("docker.io/library/a:1") == "sha256:" + "1" * 64
    assert "changed by the caller" not in mine.all()
    for n in range(5):  # same size each time: the file's identity, not its length, tells
        other.set(["docker.io/library/a:1"], "sha256:" + str(n) * 64)
        assert mine.get("docker.io/library/a:1") == "sha256:" + str(n) * 64
    os.unlink(path)
    os.unlink(mine.log_path)
    assert mine.all() == {}


def _big_map(n):
    return dict(("docker.io/library/n%d:1" % k, "sha256:%064x" % k) for k in range(n))


def _refs_on(tmp_path, names, first):
    """(path, a ReferenceStore) of a map of `names` names, and one more name (first) set
    through the log."""
    path = str(tmp_path / "repositories.json")
    refs = ReferenceStore(path)
    refs.replace(_big_map(names))
    refs.set([first], "sha256:" + "b" * 64)
    return path, refs


def test_a_reference_change_is_an_append_the_map_is_rewritten_when_the_log_is_as_long(tmp_path):
    """A change on a store of many names appends one line to repositories.log and leaves
    repositories.json as it was; another reader sees every change; once the log is as long as
    the map, the map is rewritten with the changes in and the log goes."""
    path = str(tmp_path / "repositories.json")
    mine = ReferenceStore(path)
    mine.replace(_big_map(500))
    before = os.stat(path)
    mine.set(["docker.io/library/new:1"], "sha256:" + "a" * 64)
    mine.delete(["docker.io/library/n0:1"])
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    with open(mine.log_path) as fh:
        assert [json.loads(line) for line in fh] == [
            {"set": {"docker.io/library/new:1": "sha256:" + "a" * 64}},
            {"delete": ["docker.io/library/n0:1"]}]
    want = dict(_big_map(500), **{"docker.io/library/new:1": "sha256:" + "a" * 64})
    del want["docker.io/library/n0:1"]
    assert ReferenceStore(path).all() == want == mine.all()
    for k in range(1000):
        mine.set(["docker.io/library/more%d:1" % k], "sha256:%064x" % k)
        want["docker.io/library/more%d:1" % k] = "sha256:%064x" % k
        log = os.path.getsize(mine.log_path) if os.path.exists(mine.log_path) else 0
        assert log <= max(os.path.getsize(path), LOG_MIN)
    assert os.stat(path).st_ino != before.st_ino  # compacted on the way
    with open(path) as fh:
        on_disk = json.load(fh)["refs"]
    assert on_disk != want  # (the last changes are in the log)
    assert ReferenceStore(path).all() == want == mine.all()
    mine.compact()
    assert not os.path.exists(mine.log_path)
    with open(path) as fh:
        assert json.load(fh)["refs"] == want


def test_a_reference_change_cut_short_is_left_out_and_the_next_change_is_not_lost(tmp_path):
    """A crash during an append leaves a last line without its newline: readers leave that
    change out (it was never acknowledged), --check-store reports it, and the next change
    rewrites the map first, so it does not land on the torn line."""
    path, refs = _refs_on(tmp_path, 100, "docker.io/library/kept:1")
    with open(refs.log_path, "a") as fh:
        fh.write('{"set": {"docker.io/library/torn:1": "sha256:')
    other = ReferenceStore(path)
    assert other.torn()
    assert "docker.io/library/torn:1" not in other.all()
    assert other.get("docker.io/library/kept:1") == "sha256:" + "b" * 64
    other.set(["docker.io/library/after:1"], "sha256:" + "c" * 64)
    assert not ReferenceStore(path).torn()
    got = ReferenceStore(path).all()
    assert got["docker.io/library/after:1"] == "sha256:" + "c" * 64
    assert got["docker.io/library/kept:1"] == "sha256:" + "b" * 64
    assert "docker.io/library/torn:1" not in got


def test_a_compaction_cut_before_the_log_went_replays_to_the_same_map(tmp_path):
    """A compaction renames the new map in, then removes the log without an fsync: a crash in
    between leaves the new map beside the whole old log, and replaying it changes nothing."""
    import shutil
    path, refs = _refs_on(tmp_path, 50, "docker.io/library/x:1")
    refs.set(["docker.io/library/x:1"], "sha256:" + "2" * 64)
    refs.delete(["docker.io/library/n1:1"])
    refs.set(["docker.io/library/n1:1"], "sha256:" + "3" * 64)
    want = refs.all()
    shutil.copy(refs.log_path, str(tmp_path / "old.log"))
    refs.compact()
    os.rename(str(tmp_path / "old.log"), refs.log_path)
    assert ReferenceStore(path).all() == want


def test_a_read_that_meets_a_compaction_reads_again_rather_than_mix_two_generations(
        tmp_path, monkeypatch):
    """A read takes the map, then the log. When a compaction and a new change come in
    between, that log belongs to the new map: the old map with it would lose the old log's
    changes, so the read sees the map replaced and reads both again."""
    from runtime.store import refs as refs_mod
    path, writer = _refs_on(tmp_path, 10, "docker.io/library/a:1")
    real, once = refs_mod._read_map, []

    def read_map_then_compact(p):
        got = real(p)
        if not once:
            once.append(p)
            writer.compact()  # the new map holds a:1; the old log goes
            writer.set(["docker.io/library/z:1"], "sha256:" + "d" * 64)  # a new log
        return got

    monkeypatch.setattr(refs_mod, "_read_map", read_map_then_compact)
    got = ReferenceStore(path).all()
    assert once
    assert got["docker.io/library/a:1"] == "sha256:" + "b" * 64
    assert got["docker.io/library/z:1"] == "sha256:" + "d" * 64


def test_a_reference_log_with_a_bad_line_inside_is_reported_not_replayed_in_part(tmp_path):
    """A line in the middle that is not a change is damage, not a torn write: reading fails
    with the file and the line named (--check-store reports the map unreadable)."""
    path, refs = _refs_on(tmp_path, 10, "docker.io/library/a:1")
    with open(refs.log_path, "a") as fh:
        fh.write('["not", "a change"]\n{"delete": ["docker.io/library/a:1"]}\n')
    with pytest.raises(ValueError, match=r"repositories\.log: line 2 is not a reference change"):
        ReferenceStore(path).all()


def test_a_clean_stop_folds_the_reference_log_into_the_map_unless_a_writer_holds_the_store(
        tmp_path, busybox_tar):
    """After Engine.close, repositories.json alone holds every name (a backup, or a berthd
    from before the log, sees them all); close does not wait for another holder of the store
    lock (here another process, as a pull's unpack would be): the log then stays for the next
    read."""
    from tests.engine.conftest import make_engine
    for held in (False, True):
        eng = make_engine(tmp_path / ("held" if held else "free"))
        _load(eng, busybox_tar)
        eng.image_tag("busybox:latest", "again", "1")
        log = eng.store.refs.log_path
        assert os.path.exists(log)
        holder = None
        if held:
            holder = subprocess.Popen(
                [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
                 "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
                 eng.store.lock.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert holder.stdout.readline() == b"held\n"
        try:
            eng.close()
        finally:
            if holder is not None:
                holder.stdin.close()
                holder.wait()
        assert os.path.exists(log) == held
        with open(eng.store.refs.path) as fh:
            on_disk = json.load(fh)["refs"]
        assert ("docker.io/library/again:1" in on_disk) != held
        assert "docker.io/library/again:1" in ReferenceStore(eng.store.refs.path).all()


def test_a_blob_map_entry_cut_short_is_taken_for_none_and_written_again(tmp_path):
    """A gzip layer's blob map entry is no longer fsynced on its own: the layer's syncfs makes
    it durable, so a power cut before that may leave it empty, or naming a layer that never got
    in. Either is taken for no entry (not for the layers directory itself), and the next unpack
    writes it again."""
    import gzip
    from runtime.store.images import ImageStore
    store = ImageStore(str(tmp_path / "store"))
    blob = gzip.compress(f.layer_tar([("file", "hello", b"hi\n")]))
    digest = store.put_blob(io.BytesIO(blob))
    gz = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    diff_id = store.unpack_layer(digest, gz)
    entry = os.path.join(store.layers.blobmap, digest[7:])
    with open(entry) as fh:
        assert fh.read() == diff_id
    for cut_short in ("", "sha256:" + "0" * 64):
        with open(entry, "w") as fh:
            fh.write(cut_short)
        assert store.layers.diff_for_blob(digest) is None
        assert store.unpack_layer(digest, gz) == diff_id
        with open(entry) as fh:
            assert fh.read() == diff_id
    with open(os.path.join(store.layers.diff_dir(diff_id), "hello"), "rb") as fh:
        assert fh.read() == b"hi\n"
