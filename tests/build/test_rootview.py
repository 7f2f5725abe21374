"""runtime/build/rootview.py: an image's merged layers read without mounting, as overlayfs
would show them (whiteouts, opaque dirs), never through a layer's own symlinks to the host."""

import os

from runtime.build.rootview import RootView
from runtime.store.unpack import OPAQUE_XATTR


def _layer(base, name, files=(), dirs=(), links=(), whiteouts=(), opaque=()):
    top = os.path.join(str(base), name)
    os.makedirs(top)
    for d in dirs:
        os.makedirs(os.path.join(top, d), exist_ok=True)
    for rel, data in files:
        os.makedirs(os.path.dirname(os.path.join(top, rel)), exist_ok=True)
        with open(os.path.join(top, rel), "wb") as f:
            f.write(data)
    for rel, target in links:
        os.symlink(target, os.path.join(top, rel))
    for rel in whiteouts:
        os.mknod(os.path.join(top, rel), 0o600 | 0o020000, os.makedev(0, 0))
    for rel in opaque:
        os.setxattr(os.path.join(top, rel), OPAQUE_XATTR, b"y")
    return top


def test_merged_view(tmp_path):
    low = _layer(tmp_path, "low", files=[("etc/passwd", b"root\n"), ("etc/gone", b""),
                                        ("opq/old", b""), ("d/file", b"")],
                 dirs=["usr/bin"], links=[("bin", "usr/bin")])
    high = _layer(tmp_path, "high", files=[("usr/bin/tool", b"t"), ("opq/new", b"")],
                  dirs=["etc"], whiteouts=["etc/gone"], opaque=["opq"])
    view = RootView([low, high])
    assert view.listdir("") == ["bin", "d", "etc", "opq", "usr"]
    assert view.listdir("etc") == ["passwd"]
    assert view.lstat("etc/gone") is None
    assert view.listdir("opq") == ["new"] and view.lstat("opq/old") is None
    assert view.lstat("bin").kind == "symlink" and view.realpath("bin/tool") == "usr/bin/tool"
    assert view.read("usr/bin/tool") == b"t" and view.read("etc/passwd") == b"root\n"


def test_never_reads_through_a_layer_symlink(tmp_path):
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "key").write_bytes(b"host")
    # the lower layer has d as a symlink to a host dir; the upper one a real dir d
    low = _layer(tmp_path, "low", links=[("d", str(secret))])
    high = _layer(tmp_path, "high", dirs=["d"])
    view = RootView([low, high])
    assert view.lstat("d/key") is None and view.listdir("d") == []
    # alone, the link is a link: resolving it stays inside the image's root
    view = RootView([low])
    assert view.lstat("d").kind == "symlink"
    assert view.realpath("d/key") == str(secret).lstrip("/") + "/key"
    assert view.lstat(view.realpath("d/key")) is None
