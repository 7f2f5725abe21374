"""The build context: the tar a client sends (plain or gzip), kept as one file on disk with an
index of its entries, so a build reads (and checksums) files without unpacking them.

Refused, naming the entry: absolute paths, `..` components, entries below a symlink of the
context, hardlinks to missing entries; a context bigger than the limit.
"""

import collections
import mmap
import os
import posixpath
import tempfile
import zlib

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Optional  # noqa: F401

from runtime.build import ignore
from runtime.errors import InvalidParameter
from runtime.store import tarheader

DEFAULT_LIMIT = 4 << 30  # uncompressed bytes
Entry = collections.namedtuple("Entry", "kind mode uid gid size mtime link")
# kind: "file", "dir", "symlink" or "other"; mode: permission bits (with setuid/gid/sticky)


def clean(name):
    # type: (str) -> str
    """A tar member name as a relative slash path ("" for the root), or InvalidParameter."""
    if not name.startswith(("/", ".")) and "/." not in name and "//" not in name:
        return name.rstrip("/")  # already clean: the common case
    if name.startswith("/"):
        raise InvalidParameter("build context entry %r is an absolute path: send relative names"
                               % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidParameter("build context entry %r contains '..': refused (it would point "
                               "outside the context)" % name)
    return "/".join(parts)


class _Limited(object):
    def __init__(self, out, limit):
        self.out, self.limit, self.n = out, limit, 0

    def write(self, data):
        self.n += len(data)
        if self.n > self.limit:
            raise InvalidParameter("the build context is larger than the limit of %d MiB: leave "
                                   "files out with .dockerignore" % (self.limit >> 20))
        self.out.write(data)


def _spool(stream, out, limit):
    # type: (object, object, int) -> None
    """Copy stream (plain or gzip tar) to out, uncompressed, at most limit bytes."""
    dest = _Limited(out, limit)
    first = stream.read(1 << 16)
    gz = first[:2] == b"\x1f\x8b"
    d = zlib.decompressobj(16 + zlib.MAX_WBITS) if gz else None
    chunk = first
    while chunk:
        if d is not None:
            chunk = d.decompress(chunk, 1 << 22)
            dest.write(chunk)
            while d.unconsumed_tail:
                dest.write(d.decompress(d.unconsumed_tail, 1 << 22))
            if d.eof and d.unused_data:  # concatenated gzip members
                rest = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                dest.write(d.decompress(rest))
        else:
            dest.write(chunk)
        chunk = stream.read(1 << 20)


class Context(object):
    """A build context on disk: `entries` {relative path: Entry}, `open(path)` for file data.
    Implied parent directories are present as dirs (0755). close() removes the spool."""

    def __init__(self, stream, workdir, limit=DEFAULT_LIMIT):
        # type: (object, str, int) -> None
        fd, self.path = tempfile.mkstemp(prefix="context-%d-" % os.getpid(), dir=workdir)
        self.entries = {"": Entry("dir", 0o755, 0, 0, 0, 0, "")}
        self._offsets = {}  # path -> (offset, size)
        self._children = None  # type: Optional[dict]  # dir -> sorted names, made on first use
        self._f = None  # type: Any
        self._map = None  # type: Any  # the spool mapped: headers and file data read from it
        try:
            with os.fdopen(fd, "wb") as f:
                _spool(stream, f, limit)
            self.size = os.path.getsize(self.path)
            self._f = open(self.path, "rb")
            if self.size:
                src = _MemSource(self._f.fileno(), self.size)
                self._map = src.map
                self._read_headers(src)
        except BaseException:
            self.close()
            raise

    def _read_headers(self, src):
        # type: (_MemSource) -> None
        links, has_children = set(), set()
        pax_globals = {}  # type: dict
        while True:
            try:
                h = tarheader.next_header(src, pax_globals)
            except InvalidParameter as exc:
                raise InvalidParameter("the build context is not a tar archive (plain or "
                                       "gzip): %s" % exc) from None
            if h is None:
                break
            data_at = src.off
            size = h.size if h.type == tarheader.REG else 0
            src.skip(size + (-size % tarheader.BLOCK))
            name = clean(h.name)
            if not name:
                continue
            mode, mtime = h.mode & 0o7777, int(h.mtime)
            parent = name
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                if parent in links:
                    raise InvalidParameter("build context entry %r is below the symlink %r: "
                                           "refused" % (h.name, parent))
                if parent in has_children:
                    break  # its own parents were checked when it got its first child
                has_children.add(parent)
                if parent not in self.entries:
                    self.entries[parent] = Entry("dir", 0o755, 0, 0, 0, mtime, "")
            if h.type == tarheader.REG:
                self.entries[name] = Entry("file", mode, h.uid, h.gid, h.size, mtime, "")
                self._offsets[name] = (data_at, h.size)
            elif h.type == tarheader.HARD:
                target = clean(h.linkname)
                if target not in self._offsets:
                    raise InvalidParameter("build context entry %r is a hardlink to %r, which "
                                           "is not an earlier file of the context"
                                           % (h.name, h.linkname))
                self.entries[name] = self.entries[target]
                self._offsets[name] = self._offsets[target]
            elif h.type == tarheader.DIR:
                self.entries[name] = Entry("dir", mode, h.uid, h.gid, 0, mtime, "")
            elif h.type == tarheader.SYM:
                if name in has_children:
                    raise InvalidParameter("build context entry %r is a symlink over a directory "
                                           "with entries: refused" % h.name)
                self.entries[name] = Entry("symlink", 0o777, h.uid, h.gid, 0, mtime, h.linkname)
                links.add(name)
            else:
                self.entries[name] = Entry("other", mode, h.uid, h.gid, 0, mtime, "")
            if h.type != tarheader.SYM:
                links.discard(name)

    def apply_ignore(self, patterns, keep=()):
        # type: (list, tuple) -> None
        """Drop the entries .dockerignore excludes (except those in keep)."""
        if not patterns:
            return
        matcher = ignore.Matcher(patterns)
        self._children = None
        dropped = {}
        for name in list(self.entries):
            if name and name not in keep and matcher.excluded(name):
                dropped[name] = self.entries.pop(name)
                self._offsets.pop(name, None)
        for name in list(self.entries):  # an excluded dir still holds its re-included files
            while "/" in name:
                name = name.rsplit("/", 1)[0]
                if name in self.entries:
                    break
                self.entries[name] = dropped[name]

    def lstat(self, path):
        # type: (str) -> Entry
        """The entry at path (relative, cleaned) or None."""
        return self.entries.get(path)

    def listdir(self, path):
        # type: (str) -> list
        """Names directly inside the directory path, sorted."""
        if self._children is None:
            kids = {}  # type: dict
            for n in self.entries:
                if n:
                    head, _, base = n.rpartition("/")
                    kids.setdefault(head, []).append(base)
            self._children = {k: sorted(v) for k, v in kids.items()}
        return list(self._children.get(path, ()))

    def open(self, path):
        # type: (str) -> _Slice
        """A reader of the file's content."""
        off, size = self._offsets[path]
        return _Slice(self._f.fileno(), off, size)

    def data(self, path):
        # type: (str) -> memoryview
        """The file's content as a view of the mapped spool (no copy; valid until close)."""
        off, size = self._offsets[path]
        return memoryview(self._map)[off:off + size]

    def realpath(self, path):
        # type: (str) -> str
        """path with symlinks resolved inside the context (a link out of it stops at the root)."""
        return resolve(self, path)

    def close(self):
        # type: () -> None
        """Remove the spooled tar."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still held somewhere: the GC unmaps it later
                pass
        if self._f is not None:
            self._f.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def resolve(fs, path, follow_last=True):
    # type: (object, str, bool) -> str
    """path inside the tree fs (anything with lstat) with every symlink followed in scope, as
    Docker's FollowSymlinkInScope: `..` and absolute targets never leave the root."""
    done = []  # type: list
    todo = [p for p in path.split("/") if p]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        cand = "/".join(done + [part])
        e = fs.lstat(cand)
        if e is not None and e.kind == "symlink" and (todo or follow_last):
            hops += 1
            if hops > 40:
                raise InvalidParameter("too many levels of symlinks resolving %r" % path)
            target = e.link
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        done.append(part)
    return "/".join(done)


class _MemSource(object):
    """The spooled tar mapped in memory, read the way tarheader.next_header reads a source."""

    def __init__(self, fd, size):
        # type: (int, int) -> None
        self.map = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        self.off, self.size = 0, size

    def read(self, n):
        # type: (int) -> bytes
        if self.off + n > self.size:
            raise tarheader.TruncatedError("archive is truncated at byte %d" % self.size)
        data = self.map[self.off:self.off + n]
        self.off += n
        return data

    def skip(self, n):
        # type: (int) -> None
        if self.off + n > self.size:
            raise tarheader.TruncatedError("archive is truncated at byte %d" % self.size)
        self.off += n


class _Slice(object):
    """A file-like reader of size bytes at offset of fd (pread: no shared file position)."""

    def __init__(self, fd, offset, size):
        # type: (int, int, int) -> None
        self.fd, self.offset, self.size, self.pos = fd, offset, size, 0

    def read(self, n=-1):
        # type: (int) -> bytes
        left = self.size - self.pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.offset + self.pos)
        if not data:
            raise InvalidParameter("a build context entry is truncated")
        self.pos += len(data)
        return data

    def close(self):
        # type: () -> None
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def normalize(path):
    # type: (str) -> str
    """posixpath.normpath without the leading slash ("" for the root)."""
    p = posixpath.normpath("/" + path).lstrip("/")
    return "" if p == "." else p
