"""Byte plumbing for the API server: request bodies, chunked responses, Docker's JSON message
streams and the hijacked (attach/exec) connection pump."""

import json
import socket
import threading
import time

from runtime import TYPE_CHECKING
from runtime.api import httpstatus
from runtime.errors import BerthError, InvalidParameter

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Optional  # noqa: F401


class MalformedBody(InvalidParameter):
    """The request body's framing is broken (chunk sizes, Content-Length, early end): a 400,
    and the connection is closed, since where the next request begins is unknown."""


def body_length(header):
    # type: (Optional[str]) -> Optional[int]
    """The Content-Length header's value (None when absent); MalformedBody when it is not a
    non-negative integer."""
    if header is None or not header.strip():
        return None
    try:
        length = int(header.strip())
    except ValueError:
        length = -1
    if length < 0:
        raise MalformedBody("invalid Content-Length %r: a byte count is expected" % header)
    return length


class BodyReader(object):
    """A file-like reader of one request body: Content-Length, chunked, or empty."""

    def __init__(self, rfile, length=None, chunked=False):
        # type: (BinaryIO, Optional[int], bool) -> None
        self._rfile = rfile
        self._left = length if length is not None else (None if chunked else 0)
        self._chunked = chunked
        self._chunk_left = 0
        self.eof = self._left == 0

    def _read_chunk_header(self):
        # type: () -> None
        line = self._rfile.readline(1024)
        size = line.split(b";", 1)[0].strip()
        try:
            self._chunk_left = int(size, 16)
        except ValueError:
            raise MalformedBody("malformed chunked request body: chunk size %r is not hexadecimal"
                                % size.decode("latin-1")) from None
        if self._chunk_left < 0:
            raise MalformedBody("malformed chunked request body: negative chunk size")
        if self._chunk_left == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.eof = True

    def read(self, n=-1):
        # type: (int) -> bytes
        """Read up to n bytes (all that is left when n < 0); b"" at the end."""
        if n is None or n < 0:
            parts = []
            while True:
                part = self.read(1 << 20)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        if self.eof or n == 0:
            return b""
        if not self._chunked:
            data = self._rfile.read(min(n, self._left))
            if not data:
                raise MalformedBody("the request body ended early")
            self._left -= len(data)
            self.eof = self._left == 0
            return data
        if self._chunk_left == 0:
            self._read_chunk_header()
            if self.eof:
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise MalformedBody("the request body ended early")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)  # CRLF after the chunk
        return data

    def readinto(self, buf):
        # type: (Any) -> int
        """io-style readinto, so the reader can sit under tarfile and shutil."""
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def readable(self):
        # type: () -> bool
        return True

    def drain(self, limit=1 << 16, seconds=None):
        # type: (Optional[int], Optional[float]) -> bool
        """Discard what is left if it is small (limit: None for any size, seconds: a time
        budget instead); False if the connection must be closed instead."""
        total = 0
        deadline = None if seconds is None else time.time() + seconds
        try:
            while not self.eof:
                total += len(self.read(1 << 16 if limit is None else limit))
                if limit is not None and total >= limit and not self.eof:
                    return False
                if deadline is not None and time.time() > deadline and not self.eof:
                    return False
        except (OSError, MalformedBody):
            return False
        return True


class ChunkedWriter(object):
    """A file-like writer that sends HTTP/1.1 chunks; close() sends the last chunk."""

    def __init__(self, wfile):
        # type: (Any) -> None
        self._wfile = wfile
        self.closed = False

    def write(self, data):
        # type: (bytes) -> int
        """Send one chunk (empty data sends nothing: an empty chunk would end the body)."""
        if data:
            self._wfile.write(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
        return len(data)

    def flush(self):
        # type: () -> None
        pass

    def close(self):
        # type: () -> None
        """End the body."""
        if not self.closed:
            self.closed = True
            self._wfile.write(b"0\r\n\r\n")


def jsonline(obj):
    # type: (Any) -> bytes
    """One message of Docker's JSON message stream."""
    return json.dumps(obj).encode() + b"\r\n"


class JSONMessages(object):
    """Docker's JSON message stream (pull, push, build); the 200 headers go out with the
    first message, so an error before any progress still gets its own HTTP status."""

    def __init__(self, req):
        # type: (Any) -> None
        self.req = req
        self.out = None  # type: Optional[ChunkedWriter]

    def __call__(self, msg):
        # type: (Any) -> None
        if self.out is None:
            self.out = self.req.start(200, "application/json")
        if isinstance(msg, str):
            msg = {"status": msg}
        self.out.write(jsonline(msg))

    def run(self, fn, *args, **kwargs):
        # type: (Any, Any, Any) -> Any
        """Call fn(progress=self); after the first message, an error is an errorDetail line."""
        try:
            result = fn(*args, progress=self, **kwargs)
        except (BerthError, OSError) as exc:
            if self.out is None or not (isinstance(exc, BerthError) or httpstatus.is_disk_full(exc)):
                raise
            text = httpstatus.message_for(exc, getattr(self.req.server, "data_root", None))
            self.out.write(jsonline({"errorDetail": {"message": text}, "error": text}))
            result = None
        return result

    def finish(self):
        # type: () -> None
        """End the stream (sending the headers if no message did)."""
        if self.out is None:
            self.out = self.req.start(200, "application/json")
        self.out.close()


def _close_quietly(obj, how=None):
    # type: (Any, Optional[int]) -> None
    try:
        if how is None:
            obj.close()
        else:
            obj.shutdown(how)
    except (OSError, AttributeError):
        pass


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def detach_keys(text):
    # type: (str) -> bytes
    """Docker's detach key spec (`ctrl-p,ctrl-q`, `a,b`, `ctrl-@`, `ctrl-[`) as the bytes to
    watch for; InvalidParameter worded as dockerd's."""
    out = bytearray()
    for key in (text or "").split(","):
        low = key.strip().lower()
        if len(key) == 1:
            out.append(ord(key))
        elif low.startswith("ctrl-") and len(low) == 6 and ("a" <= low[5] <= "z" or low[5] in "@[\\]^_"):
            out.append(ord(low[5].upper()) & 0x1F if low[5].isalpha() else ord(low[5]) & 0x1F)
        else:
            raise InvalidParameter("Invalid detach keys (%s) provided: unknown character: '%s'"
                                   % (text, key))
    if not out:
        raise InvalidParameter("Invalid detach keys (%s) provided" % text)
    return bytes(out)


class _Escape(object):
    """Watches client bytes for the detach sequence: what to forward, and whether it was seen
    (a partial match is held back until it completes or breaks)."""

    def __init__(self, keys):
        # type: (bytes) -> None
        self.keys = keys
        self.held = b""

    def feed(self, data):
        # type: (bytes) -> tuple
        """(bytes to forward, detached?)"""
        out = bytearray()
        for byte in bytearray(data):
            self.held += bytes([byte])
            if self.keys.startswith(self.held):
                if self.held == self.keys:
                    return bytes(out), True
                continue
            out += self.held
            self.held = b""
        return bytes(out), False


def pump(conn, rfile, peer, stdin=True, close=True, keys=None):
    # type: (socket.socket, Any, Any, bool, bool, Optional[bytes]) -> int
    """Copy a hijacked client connection to and from `peer` (the container's stdio socket) until
    the container side ends; returns the bytes sent to the client. Client EOF on stdin closes
    the container's stdin (SHUT_WR); the container's EOF ends the connection unless close is
    False. With keys (detach keys), that sequence on stdin ends the session and leaves the
    container running. Runs in the calling (per-connection) thread, plus one daemon thread for
    stdin."""
    if stdin:
        escape = _Escape(keys) if keys else None

        def feed():
            # type: () -> None
            try:
                while True:
                    data = rfile.read1(65536) if hasattr(rfile, "read1") else rfile.read(65536)
                    if not data:
                        break
                    if escape is not None:
                        data, detached = escape.feed(data)
                        if detached:
                            if data:
                                peer.sendall(data)
                            _close_quietly(peer, socket.SHUT_RDWR)  # the output loop ends too
                            return
                    if data:
                        peer.sendall(data)
            except (OSError, ValueError):
                pass
            _close_quietly(peer, socket.SHUT_WR)

        threading.Thread(target=feed, name="attach-stdin", daemon=True).start()
    sent = 0
    try:
        while True:
            data = peer.recv(65536)
            if not data:
                break
            conn.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        if close:
            _close_quietly(conn, socket.SHUT_RDWR)
        _close_quietly(peer)
    return sent
