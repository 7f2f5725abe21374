"""runtime/sha256.py: libcrypto's SHA-256 where hashlib has only its builtin, equal to hashlib's
and letting other threads run while it hashes (the unpack's file writes beside a layer's hash)."""

import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from runtime import sha256 as sha256_mod
from runtime.sha256 import LibcryptoSHA256

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY36 = "/root/.pyenv/versions/3.6.15/bin/python3.6"


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)) * 4099])
def test_libcrypto_digests_equal_hashlibs(data):
    assert LibcryptoSHA256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    assert LibcryptoSHA256(data).digest() == hashlib.sha256(data).digest()


def test_a_read_only_mapping_is_hashed_in_slices(tmp_path):
    import mmap
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 << 20) + b"tail")
    with open(str(path), "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            view = memoryview(mapped)
            try:
                h = LibcryptoSHA256()
                h.update(view[5:])
                assert h.hexdigest() == hashlib.sha256(path.read_bytes()[5:]).hexdigest()
            finally:
                view.release()
        finally:
            mapped.close()


def test_buffers_pieces_digest_midway_and_copy():
    h = LibcryptoSHA256()
    h.update(bytearray(b"ab"))
    h.update(memoryview(b"xcdx")[1:3])  # a read-only slice
    h.update(memoryview(bytearray(b"ef")))  # a writable view
    h.update(b"")
    assert h.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()
    c = h.copy()
    h.update(b"g")  # digest() left it going on
    assert h.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()
    assert c.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def _runs_beside(make):
    """How many times a Python loop in this thread went round while another thread was inside
    one update() of 64 MB with a hash from make(): none when the update holds the GIL (no other
    thread runs Python during a C call that keeps it), many when it lets go. The long switch
    interval keeps the hasher from being made to hand the GIL over before its call begins."""
    data = b"x" * (64 << 20)
    h = make()
    going, inside = threading.Event(), []

    def hasher():
        going.set()
        inside.append("in")
        h.update(data)
        inside.append("out")

    t = threading.Thread(target=hasher)
    runs = 0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        t.start()
        going.wait()
        while t.is_alive():
            if inside == ["in"]:
                runs += 1
            time.sleep(0)  # lets go of the GIL: the hasher takes it back when its call returns
        t.join()
    finally:
        sys.setswitchinterval(interval)
    assert inside == ["in", "out"]
    return runs


def test_libcrypto_hashing_lets_other_threads_run():
    assert _runs_beside(LibcryptoSHA256) > 10


def test_the_chosen_sha256_lets_other_threads_run_on_this_python():
    assert sha256_mod.implementation() in (hashlib.sha256, LibcryptoSHA256)
    assert _runs_beside(sha256_mod.sha256) > 10


def test_python36_without_hashlibs_openssl_uses_libcrypto():
    if not os.path.exists(PY36):
        pytest.skip("no %s here" % PY36)
    code = ("import sys, hashlib; sys.path.insert(0, %r); from runtime.sha256 import "
            "implementation, sha256; "
            "print(hashlib.sha256.__name__, implementation().__name__, sha256(b'abc').hexdigest())" % ROOT)
    out = subprocess.run([PY36, "-I", "-c", code], stdout=subprocess.PIPE, check=True)
    builtin, chosen, digest = out.stdout.decode().split()
    assert digest == hashlib.sha256(b"abc").hexdigest()
    # the pyenv 3.6 here has no _hashlib (it does not build against OpenSSL 3)
    assert (builtin, chosen) in (("openssl_sha256", "openssl_sha256"), ("sha256", "LibcryptoSHA256"))
