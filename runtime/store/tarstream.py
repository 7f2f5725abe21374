"""Reading tar archives fast: sources that hash what they read (headers: tarheader.py).

A source gives `read(n)` (exactly n bytes, else the archive is truncated), `copy_to(fd, n)` and
`skip(n)`. `FileSource` reads a plain tar file with pread/sendfile (no copy through Python);
`StreamSource` reads any file object, optionally through gzip, hashing every byte it decompresses
(the layer's diff_id) in the same pass.
"""

import os
import queue
import threading
import zlib

from runtime.errors import InvalidParameter
from runtime.sha256 import sha256
from runtime.store.tarheader import (  # noqa: F401 - re-exported for readers of sources
    BLK, CHR, DIR, FIFO, HARD, REG, SYM, Header, TruncatedError, next_header, parse_pax)

CHUNK = 1 << 20
# A gzip stream that has given more than BOMB_FLOOR bytes, BOMB_RATIO times what it has read so
# far, is refused as a gzip bomb (deflate tops out near 1032:1 on runs of zeros; real layers
# stay under ~20:1, a layer that is mostly a huge file of zeros aside).
BOMB_FLOOR = 256 << 20
BOMB_RATIO = 200


class FileSource(object):
    """A plain tar in a regular file. With hash_it, a thread hashes the whole file beside the
    unpack (runtime.sha256 and pread release the GIL), so the diff_id costs no extra wall time."""

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
        h, off = sha256(), 0
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
    bomb of zeros cannot make one huge buffer, and one that expands past BOMB_FLOOR at more than
    BOMB_RATIO:1 is refused before it fills the disk."""
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fresh, raw = True, b""
    read = given = 0
    while True:
        if not raw:
            raw = f.read(CHUNK)
            read += len(raw)
            if not raw:
                if not fresh and not z.eof:
                    raise TruncatedError("gzip stream is truncated")
                return
        fresh = False
        try:
            data = z.decompress(raw, 4 * CHUNK)
        except zlib.error as e:
            raise InvalidParameter("layer is not valid gzip: %s" % e) from None
        given += len(data)
        if given > BOMB_FLOOR and given > BOMB_RATIO * read:
            raise InvalidParameter("layer is a gzip bomb: %d KiB of gzip expanded past %d MiB "
                                   "(more than %d:1), refused" % (read >> 10, given >> 20, BOMB_RATIO))
        raw = z.unconsumed_tail
        if z.eof:
            raw = z.unused_data + raw
            z, fresh = zlib.decompressobj(16 + zlib.MAX_WBITS), True
        if data:
            yield data


class StreamSource(object):
    """Any readable file object, plain or gzip (gz=True), hashed as it is decompressed.
    With threaded=True a helper thread reads, decompresses and hashes ahead (zlib and
    runtime.sha256 release the GIL) while the caller writes files."""

    def __init__(self, fileobj, gz=False, hash_it=True, threaded=False):
        self.chunks = _gunzip_chunks(fileobj) if gz else _raw_chunks(fileobj)
        self.h = sha256() if hash_it else None
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

    def _available(self):
        # type: () -> int
        """Bytes left in the buffer, refilling it first when it is used up (never 0)."""
        if self.pos >= len(self.buf):
            self.buf, self.pos = self._more(), 0
            if not self.buf:
                raise TruncatedError("archive is truncated at byte %d" % self.total)
        return len(self.buf) - self.pos

    def copy_to(self, out_fd, n):
        # type: (int, int) -> None
        """Write the next n bytes to out_fd."""
        while n > 0:
            k = min(n, self._available())
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
            k = min(n, self._available())
            self.pos += k
            n -= k

    def finish(self):
        # type: () -> tuple
        """Read to EOF (a layer's digest covers the padding after the end blocks too) and
        return (sha256 digest or None, total bytes)."""
        while self._more():
            pass
        return ("sha256:" + self.h.hexdigest()) if self.h is not None else None, self.total
