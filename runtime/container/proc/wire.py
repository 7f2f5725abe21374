"""The engine <-> forkserver <-> monitor protocol: length-prefixed JSON messages and fds passed
over unix sockets (SCM_RIGHTS)."""

import array
import json
import socket
import struct


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
