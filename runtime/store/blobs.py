"""Content-addressed blobs: `blobs/sha256/<hex>`, written through a temp file, hashed while
written, renamed into place only when the digest matches."""

import os
import re

from runtime.atomicfile import fsync_dir
from runtime.errors import InvalidParameter, NotFound
from runtime.sha256 import sha256

CHUNK = 1 << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def is_digest(value):
    # type: (object) -> bool
    """Whether value is a `sha256:<64 lowercase hex>` digest."""
    return isinstance(value, str) and bool(_DIGEST.match(value))


def check_digest(digest):
    # type: (str) -> str
    """digest, or InvalidParameter when it is not `sha256:<64 hex>`."""
    if not is_digest(digest):
        raise InvalidParameter("invalid digest %r: expected sha256:<64 lowercase hex>" % (digest,))
    return digest


class BlobStore(object):
    """Blobs under `root/sha256/`; temp files in `tmp_dir` (same filesystem)."""

    def __init__(self, root, tmp_dir):
        # type: (str, str) -> None
        self.root = root
        self.tmp_dir = tmp_dir
        os.makedirs(os.path.join(root, "sha256"), exist_ok=True)
        os.makedirs(tmp_dir, exist_ok=True)

    def path(self, digest):
        # type: (str) -> str
        """Where the blob with this digest lives (it may not exist)."""
        return os.path.join(self.root, "sha256", check_digest(digest)[7:])

    def has(self, digest):
        # type: (str) -> bool
        """True when the blob is stored."""
        return os.path.exists(self.path(digest))

    def open(self, digest):
        """The blob opened for reading in binary; NotFound when missing."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound("blob %s not found in the image store" % digest) from None

    def size(self, digest):
        # type: (str) -> int
        """The blob's size in bytes."""
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound("blob %s not found in the image store" % digest) from None

    def put(self, fileobj, expected_digest=None, size=None, what="blob"):
        # type: (object, str, int, str) -> str
        """Stream fileobj (read to EOF, or exactly `size` bytes when given) into the store and
        return its digest. A mismatch with expected_digest or size raises InvalidParameter
        naming both values and leaves nothing behind."""
        if expected_digest is not None:
            check_digest(expected_digest)
        fd, tmp = self._tempfile()
        try:
            h = sha256()
            n = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    want = CHUNK if size is None else min(CHUNK, size - n)
                    if want <= 0:
                        break
                    data = fileobj.read(want)
                    if not data:
                        break
                    h.update(data)
                    out.write(data)
                    n += len(data)
            digest = "sha256:" + h.hexdigest()
            if size is not None and n != size:
                raise InvalidParameter("%s %s is truncated: got %d of %d bytes"
                                       % (what, expected_digest or digest, n, size))
            if expected_digest is not None and digest != expected_digest:
                raise InvalidParameter("%s digest mismatch: expected %s, got %s"
                                       % (what, expected_digest, digest))
            self.adopt(tmp, digest)
            return digest
        except BaseException:
            _unlink(tmp)
            raise

    def put_bytes(self, data, expected_digest=None):
        # type: (bytes, str) -> str
        """put() for bytes in memory."""
        digest = "sha256:" + sha256(data).hexdigest()
        if expected_digest is not None and digest != check_digest(expected_digest):
            raise InvalidParameter("blob digest mismatch: expected %s, got %s" % (expected_digest, digest))
        if not self.has(digest):
            fd, tmp = self._tempfile()
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                self.adopt(tmp, digest)
            except BaseException:
                _unlink(tmp)
                raise
        return digest

    def adopt(self, tmp_path, digest):
        # type: (str, str) -> None
        """Move a temp file already known to hash to digest into place (read-only), durably:
        its data reaches the disk before the name does, and the name before this returns."""
        fd = os.open(tmp_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp_path, 0o444)
        os.rename(tmp_path, self.path(digest))
        fsync_dir(os.path.join(self.root, "sha256"))

    def remove(self, digest):
        # type: (str) -> None
        """Delete a blob if present."""
        _unlink(self.path(digest))

    def digests(self):
        """Every stored digest."""
        return ["sha256:" + h for h in os.listdir(os.path.join(self.root, "sha256"))]

    def _tempfile(self):
        import tempfile
        return tempfile.mkstemp(prefix="blob-%d-" % os.getpid(), dir=self.tmp_dir)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
