"""Unpacked layers, one directory per diff_id, shared by every image that has the layer.

    layers/<diff hex>/diff/        the layer as an overlayfs lower dir (whiteouts converted)
    layers/<diff hex>/size         uncompressed tar size in bytes
    l/<12 hex>  -> ../layers/<diff hex>/diff    short names for the overlay mount option
    blobmap/<blob hex>             diff_id of the (compressed) blob already unpacked

A layer is unpacked into tmp/ and renamed into place, so a layer directory either is complete
or does not exist; unpacking a blob twice finds the first result.
"""

import ctypes
import ctypes.util
import os
import shutil
import tempfile
import threading

from runtime.atomicfile import fsync_dir
from runtime.errors import InvalidParameter, NotFound
from runtime.store.blobs import is_digest
from runtime.store import unpack as unpacker

GZIP_TYPES = (
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
)
TAR_TYPES = (
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/x-tar",
)
LINK_LEN = 12


def is_gzip_type(media_type):
    # type: (str) -> bool
    """True for a gzip layer media type, False for a plain tar one; InvalidParameter naming
    any other (zstd, foreign/non-distributable, unknown)."""
    if media_type in GZIP_TYPES:
        return True
    if media_type in TAR_TYPES:
        return False
    raise InvalidParameter("unsupported layer media type %r: berth handles plain tar and gzip "
                           "layers only" % (media_type,))


def sniff_compression(head):
    # type: (bytes) -> str
    """"gzip", "tar" or raises InvalidParameter naming the compression found in a layer file."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        raise InvalidParameter("unsupported layer compression zstd: berth handles plain tar and "
                               "gzip layers only")
    if head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        raise InvalidParameter("unsupported layer compression %s: berth handles plain tar and "
                               "gzip layers only" % ("bzip2" if head[:1] == b"B" else "xz"))
    return "tar"


def _size_key(diff_id):
    # type: (str) -> object
    """A diff_id's key in the sizes kept: its digest's bytes (the text when not sha256:HEX)."""
    try:
        return bytes.fromhex(diff_id[7:]) if diff_id.startswith("sha256:") else diff_id
    except ValueError:
        return diff_id


class LayerStore(object):
    """Layer directories under `root`, temp dirs in `tmp_dir` (same filesystem); markers:
    whiteouts unpacked as `.wh.` marker files (the vfs driver) instead of overlay's."""

    def __init__(self, root, tmp_dir, markers=False):
        # type: (str, str, bool) -> None
        self.root = root
        self.tmp_dir = tmp_dir
        self.markers = markers
        self.layers = os.path.join(root, "layers")
        self.links = os.path.join(root, "l")
        self.blobmap = os.path.join(root, "blobmap")
        self._sizes = {}  # type: dict
        # called with a layer's dir when it is deleted (the engine drops userns-remap copies)
        self.on_remove = []  # type: list
        for d in (self.layers, self.links, self.blobmap):
            os.makedirs(d, exist_ok=True)

    def _dir(self, diff_id):
        # type: (str) -> str
        return os.path.join(self.layers, diff_id[7:])

    def has(self, diff_id):
        # type: (str) -> bool
        """True when the layer is unpacked."""
        return os.path.isdir(self._dir(diff_id))

    def diff_dir(self, diff_id):
        # type: (str) -> str
        """The layer's unpacked directory; NotFound when missing."""
        d = os.path.join(self._dir(diff_id), "diff")
        if not os.path.isdir(d):
            raise NotFound("layer %s is not in the image store" % diff_id)
        return d

    def size(self, diff_id):
        # type: (str) -> int
        """Uncompressed size of the layer tar. Kept in memory once read: a diff_id is the
        tar's digest, so its size never changes (`images` with 5,000 layers read 5,000 files).
        Kept by the digest's 32 bytes, not its 71-character text (5,000 layers: 0.3 MB less)."""
        key = _size_key(diff_id)
        known = self._sizes.get(key)
        if known is not None:
            return known
        try:
            with open(os.path.join(self._dir(diff_id), "size")) as f:
                size = int(f.read())
        except (OSError, ValueError):
            return 0
        self._sizes[key] = size
        return size

    def link(self, diff_id):
        # type: (str) -> str
        """The short name `l/<12 hex>` of the layer, relative to root (made if missing)."""
        name = diff_id[7:7 + LINK_LEN]
        path = os.path.join(self.links, name)
        if not os.path.islink(path):
            try:
                os.symlink("../layers/%s/diff" % diff_id[7:], path)
            except FileExistsError:
                pass
        return "l/" + name

    def diff_for_blob(self, blob_digest):
        # type: (str) -> object
        """The diff_id a blob was unpacked to, if it was and the layer still exists."""
        try:
            with open(os.path.join(self.blobmap, blob_digest[7:])) as f:
                diff_id = f.read().strip()
        except OSError:
            return None
        # (an entry cut short by a power cut before its layer's syncfs may be empty)
        if not is_digest(diff_id):
            return None
        return diff_id if self.has(diff_id) else None

    def unpack(self, blob_path, blob_digest, gz, expected_diff_id=None):
        # type: (str, str, bool, str) -> tuple
        """Unpack the blob file into a new layer (or find it already there); returns
        (diff_id, created). For a plain tar blob the diff_id is the (verified) blob digest;
        for gzip it is hashed while unpacking. A diff_id other than expected_diff_id raises
        InvalidParameter and leaves nothing."""
        known = self.diff_for_blob(blob_digest)
        if known:
            if expected_diff_id and known != expected_diff_id:
                raise InvalidParameter("layer %s has diff_id %s, but the image config says %s"
                                       % (blob_digest, known, expected_diff_id))
            return known, False
        if not gz and self.has(blob_digest):
            self._map(blob_digest, blob_digest)
            return self._check(blob_digest, expected_diff_id, blob_digest), False
        tmp = tempfile.mkdtemp(prefix="layer-%d-" % os.getpid(), dir=self.tmp_dir)
        try:
            os.mkdir(os.path.join(tmp, "diff"), 0o755)
            diff_id, size = unpacker.unpack_file(blob_path, os.path.join(tmp, "diff"), gz=gz,
                                                 hash_it=gz, markers=self.markers)
            if not gz:
                diff_id = blob_digest
            self._check(diff_id, expected_diff_id, blob_digest)
            # the map entry before the layer's syncfs, which makes both durable (its own two
            # fsyncs cost a ten-layer pull 2-4 %); an entry whose layer never got in is taken
            # for none (diff_for_blob)
            self._map(blob_digest, diff_id, durable=False)
            created = self._install(tmp, diff_id, size)
        except BaseException:
            remove_tree(tmp)
            raise
        return diff_id, created

    def _check(self, diff_id, expected, blob_digest):
        if expected and diff_id != expected:
            raise InvalidParameter("layer %s unpacks to diff_id %s, but the image config says %s"
                                   % (blob_digest, diff_id, expected))
        return diff_id

    def _install(self, tmp, diff_id, size):
        # type: (str, str, int) -> bool
        with open(os.path.join(tmp, "size"), "w") as f:
            f.write(str(size))
        # the unpacked files (and the blob's map entry) reach the disk before the layer's name
        # does (one syncfs rather than an fsync per file): a power cut leaves the layer whole
        # or absent
        syncfs(tmp)
        try:
            os.rename(tmp, self._dir(diff_id))
        except OSError:
            if not self.has(diff_id):
                raise
            remove_tree(tmp)  # someone unpacked the same layer first
            return False
        fsync_dir(self.layers)
        self.link(diff_id)
        return True

    def _map(self, blob_digest, diff_id, durable=True):
        # type: (str, str, bool) -> None
        """Record that the blob unpacks to diff_id (durable: fsynced, else left to a syncfs
        that follows)."""
        tmp = os.path.join(self.blobmap, ".%s.tmp%d.%d" % (blob_digest[7:], os.getpid(),
                                                             threading.get_ident()))
        with open(tmp, "w") as f:
            f.write(diff_id)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.blobmap, blob_digest[7:]))
        if durable:
            fsync_dir(self.blobmap)

    def remove(self, diff_id, blob_digests=()):
        # type: (str, tuple) -> None
        """Delete a layer (its dir, short link and blob map entries)."""
        self._sizes.pop(_size_key(diff_id), None)
        try:
            os.unlink(os.path.join(self.links, diff_id[7:7 + LINK_LEN]))
        except FileNotFoundError:
            pass
        for b in set(blob_digests) | {diff_id}:
            try:
                os.unlink(os.path.join(self.blobmap, b[7:]))
            except FileNotFoundError:
                pass
        d = self._dir(diff_id)
        for hook in self.on_remove:
            hook(os.path.join(d, "diff"))
        if os.path.isdir(d):
            # rename first so the layer vanishes at once; the slow delete follows
            gone = tempfile.mkdtemp(prefix="gone-%d-" % os.getpid(), dir=self.tmp_dir)
            os.rename(d, os.path.join(gone, "x"))
            remove_tree(gone)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def syncfs(path):
    # type: (str) -> None
    """syncfs(2) of the filesystem holding path: everything written there reaches the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "syncfs %s: %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def remove_tree(path):
    # type: (str) -> None
    """rm -rf that also clears immutable-free read-only dirs (layers may have 0555 dirs)."""
    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)
