"""COPY and ADD: which files go where, their checksum (the cache key's content part), and the
layer tar that puts them there.

The layer is written straight from the sources (the context's spool or a stage's layers) as
a tar: the destination's parent directories first (with the image's own metadata when they
exist there), then every item. Nothing is staged on disk; the store unpacks the tar once.
"""

import io
import posixpath
import re
import tarfile

from runtime import TYPE_CHECKING
from runtime.build.context import Entry, clean, normalize, resolve
from runtime.errors import InvalidParameter
from runtime.sha256 import sha256

if TYPE_CHECKING:
    from typing import List, Optional, Tuple  # noqa: F401

_WILD = re.compile(r"[*?\[]")
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class Item(object):
    """One entry of the new layer: dest (relative to the root), its Entry (owner and mode as
    they will be), and where its data comes from (fs + path, or archive bytes + member)."""

    __slots__ = ("dest", "entry", "fs", "src", "member", "archive")

    def __init__(self, dest, entry, fs=None, src=None, member=None, archive=None):
        self.dest, self.entry, self.fs, self.src = dest, entry, fs, src
        self.member, self.archive = member, archive


def _is_url(src):
    # type: (str) -> bool
    return src.startswith(("http://", "https://", "git@", "git://"))


def _matches(fs, pattern):
    # type: (object, str) -> List[str]
    """Context paths matching a Go filepath.Match pattern (same number of components)."""
    from runtime.build.ignore import _regex
    rx = _regex(pattern)
    depth = pattern.count("/")
    return sorted(p for p in fs.entries if p and p.count("/") == depth and rx.match(p)) \
        if hasattr(fs, "entries") else _walk_match(fs, pattern)


def _walk_match(fs, pattern):
    # type: (object, str) -> List[str]
    from runtime.build.ignore import _regex
    parts = pattern.split("/")
    cands = [""]
    for part in parts:
        rx = _regex(part)
        nxt = []
        for c in cands:
            e = fs.lstat(c) if c else Entry("dir", 0, 0, 0, 0, 0, "")
            if e is None or e.kind != "dir":
                continue
            nxt += [(c + "/" + n) if c else n for n in fs.listdir(c) if rx.match(n)]
        cands = nxt
    return sorted(cands)


def is_archive(head):
    # type: (bytes) -> bool
    """True for a tar (plain, gzip, bzip2 or xz) by its first 512 bytes."""
    return head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar"


class CopyPlan(object):
    """What one COPY/ADD adds; build with plan()."""

    def __init__(self, items, parents, what):
        # type: (List[Item], List[Item], str) -> None
        self.items = items
        self.parents = parents
        self.what = what  # e.g. "file:<sha>" or "dir:<sha>" for the history line

    def checksum(self):
        # type: () -> str
        """sha256 over names, kinds, modes, owners, link targets and bytes (not mtimes)."""
        h = sha256()
        for it in self.items:
            e = it.entry
            h.update(("%s\0%s\0%o\0%d\0%d\0%s\0" % (it.dest, e.kind, e.mode, e.uid, e.gid,
                                                     e.link)).encode("utf-8", "surrogateescape"))
            if e.kind == "file":
                self._hash_data(h, it)
            h.update(b"\n")
        return h.hexdigest()

    def _hash_data(self, h, it):
        # type: (object, Item) -> None
        view = getattr(it.fs, "data", None) if it.archive is None else None
        if view is not None:  # the context's mapped spool: no read calls, no copies
            h.update(view(it.src))
            return
        with self._open(it) as f:
            while True:
                data = f.read(1 << 20)
                if not data:
                    break
                h.update(data)

    def _open(self, it):
        if it.archive is not None:
            return it.archive.extractfile(it.member)
        return it.fs.open(it.src)

    def write_tar(self, out):
        # type: (object) -> None
        """The layer tar of the parent dirs and items to out."""
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for it in sorted(self.parents + self.items, key=lambda i: i.dest.split("/")):
                e = it.entry
                ti = tarfile.TarInfo(it.dest + ("/" if e.kind == "dir" else ""))
                ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
                ti.uname = ti.gname = ""
                if e.kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    tf.addfile(ti)
                elif e.kind == "symlink":
                    ti.type, ti.linkname = tarfile.SYMTYPE, e.link
                    tf.addfile(ti)
                elif e.kind == "file":
                    ti.size = e.size
                    with self._open(it) as f:
                        tf.addfile(ti, f)
                elif it.member is not None:  # device, fifo from an ADDed archive
                    m = it.member
                    ti.type, ti.devmajor, ti.devminor = m.type, m.devmajor, m.devminor
                    tf.addfile(ti)


def plan(fs, sources, dest, workdir, image, owner=None, chmod=None, add=False, cmd="COPY"):
    # type: (object, List[str], str, str, object, Optional[Tuple[int, int]], Optional[int], bool, str) -> CopyPlan
    """The items of `COPY sources... dest` (or ADD with add=True): fs is the context or a
    stage's RootView, image the RootView of the image being built on (to resolve dest through
    its symlinks and keep its directories' metadata). owner=(uid, gid) from --chown."""
    uid, gid = owner or (0, 0)
    dest_dir_form = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    if not dest.startswith("/"):
        dest = posixpath.join(workdir or "/", dest)
    dest_rel = normalize(dest)
    matches = []  # type: List[Tuple[str, Entry]]
    wildcard = False
    for src in sources:
        if _is_url(src):
            if add:
                raise InvalidParameter(
                    "ADD %s: downloading from a URL is not supported here (the builder has no "
                    "network): download the file into the build context and COPY it" % src)
            raise InvalidParameter("COPY %s: source can't be a URL (COPY takes files of the "
                                   "build context)" % src)
        rel = posixpath.normpath("/" + src)
        if posixpath.normpath(src).startswith("../") or posixpath.normpath(src) == "..":
            raise InvalidParameter("%s failed: forbidden path outside the build context: %s"
                                   % (cmd, src))
        rel = rel.lstrip("/")
        rel = "" if rel == "." else rel
        if _WILD.search(rel):
            wildcard = True
            found = _matches(fs, rel)
            for p in found:
                e = fs.lstat(p)
                if e.kind == "symlink":
                    p = resolve(fs, p)
                    e = fs.lstat(p)
                if e is not None:
                    matches.append((p, e))
            continue
        real = resolve(fs, rel)
        e = fs.lstat(real)
        if e is None:
            raise InvalidParameter("%s failed: file not found in build context or excluded by "
                                   ".dockerignore: stat %s: file does not exist" % (cmd, src))
        matches.append((real, e))
    if not matches:
        raise InvalidParameter("%s failed: no source files were specified (%s matched nothing)"
                               % (cmd, " ".join(sources)))
    if (len(sources) > 1 or wildcard and len(matches) > 1) and not dest_dir_form:
        raise InvalidParameter("When using %s with more than one source file, the destination "
                               "must be a directory and end with a /" % cmd)
    target = resolve(image, dest_rel) if dest_rel else ""
    existing = image.lstat(target) if target else None
    into_dir = dest_dir_form or (existing is not None and existing.kind == "dir")
    items = []  # type: List[Item]
    kinds = set()

    def own(e, kind=None):
        mode = e.mode
        if chmod is not None:
            mode = chmod
        return Entry(kind or e.kind, mode, uid, gid, e.size, e.mtime, e.link)

    for path, e in matches:
        if e.kind == "dir":
            kinds.add("dir")
            if target and (existing is None or existing.kind != "dir"):
                items.append(Item(target, own(e)))
            _walk(fs, path, target, items, own)
            continue
        name = posixpath.basename(path) if path else ""
        to = (target + "/" + name if target else name) if into_dir else target
        if add and e.kind == "file" and e.size >= 4:
            with fs.open(path) as f:
                head = f.read(512)
            if is_archive(head):
                kinds.add("archive")
                _extract_items(fs, path, target, items, cmd)
                continue
        kinds.add("file")
        items.append(Item(to, own(e), fs, path))
    if into_dir and target and existing is None and not any(it.dest == target for it in items):
        items.append(Item(target, Entry("dir", 0o755, uid, gid, 0, 0, "")))
    made = {it.dest for it in items}
    dirs = [d for d in _parents(image, sorted(made), uid, gid) if d.dest not in made]
    items.sort(key=lambda it: it.dest.split("/"))
    return CopyPlan(items, dirs, "multi" if len(kinds) > 1 else (kinds.pop() if kinds else "file"))


def _walk(fs, path, to, items, own):
    # type: (object, str, str, list, object) -> None
    for name in fs.listdir(path):
        src = (path + "/" + name) if path else name
        dst = (to + "/" + name) if to else name
        e = fs.lstat(src)
        if e is None:
            continue
        items.append(Item(dst, own(e), fs, src))
        if e.kind == "dir":
            _walk(fs, src, dst, items, own)


def _extract_items(fs, path, target, items, cmd):
    # type: (object, str, str, list, str) -> None
    """ADD of a local tar: its entries under target (owners and modes as archived)."""
    with fs.open(path) as f:
        data = f.read()
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
        members = tf.getmembers()
    except tarfile.TarError as exc:
        raise InvalidParameter("%s %s: cannot read the archive: %s" % (cmd, path, exc)) from None
    for m in members:
        try:
            name = clean(m.name)
        except InvalidParameter:
            raise InvalidParameter("%s %s: archive entry %r leaves the destination: refused"
                                   % (cmd, path, m.name)) from None
        if not name:
            continue
        dst = (target + "/" + name) if target else name
        if m.isreg():
            kind = "file"
        elif m.isdir():
            kind = "dir"
        elif m.issym():
            kind = "symlink"
        elif m.islnk():
            kind = "file"
            m = tf.getmember(m.linkname) if m.linkname in tf.getnames() else m
        else:
            kind = "other"
        e = Entry(kind, m.mode & 0o7777, m.uid, m.gid, m.size if kind == "file" else 0,
                  int(m.mtime), m.linkname if kind == "symlink" else "")
        items.append(Item(dst, e, member=m, archive=tf))


def _parents(image, dests, uid, gid):
    # type: (object, List[str], int, int) -> List[Item]
    """Dir items for every parent of dests: the image's own (mode, owner, mtime) where it has
    the dir, else new 0755 dirs owned by uid:gid."""
    need = set()
    made = set(dests)
    for d in dests:
        if d.rpartition("/")[0] in made:
            continue  # its parent is an item itself, whose parents are counted once
        parts = d.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            need.add("/".join(parts[:i]))
    out = []
    for p in sorted(need, key=lambda x: x.split("/")):
        e = image.lstat(p)
        if e is not None and e.kind == "dir":
            out.append(Item(p, e))
        else:
            out.append(Item(p, Entry("dir", 0o755, uid, gid, 0, 0, "")))
    return out


def owner_ids(image, chown):
    # type: (object, str) -> Optional[Tuple[int, int]]
    """--chown=USER[:GROUP] as (uid, gid), names looked up in the image's /etc/passwd and
    /etc/group (a user alone: its primary group); None without --chown."""
    if not chown:
        return None
    user, _, group = chown.partition(":")
    uid = _lookup(image, "etc/passwd", user)
    if group:
        gid = _lookup(image, "etc/group", group)
    elif user.isdigit():
        gid = uid
    else:
        gid = _lookup(image, "etc/passwd", user, field=3)
    return uid, gid


def _lookup(image, path, name, field=2):
    # type: (object, str, str, int) -> int
    if name.isdigit():
        return int(name)
    for line in image.read(path).decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[0] == name and parts[field].isdigit():
            return int(parts[field])
    raise InvalidParameter("--chown: no %s named %r in the image's /%s"
                           % ("group" if path.endswith("group") else "user", name, path))
