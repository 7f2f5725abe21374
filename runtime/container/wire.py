"""Small shared pieces of the engine <-> forkserver <-> monitor protocol: length-prefixed JSON
messages, Docker's stdio frame header, RFC 3339 timestamps and atomic JSON files."""

import array
import calendar
import json
import os
import socket
import struct
import time

STDIN, STDOUT, STDERR = 0, 1, 2


def send_msg(sock, obj):
    # type: (object, dict) -> None
    """One message: 4-byte big-endian length, then JSON."""
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock, n):
    # type: (object, int) -> bytes
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv_msg(sock):
    # type: (object) -> dict
    """The next message from send_msg; EOFError when the peer closed first."""
    (size,) = struct.unpack(">I", recv_exact(sock, 4))
    return json.loads(recv_exact(sock, size).decode())


def send_fds(sock, data, fds):
    # type: (object, bytes, list) -> None
    """One message with fds passed along (SCM_RIGHTS; none when fds is empty)."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], anc)


def recv_fds(sock, size, max_fds):
    # type: (object, int, int) -> tuple
    """(data, [fds]) of one message from send_fds; data is b"" when the peer closed. The fds
    are close-on-exec: they must not leak into a container's processes."""
    data, anc, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * max_fds), socket.MSG_CMSG_CLOEXEC)
    fds = array.array("i")
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
    return data, list(fds)


def send_fd(sock, fd):
    # type: (object, int) -> None
    """Pass one fd over a unix socket."""
    send_fds(sock, b"f", [fd])


def recv_fd(sock):
    # type: (object) -> int
    """The fd from send_fd, or -1 when the peer closed without sending one."""
    fds = recv_fds(sock, 1, 1)[1]
    return fds[0] if fds else -1


def frame(stream, data):
    # type: (int, bytes) -> bytes
    """Docker's multiplexed stdio frame: stream, 0, 0, 0, uint32 size, payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def rfc3339(t):
    # type: (float) -> str
    """UTC time with nanosecond digits, as Docker writes it."""
    if not t:
        return "0001-01-01T00:00:00Z"
    whole = int(t)
    micros = min(int((t - whole) * 1e6), 999999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%09dZ" % (micros * 1000)


def parse_rfc3339(s):
    # type: (str) -> float
    """Seconds since the epoch of an RFC 3339 UTC timestamp (0.0 for Docker's zero time)."""
    if not s or s.startswith("0001-"):
        return 0.0
    main, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def write_json(path, obj):
    # type: (str, object) -> None
    """Write obj to path atomically: temp file, fsync-free rename."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, path)


def read_json(path, default=None):
    # type: (str, object) -> object
    """The JSON in path, or default when it does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
