"""SHA-256 objects (as hashlib.sha256 makes them) that let other threads run while they hash.

The engine hashes every blob it downloads and every layer tar it unpacks, on helper threads
beside the ones writing files (runtime/store/tarstream.py, runtime/registry/pull.py). hashlib
releases the GIL while it hashes when it is OpenSSL's (`_hashlib`, as on CentOS 7's python3:
OpenSSL 1.0.2). A Python built without it (Python 3.6 does not build `_hashlib` against
OpenSSL 3, so a 3.6 built on a current distribution has only the builtin `_sha256`) hashes at
a tenth of the speed and holds the GIL throughout, stalling the threads that write the layer's
files. There this module calls the system's libcrypto itself, through ctypes (stdlib only;
ctypes releases the GIL for the length of each call). Without libcrypto, hashlib's builtin.

    from runtime.sha256 import sha256
    h = sha256(); h.update(chunk); "sha256:" + h.hexdigest()
"""

import binascii
import ctypes
import hashlib

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional  # noqa: F401

# sizeof(SHA256_CTX) is 112 bytes in OpenSSL 1.0.2 to 3.x (eight words of state, two of
# length, sixteen of block, two counters); a little more is harmless
_CTX_SIZE = 128
_SLICE = 1 << 20
_LIBRARIES = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so.10", "libcrypto.so")


def _load_libcrypto():
    # type: () -> Optional[Any]
    """libcrypto with SHA256_Init/Update/Final typed, or None when no library has them."""
    for name in _LIBRARIES:
        try:
            lib = ctypes.CDLL(name)
            functions = (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final)
        except (OSError, AttributeError):
            continue
        for fn in functions:
            fn.restype = ctypes.c_int
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        return lib
    return None


class LibcryptoSHA256(object):
    """hashlib.sha256's interface (update, digest, hexdigest, copy) over libcrypto's SHA256_*."""

    __slots__ = ("_ctx",)
    name = "sha256"
    digest_size = 32
    block_size = 64
    _lib = None  # type: Any

    def __init__(self, data=b""):
        # type: (Any) -> None
        lib = LibcryptoSHA256._lib
        if lib is None:
            lib = LibcryptoSHA256._lib = _load_libcrypto()
            if lib is None:
                raise OSError("no libcrypto with SHA256_Init found (tried %s)" % ", ".join(_LIBRARIES))
        self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
        if lib.SHA256_Init(self._ctx) != 1:
            raise OSError("libcrypto's SHA256_Init failed")
        if data:
            self.update(data)

    def update(self, data):
        # type: (Any) -> None
        """Hash data next: bytes, or any contiguous buffer (bytearray, memoryview, mmap)."""
        if isinstance(data, bytes):
            self._update(data, len(data))
            return
        view = memoryview(data).cast("B")
        if not view.readonly:
            if view.nbytes:
                self._update((ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes)
            return
        # ctypes points into bytes and writable buffers only: a read-only one (a file mapped
        # read-only) is copied a slice at a time, never whole
        for start in range(0, view.nbytes, _SLICE):
            piece = view[start:start + _SLICE].tobytes()
            self._update(piece, len(piece))

    def _update(self, pointer, size):
        # type: (Any, int) -> None
        if size and LibcryptoSHA256._lib.SHA256_Update(self._ctx, pointer, size) != 1:
            raise OSError("libcrypto's SHA256_Update failed")

    def copy(self):
        # type: () -> LibcryptoSHA256
        """An independent hash of what was hashed so far (SHA256_CTX holds no pointers)."""
        other = LibcryptoSHA256.__new__(LibcryptoSHA256)
        other._ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        return other

    def digest(self):
        # type: () -> bytes
        """The digest of what was hashed so far; this object can go on hashing."""
        out = ctypes.create_string_buffer(32)
        if LibcryptoSHA256._lib.SHA256_Final(out, self.copy()._ctx) != 1:
            raise OSError("libcrypto's SHA256_Final failed")
        return out.raw

    def hexdigest(self):
        # type: () -> str
        """digest() in lowercase hex."""
        return binascii.hexlify(self.digest()).decode("ascii")


def _openssl_backed():
    # type: () -> bool
    return getattr(hashlib.sha256, "__name__", "") == "openssl_sha256"


def _choose():
    # type: () -> Callable[..., Any]
    if _openssl_backed():
        return hashlib.sha256
    try:
        LibcryptoSHA256()
    except OSError:
        return hashlib.sha256
    return LibcryptoSHA256


_chosen = []  # type: List[Callable[..., Any]]


def implementation():
    # type: () -> Callable[..., Any]
    """hashlib.sha256 or LibcryptoSHA256: chosen at the first hash (libcrypto is mapped into
    the process only where it is used, and only then)."""
    if not _chosen:
        _chosen.append(_choose())
    return _chosen[0]


def sha256(data=b""):
    # type: (Any) -> Any
    """A new SHA-256 object (hashlib.sha256's interface), of data when given."""
    return implementation()(data)
