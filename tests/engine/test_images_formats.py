"""Proof that the archive formats are the real ones: what berth saves, skopeo and umoci read;
what skopeo writes, berth loads. Images are built from busybox-static and, when the lab's
cached debootstrap rootfs is on the machine, from a Debian minbase rootfs."""

import json
import os
import stat
import subprocess

import pytest

from tests import imagefactory as f
from tests.engine.conftest import make_engine


def run(*cmd):
    """Run a peer tool; fail the test with its stderr."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, "%s: %s" % (" ".join(cmd), p.stderr.decode()[-2000:])
    return p.stdout


@pytest.fixture
def layered(engine, tmp_path):
    """busybox plus a layer that deletes bin/vi, replaces /root and adds /etc/motd."""
    top = f.layer_tar([("whiteout", "bin/vi"), ("opaque", "root"), ("file", "root/new", b"n"),
                       ("file", "etc/motd", b"hello\n")])
    with open(f.busybox_image_tar(tmp_path / "in.tar", "layered:1", layers=[top],
                                  env=["A=b"]), "rb") as fh:
        engine.image_load(fh)
    return "layered:1"


def _check_bundle_rootfs(rootfs):
    assert (rootfs / "etc/motd").read_text() == "hello\n"
    assert not os.path.lexists(rootfs / "bin/vi")
    assert os.listdir(rootfs / "root") == ["new"]
    out = run("chroot", str(rootfs), "/bin/sh", "-c", "cat /etc/motd")
    assert out == b"hello\n"


def test_docker_archive_through_skopeo_and_umoci(engine, layered, tmp_path):
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as fh:
        engine.image_save([layered], fh)
    info = json.loads(run("skopeo", "inspect", "docker-archive:%s" % saved))
    assert info["Layers"] == engine.image_inspect(layered)["RootFS"]["Layers"]
    assert info["Env"] == ["A=b"]
    run("skopeo", "copy", "docker-archive:%s" % saved, "oci:%s:v1" % (tmp_path / "oci"))
    run("umoci", "unpack", "--image", "%s:v1" % (tmp_path / "oci"), str(tmp_path / "bundle"))
    _check_bundle_rootfs(tmp_path / "bundle/rootfs")
    # the same file read as an OCI archive, and berth's OCI-only output by umoci
    run("skopeo", "copy", "oci-archive:%s:1" % saved, "docker-archive:%s:sk/copy:2"
        % (tmp_path / "sk.tar"))
    oci_only = tmp_path / "oci-only.tar"
    with open(oci_only, "wb") as fh:
        engine.image_save([layered], fh, fmt="oci")
    os.mkdir(tmp_path / "layout")
    run("tar", "-xf", str(oci_only), "-C", str(tmp_path / "layout"))
    run("umoci", "unpack", "--image", "%s:1" % (tmp_path / "layout"), str(tmp_path / "b2"))
    _check_bundle_rootfs(tmp_path / "b2/rootfs")
    # what skopeo wrote loads back into a fresh engine, same layers
    other = make_engine(tmp_path / "other")
    with open(tmp_path / "sk.tar", "rb") as fh:
        assert other.image_load(fh) == ["sk/copy:2"]
    assert other.image_inspect("sk/copy:2")["RootFS"] == engine.image_inspect(layered)["RootFS"]


def test_skopeo_oci_archive_with_gzip_layers_loads(engine, layered, tmp_path):
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as fh:
        engine.image_save([layered], fh)
    run("skopeo", "copy", "--dest-compress", "docker-archive:%s" % saved,
        "oci-archive:%s:localhost:5000/team/app:v2" % (tmp_path / "sk-oci.tar"))
    other = make_engine(tmp_path / "other")
    with open(tmp_path / "sk-oci.tar", "rb") as fh:
        loaded = other.image_load(fh)
    image_id = other.store.resolve(loaded[0])
    rec = other.store.record(image_id)
    assert all(lay["mediaType"].endswith("+gzip") for lay in rec["layers"])
    assert other.store.diff_ids(image_id) == engine.store.diff_ids(engine.store.resolve(layered))
    top = other.store.layer_dirs(image_id)[-1]
    assert os.path.exists(os.path.join(top, "etc/motd"))


def _caps(path):
    try:
        return os.getxattr(str(path), "security.capability", follow_symlinks=False)
    except OSError:
        return None


@pytest.mark.skipif(f.cached_debootstrap_rootfs() is None,
                    reason="no cached debootstrap rootfs (the lab tests build one)")
def test_debootstrap_image_round_trips(engine, tmp_path):
    """A Debian minbase image cut to its binaries, /etc and the C libraries they need (about
    60 MB): the whole 440 MB rootfs is bench/unpack.py's job, too slow for the suite."""
    rootfs = f.cached_debootstrap_rootfs()
    libdir = "usr/lib/x86_64-linux-gnu"
    libs = sorted("./%s/%s" % (libdir, n) for n in os.listdir(rootfs / libdir)
                  if n.startswith(("libc.so", "ld-linux", "libselinux", "libpcre2-8", "libacl",
                                   "libattr", "libtinfo", "libcap.so")))
    layer = tmp_path / "deb.tar"
    run("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(rootfs), "-cf",
        str(layer), "./etc", "./usr/bin", "./usr/sbin", "./bin", "./sbin", "./lib", "./lib64", "./usr/lib64",
        *libs)
    with open(layer, "rb") as fh:
        image_id = engine.image_import(fh, "debian", "bookworm", changes=['CMD ["bash"]'])
    top = engine.store.layer_dirs(image_id)[0]
    out = run("chroot", top, "/bin/sh", "-c", "cat /etc/debian_version; id -un")
    assert out.split()[1] == b"root"
    src_caps = _caps(rootfs / "usr/bin/ping")
    if src_caps:
        assert _caps(os.path.join(top, "usr/bin/ping")) == src_caps
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as fh:
        engine.image_save(["debian:bookworm"], fh)
    run("skopeo", "copy", "docker-archive:%s" % saved, "oci:%s:bookworm" % (tmp_path / "oci"))
    run("umoci", "unpack", "--image", "%s:bookworm" % (tmp_path / "oci"), str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/etc/debian_version").read_bytes() == \
        (rootfs / "etc/debian_version").read_bytes()
    run("skopeo", "copy", "oci:%s:bookworm" % (tmp_path / "oci"),
        "oci-archive:%s:debian:bookworm" % (tmp_path / "sk.tar"))
    other = make_engine(tmp_path / "other")
    with open(tmp_path / "sk.tar", "rb") as fh:
        assert other.image_load(fh) == ["debian:bookworm"]
    back = other.image_inspect("debian:bookworm")
    assert back["RootFS"] == engine.image_inspect(image_id)["RootFS"]
    assert back["Config"]["Cmd"] == ["bash"]


def test_umoci_repacked_layer_with_whiteouts_loads(engine, layered, tmp_path):
    """umoci writes its own whiteouts when a file is deleted from a bundle: berth turns them
    into overlay whiteouts (an independent producer of .wh. entries)."""
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as fh:
        engine.image_save([layered], fh)
    layout = tmp_path / "oci"
    run("skopeo", "copy", "docker-archive:%s" % saved, "oci:%s:v1" % layout)
    run("umoci", "unpack", "--image", "%s:v1" % layout, str(tmp_path / "bundle"))
    os.unlink(tmp_path / "bundle/rootfs/etc/motd")
    (tmp_path / "bundle/rootfs/etc/added").write_text("umoci\n")
    run("umoci", "repack", "--image", "%s:v2" % layout, str(tmp_path / "bundle"))
    run("tar", "-C", str(layout), "-cf", str(tmp_path / "layout.tar"), ".")
    other = make_engine(tmp_path / "other")
    with open(tmp_path / "layout.tar", "rb") as fh:
        loaded = other.image_load(fh)
    assert len(loaded) == 2  # v1 and v2 (untagged: umoci names only the tag)
    tops = [other.store.layer_dirs(i)[-1] for i in loaded]
    top = [t for t in tops if os.path.exists(os.path.join(t, "etc/added"))][0]
    st = os.lstat(os.path.join(top, "etc/motd"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
