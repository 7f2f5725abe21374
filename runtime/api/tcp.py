"""The API on a TCP listener (daemon.json `hosts: ["tcp://ADDRESS:PORT"]`), TLS by default.

Each accepted connection gets its own thread: the TLS handshake (client certificates checked
against the CA with tlsverify), then a relay between the TLS stream and one end of a unix
socketpair whose other end is served by the same `APIHandler` as the unix sockets' connections.
The HTTP code (hijacked attach/exec streams, half-closes, SIOCOUTQ waits) thus always sees a
plain unix socket, and the TLS object is used by one thread only (OpenSSL's SSL objects are not
safe to read in one thread while another writes).
"""

import logging
import select
import socket
import ssl
import threading
import time

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple  # noqa: F401

log = logging.getLogger("berthd.api")

HANDSHAKE_TIMEOUT = 10.0
LINGER = 2.0  # seconds a closing connection reads what the client still sends
_BUF = 65536


class TLSConfigError(Exception):
    """The certificate, key or CA file cannot be used; the message names the file."""


def server_context(cert, key, cacert=None):
    # type: (str, str, Optional[str]) -> ssl.SSLContext
    """A server context of TLS 1.2 or newer with cert and key; with cacert, client certificates
    are required and checked against it (tlsverify)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError("cannot use tlscert %s with tlskey %s: %s"
                             % (cert, key, getattr(exc, "strerror", None) or exc)) from None
    if cacert:
        try:
            ctx.load_verify_locations(cafile=cacert)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError("cannot use tlscacert %s: %s"
                                 % (cacert, getattr(exc, "strerror", None) or exc)) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def listen_tcp(address, port, backlog=4096):
    # type: (str, int, int) -> socket.socket
    """A listening TCP socket on address:port (OSError when it cannot bind)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class TCPServer(object):
    """Accepts on a listening TCP socket; each connection is relayed to an `APIHandler`
    (handler_class) that sees `server` (the object with the router) as a unix socket's would."""

    def __init__(self, sock, handler_class, server, context=None):
        # type: (socket.socket, Any, Any, Optional[ssl.SSLContext]) -> None
        self.sock = sock
        self.handler_class = handler_class
        self.server = server
        self.context = context
        self._stop = threading.Event()

    def serve_forever(self, poll_interval=0.5):
        # type: (float) -> None
        """Accept until shutdown()."""
        while not self._stop.is_set():
            try:
                ready = _readable([self.sock], poll_interval)
            except (OSError, ValueError):
                return  # the socket was closed
            if not ready:
                continue
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._connection, args=(conn, addr), daemon=True,
                             name="tcp %s:%s" % addr[:2]).start()

    def shutdown(self):
        # type: () -> None
        """Stop accepting (connections being served end on their own)."""
        self._stop.set()

    def _connection(self, conn, addr):
        # type: (socket.socket, Tuple) -> None
        peer = conn
        if self.context is not None:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            try:
                peer = self.context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.info("TLS handshake with %s:%s failed: %s", addr[0], addr[1], exc)
                conn.close()
                return
            peer.settimeout(None)
        peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        inner, outer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        threading.Thread(target=self._serve, args=(inner, addr), daemon=True,
                         name="api tcp %s:%s" % addr[:2]).start()
        try:
            relay(peer, outer)
        finally:
            outer.close()
            close_gracefully(peer)

    def _serve(self, inner, addr):
        # type: (socket.socket, Tuple) -> None
        try:
            self.handler_class(inner, addr, self.server)
        except Exception:  # noqa: BLE001 (one connection's failure; the listener goes on)
            log.debug("connection from %s:%s failed", addr[0], addr[1], exc_info=True)
        finally:
            try:
                inner.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            inner.close()


def _readable(socks, timeout):
    # type: (List[Any], Optional[float]) -> List[Any]
    """Those of socks that are readable (or hung up) within timeout seconds (None: no limit).
    poll, not select: a busy berthd holds descriptors above 1023, which select() refuses."""
    poller = select.poll()
    by_fd = {}
    for s in socks:
        by_fd[s.fileno()] = s
        poller.register(s, select.POLLIN)
    return [by_fd[fd] for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]


def relay(peer, local):
    # type: (Any, socket.socket) -> None
    """Copy bytes both ways between the client (peer: TLS or plain TCP) and the handler's
    socket (local) in this one thread, until the handler's side is done. The client's EOF (a
    half-close) is passed on as SHUT_WR, and its output still flows back."""
    client_open = True
    while True:
        rlist = [local] + ([peer] if client_open else [])
        pending = client_open and isinstance(peer, ssl.SSLSocket) and peer.pending() > 0
        try:
            ready = _readable(rlist, 0 if pending else None)
        except (OSError, ValueError):
            return
        if pending and peer not in ready:
            ready.append(peer)
        if peer in ready:
            try:
                data = peer.recv(_BUF)
            except (OSError, ssl.SSLError):
                data = b""
            if data:
                try:
                    local.sendall(data)
                except OSError:
                    return
            else:
                client_open = False
                try:
                    local.shutdown(socket.SHUT_WR)
                except OSError:
                    return
        if local in ready:
            try:
                data = local.recv(_BUF)
            except OSError:
                data = b""
            if not data:
                return
            try:
                peer.sendall(data)
            except (OSError, ssl.SSLError):
                return


def close_gracefully(peer):
    # type: (Any) -> None
    """End the client connection without a reset: TLS close_notify, our FIN, then read (and
    drop) what the client still sends for up to LINGER seconds before closing. Closing with
    unread bytes in the receive queue sends RST, and a client that has not read the last of
    the response yet (the docker CLI after an exec) then loses it: "connection reset by peer"."""
    deadline = time.time() + LINGER
    try:
        peer.settimeout(LINGER)
        if isinstance(peer, ssl.SSLSocket):
            try:
                peer = peer.unwrap()
            except (OSError, ssl.SSLError, ValueError):
                pass
        peer.shutdown(socket.SHUT_WR)
        while time.time() < deadline:
            peer.settimeout(max(0.01, deadline - time.time()))
            if not peer.recv(_BUF):
                break
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        try:
            peer.close()
        except OSError:
            pass
