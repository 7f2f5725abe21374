"""Images through the API with the three clients: load, list, inspect, tag, history, save, rmi,
import, and their error paths."""

import io
import json
import tarfile

import pytest

from tests import imagefactory

pytestmark = pytest.mark.timeout(120)


def test_load_with_each_client(berthd, busybox_tar, tmp_path):
    out = berthd.berth("load", "-i", busybox_tar)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == "Loaded image: busybox:latest"
    other = str(tmp_path / "other.tar")
    imagefactory.busybox_image_tar(other, ref="other:1.0", labels={"x": "1"})
    out = berthd.docker("load", "-i", other)
    assert out.returncode == 0, out.stderr
    assert "Loaded image: other:1.0" in out.stdout.decode()
    third = str(tmp_path / "third.tar")
    imagefactory.busybox_image_tar(third, ref="third:2", labels={"y": "2"})
    client = berthd.client()
    try:
        with open(third, "rb") as f:
            images = client.images.load(f.read())
        assert images and "third:2" in images[0].tags
        assert "busybox:latest" in [t for i in client.images.list() for t in i.tags]
    finally:
        client.close()


def test_images_table_and_inspect(loaded):
    berthd = loaded  # (each test loads what it needs: pytest-xdist may run it apart from the others)
    out = berthd.berth("images")
    lines = out.stdout.decode().splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in lines[1:])
    out = berthd.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert "busybox:latest" in out.stdout.decode().split()
    status, headers, body = berthd.api("GET", "/v1.44/images/busybox:latest/json")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["Id"].startswith("sha256:") and "busybox:latest" in doc["RepoTags"]
    out = berthd.berth("inspect", "busybox")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["Id"] == doc["Id"]
    out = berthd.docker("inspect", "--type", "image", "busybox", "--format", "{{.Id}}")
    assert out.stdout.decode().strip() == doc["Id"]


def test_tag_history_rmi(loaded):
    berthd = loaded
    out = berthd.berth("tag", "busybox", "mine/box:v1")
    assert out.returncode == 0, out.stderr
    out = berthd.docker("tag", "busybox", "theirs/box:v2")
    assert out.returncode == 0, out.stderr
    client = berthd.client()
    try:
        assert client.images.get("busybox").tag("py/box", "v3")
        tags = client.images.get("busybox").tags
        assert {"mine/box:v1", "theirs/box:v2", "py/box:v3"} <= set(tags)
        out = berthd.berth("history", "mine/box:v1")
        assert out.returncode == 0 and out.stdout.decode().split()[:3] == ["IMAGE", "CREATED", "CREATED"]
        assert len(client.images.get("py/box:v3").history()) >= 1
        out = berthd.berth("rmi", "mine/box:v1")
        assert out.returncode == 0 and "Untagged: mine/box:v1" in out.stdout.decode()
        out = berthd.docker("rmi", "theirs/box:v2")
        assert out.returncode == 0 and "Untagged: theirs/box:v2" in out.stdout.decode()
        client.images.remove("py/box:v3")
        assert "py/box:v3" not in client.images.get("busybox").tags
    finally:
        client.close()


def test_save_and_reload(loaded, tmp_path):
    berthd = loaded
    path = str(tmp_path / "saved.tar")
    out = berthd.berth("save", "-o", path, "busybox:latest")
    assert out.returncode == 0, out.stderr
    with tarfile.open(path) as tf:
        names = tf.getnames()
        assert "manifest.json" in names
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    path2 = str(tmp_path / "saved-docker.tar")
    out = berthd.docker("save", "-o", path2, "busybox")
    assert out.returncode == 0, out.stderr
    client = berthd.client()
    try:
        data = b"".join(client.images.get("busybox").save())
        assert tarfile.open(fileobj=io.BytesIO(data)).getmember("manifest.json")
    finally:
        client.close()
    out = berthd.docker("load", "-i", path2)
    assert out.returncode == 0 and "busybox:latest" in out.stdout.decode()


def test_import_rootfs(berthd, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(imagefactory.busybox_layer_tar())
    out = berthd.berth("import", str(rootfs), "imported:1")
    assert out.returncode == 0, out.stderr
    image_id = out.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    doc = json.loads(berthd.api("GET", "/images/imported:1/json")[2])
    assert doc["Id"] == image_id


def test_image_errors(loaded):
    berthd = loaded
    status, headers, body = berthd.api("GET", "/images/no-such-image:1/json")
    assert status == 404 and headers["content-type"] == "application/json"
    assert "no-such-image" in json.loads(body)["message"]
    out = berthd.berth("rmi", "no-such-image:1")
    assert out.returncode == 1 and "Error response from daemon" in out.stderr.decode()
    out = berthd.docker("rmi", "no-such-image:1")
    assert out.returncode == 1 and "no-such-image" in out.stderr.decode()
    out = berthd.berth("tag", "busybox", "Bad Name!")
    assert out.returncode == 1
    out = berthd.berth("save", "-o", "/dev/null", "no-such-image:1")
    assert out.returncode == 1
    status, _, body = berthd.api("POST", "/images/load", body=b"this is not a tar")  # dockerd: 200,
    assert status == 200 and "not a tar" in json.loads(body)["error"], body  # the error in the stream
    out = berthd.berth("load", "-i", "/dev/null")
    assert out.returncode == 1 and "not a tar" in out.stderr.decode(), out.stderr


def test_import_with_docker_and_docker_py(berthd, tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(imagefactory.busybox_layer_tar())
    out = berthd.docker("import", str(rootfs), "dimported:2")
    assert out.returncode == 0, out.stderr
    assert berthd.api("GET", "/images/dimported:2/json")[0] == 200
    client = berthd.client()
    try:
        with open(str(rootfs), "rb") as f:
            client.api.import_image_from_data(f.read(), repository="pyimported", tag="3")
        assert client.images.get("pyimported:3").id.startswith("sha256:")
    finally:
        client.close()
