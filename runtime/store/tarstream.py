"""Reading tar archives fast: sources that hash what they read, and a header parser.

A source gives `read(n)` (exactly n bytes, else the archive is truncated), `copy_to(fd, n)` and
`skip(n)`. `FileSource` reads a plain tar file with pread/sendfile (no copy through Python);
`StreamSource` reads any file object, optionally through gzip, hashing every byte it decompresses
(the layer's diff_id) in the same pass. `Header` parses ustar, GNU and PAX headers (tarfile is
about 3x slower than GNU tar at this, so the unpacker does not use it).
"""

import hashlib
import os
import queue
import struct
import threading
import zlib

from runtime.errors import InvalidParameter

CHUNK = 1 << 20
BLOCK = 512
ZERO = b"\0" * BLOCK

REG, HARD, SYM, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_REGULAR = ("0", "\0", "7")


class TruncatedError(InvalidParameter):
    """The archive ends in the middle of an entry."""


class FileSource(object):
    """A plain tar in a regular file. With hash_it, a thread hashes the whole file beside the
    unpack (hashlib and pread release the GIL), so the diff_id costs no extra wall time."""

    def __init__(self, fd, hash_it=True):
        # type: (int, bool) -> None
        self.fd = fd
        self.off = 0
        self.size = os.fstat(fd).st_size
        self._digest = None  # type: object
        self._thread = None  # type: object
        if hash_it:
            self._thread = threading.Thread(target=self._hash, name="layer-hash", daemon=True)
            self._thread.start()

    def _hash(self):
        h, off = hashlib.sha256(), 0
        while True:
            data = os.pread(self.fd, 4 * CHUNK, off)
            if not data:
                break
            h.update(data)
            off += len(data)
        self._digest = "sha256:" + h.hexdigest()

    def read(self, n):
        # type: (int) -> bytes
        """Exactly n bytes."""
        data = os.pread(self.fd, n, self.off)
        if len(data) != n:
            raise TruncatedError("archive is truncated at byte %d" % (self.off + len(data)))
        self.off += n
        return data

    def copy_to(self, out_fd, n):
        # type: (int, int) -> None
        """Copy the next n bytes to out_fd (kernel to kernel)."""
        end = self.off + n
        if end > self.size:
            raise TruncatedError("archive is truncated at byte %d" % self.size)
        while self.off < end:
            k = os.sendfile(out_fd, self.fd, self.off, end - self.off)
            if k <= 0:
                raise TruncatedError("archive is truncated at byte %d" % self.off)
            self.off += k

    def skip(self, n):
        # type: (int) -> None
        """Skip n bytes."""
        if self.off + n > self.size:
            raise TruncatedError("archive is truncated at byte %d" % self.size)
        self.off += n

    def finish(self):
        # type: () -> tuple
        """(sha256 digest of the whole file or None, its size), after the end of the archive."""
        if self._thread is not None:
            self._thread.join()
        return self._digest, self.size


def _raw_chunks(f):
    while True:
        raw = f.read(CHUNK)
        if not raw:
            return
        yield raw


def _gunzip_chunks(f):
    """Decompressed chunks of a (multi-member) gzip stream, each at most 4 MiB: a small
    bomb of zeros cannot make one huge buffer."""
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fresh, raw = True, b""
    while True:
        if not raw:
            raw = f.read(CHUNK)
            if not raw:
                if not fresh and not z.eof:
                    raise TruncatedError("gzip stream is truncated")
                return
        fresh = False
        try:
            data = z.decompress(raw, 4 * CHUNK)
        except zlib.error as e:
            raise InvalidParameter("layer is not valid gzip: %s" % e) from None
        raw = z.unconsumed_tail
        if z.eof:
            raw = z.unused_data + raw
            z, fresh = zlib.decompressobj(16 + zlib.MAX_WBITS), True
        if data:
            yield data


class StreamSource(object):
    """Any readable file object, plain or gzip (gz=True), hashed as it is decompressed.
    With threaded=True a helper thread reads, decompresses and hashes ahead (zlib and
    hashlib release the GIL) while the caller writes files."""

    def __init__(self, fileobj, gz=False, hash_it=True, threaded=False):
        self.chunks = _gunzip_chunks(fileobj) if gz else _raw_chunks(fileobj)
        self.h = hashlib.sha256() if hash_it else None
        self.buf = b""
        self.pos = 0
        self.total = 0
        self._eof = False
        self._queue = None  # type: object
        if threaded:
            self._queue = queue.Queue(maxsize=8)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._produce, name="layer-read", daemon=True)
            self._thread.start()

    def _next(self):
        # type: () -> bytes
        data = next(self.chunks, b"")
        if data and self.h is not None:
            self.h.update(data)
        return data

    def _produce(self):
        try:
            while not self._stop.is_set():
                item = self._next()
                self._put(item)
                if not item:
                    return
        except BaseException as e:  # handed to the reading thread
            self._put(e)

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _more(self):
        # type: () -> bytes
        if self._eof:
            return b""
        if self._queue is None:
            data = self._next()
        else:
            data = self._queue.get()
            if isinstance(data, BaseException):
                self._eof = True
                raise data
        if not data:
            self._eof = True
        self.total += len(data)
        return data

    def close(self):
        # type: () -> None
        """Stop the helper thread (after an error)."""
        if self._queue is not None:
            self._stop.set()
            self._thread.join()

    def read(self, n):
        # type: (int) -> bytes
        """Exactly n bytes."""
        end = self.pos + n
        if end <= len(self.buf):
            out = self.buf[self.pos:end]
            self.pos = end
            return out
        parts = [self.buf[self.pos:]]
        need = end - len(self.buf)
        while need > 0:
            chunk = self._more()
            if not chunk:
                raise TruncatedError("archive is truncated at byte %d" % self.total)
            if len(chunk) <= need:
                parts.append(chunk)
                need -= len(chunk)
                self.buf, self.pos = b"", 0
            else:
                parts.append(chunk[:need])
                self.buf, self.pos = chunk, need
                need = 0
        return b"".join(parts)

    def copy_to(self, out_fd, n):
        # type: (int, int) -> None
        """Write the next n bytes to out_fd."""
        while n > 0:
            if self.pos >= len(self.buf):
                self.buf, self.pos = self._more(), 0
                if not self.buf:
                    raise TruncatedError("archive is truncated at byte %d" % self.total)
            k = min(n, len(self.buf) - self.pos)
            view = memoryview(self.buf)[self.pos:self.pos + k]
            while view:
                w = os.write(out_fd, view)
                view = view[w:]
            self.pos += k
            n -= k

    def skip(self, n):
        # type: (int) -> None
        """Skip n bytes."""
        while n > 0:
            if self.pos >= len(self.buf):
                self.buf, self.pos = self._more(), 0
                if not self.buf:
                    raise TruncatedError("archive is truncated at byte %d" % self.total)
            k = min(n, len(self.buf) - self.pos)
            self.pos += k
            n -= k

    def finish(self):
        # type: () -> tuple
        """Read to EOF (a layer's digest covers the padding after the end blocks too) and
        return (sha256 digest or None, total bytes)."""
        while self._more():
            pass
        return ("sha256:" + self.h.hexdigest()) if self.h is not None else None, self.total


def _num(field, what):
    # type: (bytes, str) -> int
    if field and field[0] & 0x80:  # GNU base-256
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else n
    s = field.split(b"\0", 1)[0].strip()
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise InvalidParameter("not a tar archive: bad %s field %r" % (what, s[:20])) from None


def _str(field):
    # type: (bytes) -> str
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def parse_pax(data):
    # type: (bytes) -> dict
    """The records of a PAX extended header: {"path": ..., "SCHILY.xattr.x": bytes, ...}."""
    out = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidParameter("not a tar archive: bad PAX record") from None
        rec = data[sp + 1:pos + length - 1]
        key, _, value = rec.partition(b"=")
        k = key.decode("utf-8", "surrogateescape")
        out[k] = value if "xattr" in k else value.decode("utf-8", "surrogateescape")
        if length <= 0:
            raise InvalidParameter("not a tar archive: bad PAX record length")
        pos += length
    return out


class Header(object):
    """One entry's metadata: name, type (REG, DIR, ...), mode, uid, gid, size, mtime, linkname,
    devmajor/devminor, xattrs {name: bytes}."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname",
                 "devmajor", "devminor", "xattrs")


_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")


_OCT_CACHE = {}  # type: dict


def _oct(field, what):
    # type: (bytes, str) -> int
    n = _OCT_CACHE.get(field)  # modes, owners and mtimes repeat across a layer
    if n is not None:
        return n
    try:  # the common case: octal digits then NUL/space padding
        n = int(field.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        return _num(field, what)
    if len(_OCT_CACHE) < 4096:
        _OCT_CACHE[field] = n
    return n


def next_header(src, globals_):
    # type: (object, dict) -> object
    """The next entry's Header (with PAX/GNU long-name extensions applied), or None at the
    end of the archive. `globals_` accumulates PAX global records across calls."""
    pax = dict(globals_) if globals_ else None
    longname = longlink = None
    while True:
        try:
            block = src.read(BLOCK)
        except TruncatedError:
            if not pax and longname is None:
                return None  # tolerated, as GNU tar does: no end-of-archive blocks
            raise
        if block == ZERO:
            return None
        (name, mode, uid, gid, size, mtime, chksum, tflag, linkname, magic, _u, _g, major, minor,
         prefix) = _FIELDS.unpack(block)
        if _oct(chksum, "checksum") != sum(block) - sum(chksum) + 256:
            raise InvalidParameter("not a tar archive: header checksum mismatch")
        t = tflag.decode("latin-1") if tflag != b"\0" else "0"
        size = _oct(size, "size")
        if t in ("x", "g", "L", "K"):
            data = src.read(size)
            src.skip(-size % BLOCK)
            if t in ("x", "g"):
                records = parse_pax(data)
                if t == "g":
                    globals_.update(records)
                merged = dict(pax or {})
                merged.update(records)
                pax = merged
            elif t == "L":
                longname = _str(data)
            else:
                longlink = _str(data)
            continue
        h = Header()
        h.type = REG if t in _REGULAR else t
        if longname is None:
            name = _str(name)
            if magic[:6] == b"ustar\x00" and prefix[0]:
                name = _str(prefix) + "/" + name
        else:
            name = longname
        h.name = name
        h.linkname = longlink if longlink is not None else (_str(linkname) if linkname[0] else "")
        h.mode = _oct(mode, "mode") & 0o7777
        h.uid = _oct(uid, "uid")
        h.gid = _oct(gid, "gid")
        h.size = size
        h.mtime = _oct(mtime, "mtime")
        if t in (CHR, BLK):
            h.devmajor, h.devminor = _oct(major, "devmajor"), _oct(minor, "devminor")
        else:
            h.devmajor = h.devminor = 0
        h.xattrs = _NO_XATTRS
        if pax:
            _apply_pax(h, pax)
        elif t == "S":
            raise InvalidParameter("layer tar entry %r is a sparse file, which layers may not "
                                   "contain" % h.name)
        return h


_NO_XATTRS = {}  # type: dict


def _apply_pax(h, pax):
    """PAX records override the ustar fields."""
    h.name = pax.get("path", h.name)
    h.linkname = pax.get("linkpath", h.linkname)
    for key in ("uid", "gid", "size"):
        if key in pax:
            setattr(h, key, int(pax[key]))
    if "mtime" in pax:
        h.mtime = float(pax["mtime"])
    h.xattrs = {k[13:]: v for k, v in pax.items() if k.startswith("SCHILY.xattr.")}
    if h.type == "S" or any(k.startswith("GNU.sparse") for k in pax):
        raise InvalidParameter("layer tar entry %r is a sparse file, which layers may not "
                               "contain" % h.name)
