"""Unpack a layer tar into an overlayfs lower directory, safely and about as fast as GNU tar.

`.wh.NAME` becomes a whiteout (char device 0/0), `dir/.wh..wh..opq` marks `dir` opaque
(xattr trusted.overlay.opaque=y). With markers=True (the vfs storage driver, whose data root
may be on a filesystem that refuses both) they stay as they are in the tar, empty files named
`.wh.NAME` and `.wh..wh..opq`, which runtime/store/vfs.py applies when it copies the layers.

Refused with InvalidParameter, naming the entry: absolute paths, `..` components, a hardlink
to something outside this layer, any entry that would be written through a symlink (a symlink
`d -> /etc` then `d/passwd`), sparse files, truncation. The caller unpacks into an empty temp
dir and renames it into place, so a refused layer never becomes visible; since the dir starts
empty, the only symlinks in it are ones this layer made.
"""

import os
import shutil
import stat

from runtime.errors import InvalidParameter
from runtime.store import tarstream
from runtime.store.tarstream import BLK, CHR, DIR, FIFO, HARD, REG, SYM

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"

_WFLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _current_umask():
    # type: () -> int
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _Unpacker(object):
    def __init__(self, dest, markers=False):
        # type: (str, bool) -> None
        self.dest = dest
        self.markers = markers
        self.root = os.getuid() == 0
        self.umask = _current_umask()
        self.dirs_ok = {""}  # relative dirs known to be real directories made by us
        self.symlinks = set()  # type: set
        self.dir_meta = []  # type: list

    # --- paths

    def clean(self, name, what="entry"):
        # type: (str, str) -> str
        if name.startswith("./"):
            name = name[2:]
        if name[:1] != "/":
            rel = name.rstrip("/")
            padded = "/" + rel + "/"
            if "/./" not in padded and "/../" not in padded and "//" not in padded:
                return rel  # the usual case: nothing to normalise
        if name.startswith("/"):
            raise InvalidParameter("layer tar %s %r has an absolute path; layers must use "
                                   "relative paths" % (what, name))
        parts = [p for p in name.split("/") if p and p != "."]
        if ".." in parts:
            raise InvalidParameter("layer tar %s %r climbs out of the layer with '..'" % (what, name))
        return "/".join(parts)

    def parent_ok(self, rel, name):
        # type: (str, str) -> None
        """Make sure every parent of rel is a real directory inside dest (creating missing ones)."""
        parent = rel.rpartition("/")[0]
        if parent in self.dirs_ok:
            return
        path = ""
        for part in parent.split("/"):
            path = path + "/" + part if path else part
            if path in self.dirs_ok:
                continue
            if path in self.symlinks:
                raise InvalidParameter("layer tar entry %r would be written through the symlink %r "
                                       "(it could escape the root filesystem)" % (name, path))
            full = os.path.join(self.dest, path)
            try:
                os.mkdir(full, 0o755)
            except FileExistsError:
                st = os.lstat(full)
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidParameter("layer tar entry %r needs %r to be a directory, but the "
                                           "layer made it something else" % (name, path)) from None
            self.dirs_ok.add(path)

    def make_room(self, rel, full, keep_dir=False):
        # type: (str, str, bool) -> bool
        """Remove whatever an earlier entry put at rel; True if a directory stays (keep_dir)."""
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(full)
            self.dirs_ok = {d for d in self.dirs_ok if d != rel and not d.startswith(rel + "/")}
            self.symlinks = {s for s in self.symlinks if not s.startswith(rel + "/")}
        else:
            os.unlink(full)
            self.symlinks.discard(rel)
        return False

    # --- entries

    def entry(self, h, src):
        rel = self.clean(h.name)
        if not rel:  # the layer root itself ("./")
            if h.type == DIR:
                self.dir_meta.append((self.dest, h))
            src.skip(h.size + (-h.size % 512) if h.type == REG else 0)
            return
        self.parent_ok(rel, h.name)
        full = self.dest + "/" + rel
        base = rel.rpartition("/")[2]
        if base.startswith(WHITEOUT):
            self.whiteout(rel, full, base, h)
        elif h.type == REG:
            self.regular(rel, full, h, src)
            return
        elif h.type == DIR:
            if rel not in self.dirs_ok:
                if not self.make_room(rel, full, keep_dir=True):
                    os.mkdir(full, 0o700)
                self.dirs_ok.add(rel)
            self.dir_meta.append((full, h))
            self.xattrs(full, h)
        elif h.type == SYM:
            self.make_room(rel, full)
            os.symlink(h.linkname, full)
            self.symlinks.add(rel)
            self.finish_path(full, h, symlink=True)
        elif h.type == HARD:
            self.hardlink(rel, full, h)
        elif h.type in (CHR, BLK, FIFO):
            self.make_room(rel, full)
            kind = {CHR: stat.S_IFCHR, BLK: stat.S_IFBLK, FIFO: stat.S_IFIFO}[h.type]
            os.mknod(full, kind | 0o600, os.makedev(h.devmajor, h.devminor))
            self.finish_path(full, h, chmod=True)
        else:
            raise InvalidParameter("layer tar entry %r has unsupported type %r" % (h.name, h.type))
        src.skip(h.size + (-h.size % 512))

    def whiteout(self, rel, full, base, h):
        parent = full.rpartition("/")[0]
        if self.markers:
            self.marker(rel, full, base)
        elif base == OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
        elif base.startswith(OPAQUE[:8]):  # other .wh..wh.* names are aufs bookkeeping
            return
        else:
            target_rel = rel[:len(rel) - len(base)] + base[len(WHITEOUT):]
            target = parent + "/" + base[len(WHITEOUT):]
            self.make_room(target_rel, target)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            if self.root and (h.uid or h.gid):
                os.lchown(target, h.uid, h.gid)

    def marker(self, rel, full, base):
        """The whiteout as an empty marker file (vfs); a deleted name is gone from this layer."""
        if base != OPAQUE and base.startswith(OPAQUE[:8]):
            return  # aufs bookkeeping
        if base != OPAQUE:
            self.make_room(rel[:len(rel) - len(base)] + base[len(WHITEOUT):],
                           full.rpartition("/")[0] + "/" + base[len(WHITEOUT):])
        self.make_room(rel, full)
        os.close(os.open(full, _WFLAGS, 0o600))

    def regular(self, rel, full, h, src):
        try:
            fd = os.open(full, _WFLAGS, h.mode & 0o777)
        except FileExistsError:
            self.make_room(rel, full)
            fd = os.open(full, _WFLAGS, h.mode & 0o777)
        try:
            if h.size:
                src.copy_to(fd, h.size)
            if self.root and (h.uid or h.gid):
                os.fchown(fd, h.uid, h.gid)
            if h.mode & 0o7000 or h.mode & self.umask:
                os.fchmod(fd, h.mode)
            for k, v in h.xattrs.items():
                os.setxattr(fd, k, v)
            os.utime(fd, (h.mtime, h.mtime))
        finally:
            os.close(fd)
        src.skip(-h.size % 512)

    def hardlink(self, rel, full, h):
        target_rel = self.clean(h.linkname, "hardlink target")
        if not target_rel:
            raise InvalidParameter("layer tar hardlink %r points at the layer root" % h.name)
        if target_rel in self.dirs_ok:
            raise InvalidParameter("layer tar hardlink %r points at a directory" % h.name)
        self.parent_ok(target_rel, h.linkname)
        target = os.path.join(self.dest, target_rel)
        if not os.path.lexists(target):
            raise InvalidParameter("layer tar hardlink %r points at %r, which is not in this layer"
                                   % (h.name, h.linkname))
        if target_rel != rel:
            self.make_room(rel, full)
            os.link(target, full, follow_symlinks=False)

    def xattrs(self, full, h):
        for k, v in h.xattrs.items():
            os.setxattr(full, k, v, follow_symlinks=False)

    def finish_path(self, full, h, symlink=False, chmod=False):
        if self.root and (h.uid or h.gid):
            os.lchown(full, h.uid, h.gid)
        if chmod:
            os.chmod(full, h.mode)
        if h.xattrs:
            self.xattrs(full, h)
        os.utime(full, (h.mtime, h.mtime), follow_symlinks=not symlink)

    def finish_dirs(self):
        for full, h in reversed(self.dir_meta):  # children before parents: mtimes stick
            if self.root and (h.uid or h.gid):
                os.chown(full, h.uid, h.gid)
            os.chmod(full, h.mode)
            os.utime(full, (h.mtime, h.mtime))


def unpack(src, dest, markers=False):
    # type: (object, str, bool) -> None
    """Unpack the tar read from src (a tarstream source) into the existing empty dir dest
    (whiteouts as marker files when markers). Raises InvalidParameter naming the offending
    entry; the caller removes dest then."""
    u = _Unpacker(dest, markers)
    pax_globals = {}  # type: dict
    while True:
        h = tarstream.next_header(src, pax_globals)
        if h is None:
            break
        try:
            u.entry(h, src)
        except tarstream.TruncatedError:
            raise tarstream.TruncatedError("layer tar is truncated inside entry %r" % h.name) from None
        except OSError as e:
            raise InvalidParameter("cannot unpack layer tar entry %r: %s"
                                   % (h.name, e.strerror or e)) from None
    u.finish_dirs()


def unpack_file(path, dest, gz=False, hash_it=True, markers=False):
    # type: (str, str, bool, bool, bool) -> tuple
    """Unpack the layer tar file at path (gzip when gz) into dest; returns (diff_id or None when
    not hashed, uncompressed size). Plain tars are read with pread/sendfile and hashed in a
    parallel thread; gzip ones are decompressed and hashed in the same pass, by a thread that
    runs ahead of the one writing files."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if gz:
            with os.fdopen(os.dup(fd), "rb") as f:
                return unpack_stream(f, dest, gz=True, hash_it=hash_it, markers=markers)
        src = tarstream.FileSource(fd, hash_it=hash_it)
        try:
            unpack(src, dest, markers)
        finally:
            result = src.finish()
        return result
    finally:
        os.close(fd)


def unpack_stream(fileobj, dest, gz=False, hash_it=True, markers=False):
    # type: (object, str, bool, bool, bool) -> tuple
    """Unpack a tar read from any file object (plain or gzip); returns (diff_id, size)."""
    src = tarstream.StreamSource(fileobj, gz=gz, hash_it=hash_it, threaded=True)
    try:
        unpack(src, dest, markers)
        return src.finish()
    finally:
        src.close()
