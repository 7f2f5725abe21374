""".dockerignore patterns, the context spool and COPY planning (runtime/build/ignore.py,
context.py, copy.py) without an engine."""

import gzip
import io
import tarfile

import pytest

from runtime.build import copy as copy_mod
from runtime.build import ignore
from runtime.build.context import Context, Entry
from runtime.errors import InvalidParameter


class Tree(object):
    """A tiny in-memory tree with the reading interface of Context (for the image side)."""

    def __init__(self, entries):
        self.entries = entries

    def lstat(self, path):
        return self.entries.get(path)

    def listdir(self, path):
        prefix = path + "/" if path else ""
        return sorted(n[len(prefix):] for n in self.entries
                      if n.startswith(prefix) and n != path and "/" not in n[len(prefix):])


def _dir(mode=0o755, uid=0):
    return Entry("dir", mode, uid, uid, 0, 0, "")


def make_tar(entries, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            if e[1] == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif e[1] == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e[2]
                tf.addfile(ti)
            elif e[1] == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e[2]
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(e[2]), e[3] if len(e) > 3 else 0o644
                tf.addfile(ti, io.BytesIO(e[2]))
    data = buf.getvalue()
    return io.BytesIO(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("patterns,path,excluded", [
    (["*.md"], "README.md", True),
    (["*.md"], "docs/x.md", False),
    (["**/*.md"], "docs/x.md", True),
    (["**/*.md"], "x.md", True),
    (["docs"], "docs/deep/x", True),
    (["/docs/"], "docs/x", True),
    (["./build"], "build", True),
    (["*", "!keep*"], "keep.txt", False),
    (["*", "!keep*"], "other", True),
    (["*.md", "!README.md", "README*"], "README.md", True),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[!a-c]x"], "bx", False),
    (["dir/**"], "dir/a/b", True),
    (["dir/**"], "dirx", False),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
])
def test_dockerignore_rules(patterns, path, excluded):
    assert ignore.Matcher(patterns).excluded(path) is excluded


def test_dockerignore_file():
    patterns = ignore.read_patterns("# c\n\n  *.log  \n!/keep.log\nsub/../x\n")
    assert patterns == ["*.log", "!/keep.log", "sub/../x"]
    m = ignore.Matcher(patterns)
    assert [m.excluded(p) for p in ("a.log", "keep.log", "x", "sub")] == [True, False, True, False]


def test_context_index_and_gzip(tmp_path):
    for gz in (False, True):
        ctx = Context(make_tar([("./a/b.txt", "file", b"bee"), ("a/link", "symlink", "b.txt"),
                                ("hard", "hardlink", "a/b.txt")], gz), str(tmp_path))
        try:
            assert ctx.lstat("a").kind == "dir"  # implied parent
            assert ctx.listdir("a") == ["b.txt", "link"]
            assert ctx.open(ctx.realpath("a/link")).read() == b"bee"
            assert ctx.open("hard").read() == b"bee"
        finally:
            ctx.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entries,message", [
    ([("../x", "file", b"")], "contains '..'"),
    ([("a/../../x", "file", b"")], "contains '..'"),
    ([("/etc/x", "file", b"")], "absolute path"),
    ([("l", "symlink", "/etc"), ("l/passwd", "file", b"")], "below the symlink"),
    ([("h", "hardlink", "nothere")], "hardlink"),
    ([("d/e/f", "file", b""), ("d", "symlink", "/etc"), ("d/e/g", "file", b"")],
     "symlink over a directory"),
])
def test_context_refuses(tmp_path, entries, message):
    with pytest.raises(InvalidParameter) as err:
        Context(make_tar(entries), str(tmp_path))
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_context_size_limit(tmp_path):
    with pytest.raises(InvalidParameter) as err:
        Context(make_tar([("big", "file", b"x" * (3 << 20))]), str(tmp_path), limit=2 << 20)
    assert "larger than the limit of 2 MiB" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidParameter) as err:
        Context(io.BytesIO(b"not a tar at all" * 100), str(tmp_path))
    assert "not a tar archive" in str(err.value)


def test_context_ignore(tmp_path):
    ctx = Context(make_tar([("a.md", "file", b""), ("src/x.py", "file", b""),
                            ("src/x.md", "file", b"")]), str(tmp_path))
    try:
        ctx.apply_ignore(["**/*.md"])
        assert sorted(n for n in ctx.entries if n) == ["src", "src/x.py"]
    finally:
        ctx.close()


def _plan(tmp_path, files, srcs, dest, image=None, **kw):
    ctx = Context(make_tar(files), str(tmp_path))
    image = image or Tree({"usr": _dir(), "usr/bin": _dir(), "bin": Entry(
        "symlink", 0o777, 0, 0, 0, 0, "usr/bin"), "app": _dir(0o700, 5)})
    return ctx, copy_mod.plan(ctx, srcs, dest, kw.pop("workdir", "/"), image, **kw)


def test_copy_plan_destinations(tmp_path):
    files = [("f", "file", b"F", 0o755), ("d/x", "file", b"X"), ("d/sub/y", "file", b"Y"),
             ("w1.txt", "file", b"1"), ("w2.txt", "file", b"2")]
    ctx, p = _plan(tmp_path, files, ["f"], "/bin/")  # dest through the image's symlink
    assert [(i.dest, i.entry.mode) for i in p.items] == [("usr/bin/f", 0o755)]
    assert [i.dest for i in p.parents] == ["usr"] or [i.dest for i in p.parents] == ["usr", "usr/bin"]
    ctx.close()
    ctx, p = _plan(tmp_path, files, ["f"], "renamed", workdir="/app")
    assert [i.dest for i in p.items] == ["app/renamed"]
    assert [(i.dest, i.entry.mode, i.entry.uid) for i in p.parents] == [("app", 0o700, 5)]
    ctx.close()
    ctx, p = _plan(tmp_path, files, ["d"], "/new/", owner=(7, 8))
    assert [(i.dest, i.entry.uid) for i in p.items] == [
        ("new", 7), ("new/sub", 7), ("new/sub/y", 7), ("new/x", 7)]
    ctx.close()
    ctx, p = _plan(tmp_path, files, ["w*.txt"], "/w/")
    assert [i.dest for i in p.items] == ["w", "w/w1.txt", "w/w2.txt"]
    sum1 = p.checksum()
    ctx.close()
    ctx, p = _plan(tmp_path, files, ["w*.txt"], "/w/", chmod=0o600)
    assert p.checksum() != sum1  # modes are content
    ctx.close()
    for srcs, dest, message in [
        (["w1.txt", "w2.txt"], "/w", "must be a directory and end with a /"),
        (["nope*"], "/x/", "no source files were specified"),
        (["../f"], "/x", "outside the build context"),
        (["nope"], "/x", "file not found in build context"),
    ]:
        with pytest.raises(InvalidParameter) as err:
            _plan(tmp_path, files, srcs, dest)
        assert message in str(err.value)


def test_add_extracts_local_archives(tmp_path):
    inner = make_tar([("top/a", "file", b"A"), ("top/l", "symlink", "a")], gz=True).getvalue()
    ctx, p = _plan(tmp_path, [("arch.tgz", "file", inner)], ["arch.tgz"], "/opt/", add=True)
    assert [i.dest for i in p.items] == ["opt", "opt/top/a", "opt/top/l"]
    out = io.BytesIO()
    p.write_tar(out)
    out.seek(0)
    names = [m.name for m in tarfile.open(fileobj=out)]
    assert names == ["opt", "opt/top", "opt/top/a", "opt/top/l"]
    ctx.close()
    ctx, p = _plan(tmp_path, [("arch.tgz", "file", inner)], ["arch.tgz"], "/opt/")
    assert [i.dest for i in p.items] == ["opt", "opt/arch.tgz"]  # COPY does not extract
    ctx.close()
    evil = make_tar([("../../etc/x", "file", b"")]).getvalue()
    with pytest.raises(InvalidParameter) as err:
        _plan(tmp_path, [("evil.tar", "file", evil)], ["evil.tar"], "/opt/", add=True)
    assert "leaves the destination" in str(err.value)


def test_cli_context_tar_reads_back(tmp_path):
    """berth build's own tar writer: long names, symlinks, modes, .dockerignore exceptions; read
    back by tarfile and by the daemon's Context."""
    from runtime.cli.build import context_tar
    root = tmp_path / "ctx"
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "long.txt").write_bytes(b"L" * 700)
    os_link = root / "link"
    os_link.symlink_to("d" * 60 + "/" + "e" * 60 + "/long.txt")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "logs").mkdir()
    (root / "logs" / "a.log").write_text("a")
    (root / "logs" / "keep.log").write_text("k")
    (root / ".dockerignore").write_text("logs\n!logs/keep.log\n")
    (root / "Dockerfile").write_text("FROM scratch\n")
    out = io.BytesIO()
    assert context_tar(str(root), None, out) == "Dockerfile"
    out.seek(0)
    members = {m.name: m for m in tarfile.open(fileobj=out)}
    long_name = "d" * 60 + "/" + "e" * 60 + "/long.txt"
    assert members[long_name].size == 700 and members["run.sh"].mode == 0o755
    assert members["link"].issym() and members["link"].linkname == long_name
    assert "logs/keep.log" in members and "logs/a.log" not in members
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    out.seek(0)
    ctx = Context(out, str(tmp_path))
    try:
        assert ctx.open(ctx.realpath("link")).read() == b"L" * 700
        assert ctx.lstat("run.sh").mode == 0o755
    finally:
        ctx.close()
