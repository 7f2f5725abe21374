"""Pull and push through the engine (runtime/store) against real registries: by tag and by
digest, no-op re-pull, multi-arch index, errors, a corrupted blob, push/pull interop with
skopeo and umoci."""

import hashlib
import json
import os
import platform
import subprocess

import pytest

from runtime.errors import InvalidParameter, NotFound, Unauthorized
from runtime.registry import manifest as mf
from runtime.registry.client import Repository
from runtime.registry.endpoints import RegistryConfig
from runtime.registry.transport import TransportError
from tests import imagefactory
from tests.registry.conftest import make_registry_engine as make_engine
from tests.registry.conftest import USERS, store_files
from tests.registry.registries import free_port, skopeo_copy


@pytest.fixture
def new_engine(tmp_path):
    """make(config=None): a fresh engine with its own data root under this test's tmp dir."""
    n = [0]

    def make(config=None):
        n[0] += 1
        return make_engine(tmp_path / ("root%d" % n[0]), config)
    return make


def _layer(name, size=2000):
    return imagefactory.layer_tar([("dir", "data"), ("file", "data/" + name, os.urandom(size))])


def test_pull_by_tag_progress_and_noop_repull(plain_registry, seed, new_engine):
    image_id = seed(plain_registry, "pull/two:1", [imagefactory.busybox_layer_tar(), _layer("two")])
    engine = new_engine()
    msgs = []
    name = "%s/pull/two" % plain_registry.host
    since = len(plain_registry.requests())
    assert engine.image_pull(name, "1", progress=msgs.append) == image_id
    assert len(plain_registry.blob_gets(since)) == 3  # config + 2 layers
    statuses = [m.get("status") for m in msgs]
    assert statuses[0] == "Pulling from pull/two" and msgs[0]["id"] == "1"
    for s in ("Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
              "Extracting", "Pull complete"):
        assert statuses.count(s) >= 2, s
    dl = [m for m in msgs if m.get("status") == "Downloading"]
    assert all(m["progressDetail"]["total"] > 0 and "progress" in m for m in dl)
    assert statuses[-2].startswith("Digest: sha256:")
    assert statuses[-1] == "Status: Downloaded newer image for %s:1" % name
    assert engine.store.resolve(name + ":1") == image_id

    since = len(plain_registry.requests())
    msgs = []
    assert engine.image_pull(name, "1", progress=msgs.append) == image_id
    assert plain_registry.blob_gets(since) == []
    assert msgs[-1]["status"] == "Status: Image is up to date for %s:1" % name


def test_pull_by_digest_and_shared_layer_already_exists(plain_registry, seed, new_engine):
    base = imagefactory.busybox_layer_tar()
    image_id = seed(plain_registry, "pull/digest:1", [base, _layer("d")])
    digest = Repository(RegistryConfig().endpoints(plain_registry.host)[1], "pull/digest") \
        .get_manifest("1")[2]
    engine = new_engine()
    seed(plain_registry, "pull/base:1", [base])
    engine.image_pull("%s/pull/base" % plain_registry.host, "1")
    msgs = []
    got = engine.image_pull("%s/pull/digest@%s" % (plain_registry.host, digest), progress=msgs.append)
    assert got == image_id
    assert [m["status"] for m in msgs].count("Already exists") == 1
    assert msgs[0] == {"status": "Pulling from pull/digest", "id": digest}

    one_at_a_time = new_engine({"max-concurrent-downloads": 1})
    msgs = []
    one_at_a_time.image_pull("%s/pull/digest" % plain_registry.host, "1", progress=msgs.append)
    assert [m["status"] for m in msgs].count("Waiting") == 1  # 2 layers, 1 download slot
    assert msgs[-2]["status"] == "Digest: %s" % digest


def test_multi_arch_index_selects_this_host(plain_registry, seed, new_engine):
    arches = ["amd64", "arm64"]
    ids = {a: seed(plain_registry, "multi/app:" + a, imagefactory.Image([], [_layer(a)], arch=a))
           for a in arches}
    repo = Repository(RegistryConfig().endpoints(plain_registry.host)[1], "multi/app", push=True)
    entries = []
    for a in arches:
        raw, media_type, digest = repo.get_manifest(a)
        entries.append({"mediaType": media_type, "digest": digest, "size": len(raw),
                        "platform": {"os": "linux", "architecture": a}})
    for media_type, tag in ((mf.OCI_INDEX, "oci"), (mf.DOCKER_LIST, "docker")):
        index = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
        repo.put_manifest(tag, index, media_type)
    host_arch = mf.host_platform()[1]
    assert host_arch in arches, platform.machine()
    other = [a for a in arches if a != host_arch][0]
    engine = new_engine()
    name = "%s/multi/app" % plain_registry.host
    assert engine.image_pull(name, "oci") == ids[host_arch]
    assert engine.image_pull(name, "docker", platform="linux/" + other) == ids[other]
    with pytest.raises(NotFound) as e:
        engine.image_pull(name, "oci", platform="linux/s390x")
    assert "linux/amd64" in str(e.value) and "linux/arm64" in str(e.value)


def test_missing_repository_and_tag_are_clear_errors_before_progress(plain_registry, new_engine):
    engine = new_engine()
    msgs = []
    with pytest.raises(NotFound) as e:
        engine.image_pull("%s/no/such-repo" % plain_registry.host, "latest", progress=msgs.append)
    assert "no/such-repo:latest" in str(e.value) and "\n" not in str(e.value)
    assert msgs == []
    with pytest.raises(InvalidParameter):
        engine.image_pull("Bad Name")
    dead = "127.0.0.1:%d" % free_port()
    with pytest.raises(TransportError) as e:
        engine.image_pull("%s/x/y" % dead, progress=msgs.append)
    assert str(e.value) == ("pull of %s/x/y:latest failed: https://%s: connection refused; "
                            "http://%s: connection refused" % (dead, dead, dead))
    assert msgs == []


def test_wrong_password_and_login(tls_registry, seed, new_engine):
    image_id = seed(tls_registry, "private/app:1", [_layer("private")])
    engine = new_engine()
    name = "%s/private/app" % tls_registry.host  # loopback: TLS without verification
    with pytest.raises(Unauthorized) as e:
        engine.image_pull(name, "1", auth={"username": "alice", "password": "wrong"})
    assert "incorrect username or password" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(Unauthorized) as e:
        engine.image_pull(name, "1")
    assert "berth login" in str(e.value)
    with pytest.raises(Unauthorized):
        engine.registry_auth({"username": "alice", "password": "wrong",
                              "serveraddress": tls_registry.host})
    good = {"username": "alice", "password": USERS["alice"], "serveraddress": tls_registry.host}
    assert engine.registry_auth(good)["Status"] == "Login Succeeded"
    assert engine.image_pull(name, "1", auth=good) == image_id


def test_token_auth_push_and_anonymous_pull(token_registry, plain_registry, seed, new_engine):
    image_id = seed(plain_registry, "tok/src:1", [_layer("tok")])
    engine = new_engine()
    engine.image_pull("%s/tok/src" % plain_registry.host, "1")
    engine.store.tag("%s/tok/src:1" % plain_registry.host, "%s/team/tok" % token_registry.host + ":v1")
    name = "%s/team/tok" % token_registry.host
    with pytest.raises(Unauthorized):
        engine.image_push(name, "v1")
    auth = {"username": "alice", "password": USERS["alice"]}
    assert engine.registry_auth(dict(auth, serveraddress=token_registry.host))["Status"] == "Login Succeeded"
    digest = engine.image_push(name, "v1", auth=auth)
    other = new_engine()
    assert other.image_pull(name + "@" + digest) == image_id


def test_corrupted_blob_is_rejected_and_store_stays_clean(plain_registry, seed, new_engine):
    layer = _layer("corrupt", 50000)
    seed(plain_registry, "bad/blob:1", [layer])
    repo = Repository(RegistryConfig().endpoints(plain_registry.host)[1], "bad/blob")
    m = mf.Manifest(*repo.get_manifest("1")[:2])
    data = plain_registry.blob_data(m.layers[0].digest)
    with open(data, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    engine = new_engine()
    before = store_files(engine)
    with pytest.raises(InvalidParameter) as e:
        engine.image_pull("%s/bad/blob" % plain_registry.host, "1")
    assert "digest mismatch" in str(e.value) and m.layers[0].digest[7:19] in str(e.value)
    assert store_files(engine) == before
    with pytest.raises(NotFound):
        engine.store.resolve("%s/bad/blob:1" % plain_registry.host)


def test_push_monolithic_chunked_mount_and_skopeo_umoci_interop(plain_registry, seed, new_engine,
                                                                tmp_path):
    big = _layer("big", 300000)
    image_id = seed(plain_registry, "src/app:1", [imagefactory.busybox_layer_tar(), big])
    engine = new_engine({"upload-chunk-size": 100000})
    host = plain_registry.host
    engine.image_pull("%s/src/app" % host, "1")
    engine.store.tag("%s/src/app:1" % host, "%s/dst/app" % host + ":v2")
    msgs = []
    since = len(plain_registry.requests())
    digest = engine.image_push("%s/dst/app" % host, "v2", progress=msgs.append)
    statuses = [m.get("status") for m in msgs]
    assert statuses[0] == "The push refers to repository [%s/dst/app]" % host
    assert statuses.count("Mounted from src/app") == 2  # both layers came from src/app
    assert msgs[-1]["aux"]["Digest"] == digest
    reqs = plain_registry.requests()[since:]
    assert not [r for r in reqs if r[0] in ("PATCH", "PUT") and "uploads" in r[1]]  # all mounted
    assert len([r for r in reqs if r[0] == "POST" and "mount=" in r[1]]) == 3  # config too

    # a second repository with no known source: full uploads, the big layer in chunks
    engine.store.tag("%s/src/app:1" % host, "%s/fresh/app" % host + ":v3")
    os.remove(engine._blob_sources().path)  # forget where the blobs came from: no mounts
    since = len(plain_registry.requests())
    engine.image_push("%s/fresh/app" % host, "v3")
    reqs = plain_registry.requests()[since:]
    assert sum(1 for r in reqs if r[0] == "PATCH") >= 3
    since = len(plain_registry.requests())
    msgs = []
    engine.image_push("%s/fresh/app" % host, "v3", progress=msgs.append)
    assert [m.get("status") for m in msgs].count("Layer already exists") == 2
    assert not [r for r in plain_registry.requests()[since:] if r[0] in ("PATCH", "POST")]

    oci = tmp_path / "oci"
    skopeo_copy("docker://%s/dst/app:v2" % host, "oci:%s:v2" % oci)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", "%s:v2" % oci, str(bundle)], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert (bundle / "rootfs/data/big").stat().st_size == 300000
    assert (bundle / "rootfs/bin/busybox").exists()
    assert engine.image_pull("%s/dst/app" % host, "v2") == image_id


def test_engine_push_from_loaded_archive(plain_registry, new_engine, tmp_path):
    host = plain_registry.host
    img = imagefactory.Image("%s/loaded/app:v1" % host, [_layer("loaded")])
    archive = imagefactory.docker_archive(tmp_path / "a.tar", [img])
    engine = new_engine()
    with open(archive, "rb") as f:
        engine.image_load(f)
    digest = engine.image_push("%s/loaded/app" % host, "v1")
    raw, _, got = Repository(RegistryConfig().endpoints(host)[1], "loaded/app").get_manifest("v1")
    assert got == digest
    assert mf.Manifest(raw).config.digest == "sha256:" + hashlib.sha256(img.blobs()[1]).hexdigest()
    with pytest.raises(NotFound) as e:
        engine.image_push("%s/loaded/none" % host, "v1")
    assert "does not exist locally" in str(e.value)


def test_pull_downloads_a_layer_unpacked_locally_from_another_blob(plain_registry, seed,
                                                                   new_engine, tmp_path):
    """A layer already unpacked from a plain tar (load) but pulled as gzip: the image record
    names the gzip blob, so it is downloaded (it was skipped as "Already exists", and the pull
    failed with 'layer blob ... is not in the image store')."""
    base = imagefactory.busybox_layer_tar()
    image_id = seed(plain_registry, "pull/gz:1", imagefactory.Image("pull/gz:1", [base, _layer("g")],
                                                                    gzip=True))
    engine = new_engine()
    with open(imagefactory.busybox_image_tar(tmp_path / "bb.tar"), "rb") as f:
        engine.image_load(f)
    assert engine.image_pull("%s/pull/gz" % plain_registry.host, "1") == image_id
    from runtime import datacheck
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []
    engine.close()
