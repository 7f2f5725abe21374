"""docker cp both ways (`/containers/{id}/archive`), export and diff, with the real docker CLI
and docker-py: a tree with symlinks, modes and a name with a space, into and out of a running
and a stopped container; paths that escape the root through `..` or a symlink stay inside."""

import io
import json
import os
import stat
import tarfile

import pytest

pytestmark = pytest.mark.timeout(180)


def _tree(base):
    """A small tree: a file with a space, an 0750 script, a nested dir, relative and absolute
    symlinks."""
    top = os.path.join(base, "tree")
    os.makedirs(os.path.join(top, "sub", "deep"))
    with open(os.path.join(top, "a file with space"), "w") as f:
        f.write("spaced\n")
    with open(os.path.join(top, "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(top, "run.sh"), 0o750)
    with open(os.path.join(top, "sub", "deep", "f"), "w") as f:
        f.write("deep\n")
    os.chmod(os.path.join(top, "sub"), 0o711)
    os.symlink("sub/deep/f", os.path.join(top, "rel-link"))
    os.symlink("/etc/hostname", os.path.join(top, "abs-link"))
    return top


def _snapshot(top):
    """{relative path: (kind, mode, content or link target)} of a host tree."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(root, name)
            info = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("l", None, os.readlink(p))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("d", stat.S_IMODE(info.st_mode), None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("f", stat.S_IMODE(info.st_mode), f.read())
    return out


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_cp_tree_in_and_out(loaded, tmp_path, running):
    name = "cp-run" if running else "cp-stop"
    if running:
        out = loaded.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    else:
        out = loaded.docker("create", "--name", name, "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    top = _tree(str(tmp_path))
    out = loaded.docker("cp", top, name + ":/tmp/")
    assert out.returncode == 0, out.stderr
    back = str(tmp_path / "back")
    out = loaded.docker("cp", name + ":/tmp/tree", back)
    assert out.returncode == 0, out.stderr
    assert _snapshot(back) == _snapshot(top)
    # a single file with a space, out to a new name
    out = loaded.docker("cp", name + ":/tmp/tree/a file with space", str(tmp_path / "single"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "single").read_text() == "spaced\n"
    if running:
        out = loaded.docker("exec", name, "stat", "-c", "%a %F", "/tmp/tree/run.sh", "/tmp/tree/rel-link")
        assert out.stdout.decode().split("\n")[:2] == ["750 regular file", "777 symbolic link"]
        out = loaded.docker("exec", name, "cat", "/tmp/tree/rel-link")
        assert out.stdout == b"deep\n"
    # the stat header docker-py reads
    client = loaded.client()
    try:
        chunks, info = client.containers.get(name).get_archive("/tmp/tree/run.sh")
        assert info["name"] == "run.sh" and info["size"] == 18 and info["mode"] & 0o777 == 0o750
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert tar.getnames() == ["run.sh"]
        chunks, info = client.containers.get(name).get_archive("/tmp/tree/rel-link")
        b"".join(chunks)  # to the end of the reply: the daemon has unmounted by then
        assert info["linkTarget"] == "/tmp/tree/sub/deep/f" and info["mode"] & (1 << 27)
    finally:
        client.close()
    with open("/proc/self/mountinfo") as f:  # a stopped container's layers are unmounted again
        assert not [line for line in f if loaded.data_root in line and "/cp-" in line]
    loaded.docker("rm", "-f", name)


def _evil_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tar.addfile(ti)
            else:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_escapes_stay_inside(loaded, tmp_path, running):
    name = "esc-run" if running else "esc-stop"
    verb = ("run", "-d") if running else ("create",)
    out = loaded.docker(*(verb + ("--name", name, "busybox", "sleep", "300")))
    assert out.returncode == 0, out.stderr
    outside = tmp_path / "outside"
    outside.mkdir()
    up = "../" * 12 + str(outside).lstrip("/")
    # a symlink member pointing out of the root, then files written through it and via ..
    body = _evil_tar([("esc", "sym", up), ("abs", "sym", str(outside)),
                      ("esc/through-rel", "file", b"x"), ("abs/through-abs", "file", b"y")])
    status, _, text = loaded.api("PUT", "/containers/%s/archive?path=/tmp" % name, body=body,
                                 headers={"Content-Type": "application/x-tar"})
    assert status == 200, text
    assert os.listdir(str(outside)) == []
    # a member that climbs out with .. is refused, as dockerd refuses it
    body = _evil_tar([("../" * 8 + str(outside).lstrip("/") + "/dotdot", "file", b"z")])
    status, _, text = loaded.api("PUT", "/containers/%s/archive?path=/tmp" % name, body=body)
    assert status == 400 and b"is outside of" in text
    assert os.listdir(str(outside)) == []
    # docker cp through the container's symlink also stays inside
    src = tmp_path / "payload"
    src.write_text("p")
    out = loaded.docker("cp", str(src), name + ":/tmp/esc/")
    assert out.returncode == 0, out.stderr
    assert os.listdir(str(outside)) == []
    # what was written is inside the container, under its own copy of that path
    inner = str(outside)
    for path, content in (("through-rel", b"x"), ("through-abs", b"y"), ("payload", b"p")):
        status, headers, data = loaded.api("GET", "/containers/%s/archive?path=%s/%s" % (name, inner, path))
        assert status == 200, (path, data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert tar.extractfile(path).read() == content
    # reading through symlinks that climb out of the root reads the container's files
    hostdir = tmp_path / "hm"
    hostdir.mkdir()
    (hostdir / "marker").write_text("host")
    body = _evil_tar([("marker", "file", b"inside")])
    assert loaded.api("PUT", "/containers/%s/archive?path=/" % name, body=body)[0] == 200
    body = _evil_tar([("rootlink", "sym", "../" * 12),
                      ("hostlink", "sym", "../" * 12 + str(hostdir).lstrip("/"))])
    assert loaded.api("PUT", "/containers/%s/archive?path=/tmp" % name, body=body)[0] == 200
    status, _, data = loaded.api("GET", "/containers/%s/archive?path=/tmp/rootlink/marker" % name)
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("marker").read() == b"inside"
    status, _, data = loaded.api("GET", "/containers/%s/archive?path=/tmp/hostlink/marker" % name)
    assert status == 404 and b"host" not in data.replace(b"hostlink", b"")
    loaded.docker("rm", "-f", name)


def test_archive_errors_and_no_overwrite(loaded, tmp_path):
    assert loaded.docker("run", "-d", "--name", "cp-err", "busybox", "sleep", "300").returncode == 0
    status, headers, _ = loaded.api("HEAD", "/containers/cp-err/archive?path=/nope")
    assert status == 404
    status, _, body = loaded.api("GET", "/containers/cp-err/archive?path=/nope")
    assert status == 404 and b"Could not find the file /nope" in body
    status, _, body = loaded.api("GET", "/containers/cp-err/archive")
    assert status == 400
    status, _, body = loaded.api("PUT", "/containers/cp-err/archive?path=/etc/passwd",
                                 body=_evil_tar([("x", "file", b"1")]))
    assert status == 400 and b"not a directory" in body
    # /tmp is a directory: replacing it with a file is refused when asked
    status, _, body = loaded.api("PUT", "/containers/cp-err/archive?path=/&noOverwriteDirNonDir=1",
                                 body=_evil_tar([("tmp", "file", b"1")]))
    assert status == 400 and b"cannot overwrite directory" in body
    status, headers, _ = loaded.api("HEAD", "/containers/cp-err/archive?path=/etc")
    info = json.loads(__import__("base64").b64decode(headers["x-docker-container-path-stat"]))
    assert info["name"] == "etc" and info["mode"] & (1 << 31)
    loaded.docker("rm", "-f", "cp-err")


def test_diff_export_rename(loaded, tmp_path):
    out = loaded.docker("run", "--name", "dx", "busybox", "sh", "-c",
                        "echo new > /newfile; rm /bin/true 2>/dev/null; echo m >> /etc/passwd")
    assert out.returncode == 0, out.stderr
    out = loaded.docker("diff", "dx")
    lines = out.stdout.decode().splitlines()
    assert "A /newfile" in lines and "C /etc/passwd" in lines and "D /bin/true" in lines, lines
    # the mount points berthd made (/etc/hosts...) are not changes, as dockerd's init layer
    assert not any(x in lines for x in ("A /etc/hosts", "A /etc/hostname", "A /etc/resolv.conf",
                                        "A /proc", "A /sys", "C /dev")), lines
    assert loaded.docker("run", "--name", "dt", "busybox", "touch", "/test").returncode == 0
    assert loaded.docker("diff", "dt").stdout.decode().splitlines() == ["A /test"]
    loaded.docker("rm", "-f", "dt")
    out = loaded.docker("export", "-o", str(tmp_path / "dx.tar"), "dx")
    assert out.returncode == 0, out.stderr
    with tarfile.open(str(tmp_path / "dx.tar")) as tar:
        names = tar.getnames()
        assert "newfile" in names and "bin/sh" in names and "bin/true" not in names
    assert loaded.docker("rename", "dx", "dy").returncode == 0
    assert loaded.docker("inspect", "-f", "{{.Name}}", "dy").stdout.decode().strip() == "/dy"
    out = loaded.docker("rename", "dy", "dy")
    assert out.returncode != 0 and "same name" in out.stderr.decode()
    loaded.docker("rm", "-f", "dy")


@pytest.fixture(scope="module")
def vfs_daemon(tmp_path_factory, busybox_tar):
    """A berthd with the vfs storage driver (a container's root is a plain directory)."""
    from tests.api.conftest import Berthd
    d = Berthd(str(tmp_path_factory.mktemp("cpvfs")), config={"storage-driver": "vfs"})
    d.start()
    with open(busybox_tar, "rb") as f:
        assert d.api("POST", "/images/load", body=f.read())[0] == 200
    yield d
    d.cleanup()


def test_cp_with_the_vfs_driver(vfs_daemon, tmp_path):
    d = vfs_daemon
    assert d.docker("create", "--name", "vc", "busybox", "sleep", "300").returncode == 0
    top = _tree(str(tmp_path))
    out = d.docker("cp", top, "vc:/tmp/")
    assert out.returncode == 0, out.stderr
    assert d.docker("start", "vc").returncode == 0
    out = d.docker("exec", "vc", "cat", "/tmp/tree/a file with space")
    assert out.stdout == b"spaced\n"
    back = str(tmp_path / "back")
    out = d.docker("cp", "vc:/tmp/tree", back)
    assert out.returncode == 0, out.stderr
    assert _snapshot(back) == _snapshot(top)
    out = d.docker("diff", "vc")
    assert out.returncode != 0 and "vfs" in out.stderr.decode()
    d.docker("rm", "-f", "vc")


def test_cp_into_a_stopped_containers_volumes(loaded, tmp_path):
    assert loaded.docker("create", "--name", "cpvol", "-v", "/vol1", "-v", "cpnamed:/data:ro",
                         "busybox", "cat", "/vol1/f").returncode == 0
    src = tmp_path / "f"
    src.write_text("in the volume")
    out = loaded.docker("cp", str(src), "cpvol:/vol1/f")
    assert out.returncode == 0, out.stderr
    out = loaded.docker("cp", str(src), "cpvol:/data/f")
    assert out.returncode != 0 and "mounted volume is marked read-only" in out.stderr.decode()
    out = loaded.docker("start", "-a", "cpvol")
    assert out.stdout == b"in the volume", out.stderr
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if loaded.data_root in line and "/cp-" in line]
    loaded.docker("rm", "-v", "cpvol")
    loaded.docker("volume", "rm", "cpnamed")
