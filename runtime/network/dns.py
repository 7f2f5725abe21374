"""The embedded DNS resolver: 127.0.0.11:53 (UDP) inside each container on a user network.

The daemon makes one socket per container inside the container's network namespace and serves
them all from one thread. A/AAAA questions for names the daemon knows (container names, network
aliases, short IDs, on the networks the asking container shares with them) are answered from
lookup(); everything else is forwarded, unchanged, to the upstream servers and the answer sent
back (a thread per forwarded question, so a slow upstream never stalls local answers)."""

import ipaddress
import selectors
import socket
import struct
import threading

ADDRESS = "127.0.0.11"
TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_SERVFAIL, RCODE_NXDOMAIN = 2, 3
TTL = 600
_HDR = struct.Struct("!HHHHHH")


def parse_question(data):
    """(id, flags, name lower-cased without the final dot, qtype, end offset of the question)."""
    qid, flags, qd, _, _, _ = _HDR.unpack_from(data)
    if qd != 1:
        raise ValueError("one question expected")
    labels, off = [], _HDR.size
    while True:
        n = data[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0:
            raise ValueError("compressed question name")
        labels.append(data[off:off + n].decode("ascii", "replace"))
        off += n
    qtype, qclass = struct.unpack_from("!HH", data, off)
    return qid, flags, ".".join(labels).lower(), qtype, off + 4


def reply(query, addresses, rcode=0):
    """A response to query with an A record per address (an empty answer when none)."""
    qid, flags, _, qtype, end = parse_question(query)
    answers = b""
    count = 0
    for addr in addresses:
        ip = ipaddress.ip_address(addr)
        if (qtype == TYPE_A and ip.version == 4) or (qtype == TYPE_AAAA and ip.version == 6):
            answers += struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, TTL, len(ip.packed)) + ip.packed
            count += 1
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR, AA, RD as asked, RA
    return _HDR.pack(qid, out_flags, 1, count, 0, 0) + query[_HDR.size:end] + answers


def failure(query, rcode):
    """An empty response with rcode, for a query that could not even be parsed fully."""
    qid, flags = struct.unpack_from("!HH", query)
    return _HDR.pack(qid, 0x8000 | (flags & 0x0100) | 0x0080 | rcode, 0, 0, 0, 0)


def upstream_servers(paths=("/etc/resolv.conf",)):
    """The nameservers of the first resolv.conf that has non-loopback ones; a stub resolver
    (systemd-resolved's 127.0.0.53) is replaced by the servers it forwards to."""
    for path in list(paths) + ["/run/systemd/resolve/resolv.conf"]:
        servers = [s for s in nameservers(path) if not ipaddress.ip_address(s).is_loopback]
        if servers:
            return servers
    return []


def nameservers(path):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ipaddress.ip_address(parts[1].split("%")[0])
                out.append(parts[1].split("%")[0])
            except ValueError:
                pass
    return out


class EmbeddedDns(object):
    """One serving thread for every container's resolver socket.

    lookup(key, name) -> [addresses] for a name of ours (key says who asks), or None to forward.
    servers(key) -> the upstream servers for key's questions (read on each forward, so a changed
    resolv.conf counts)."""

    def __init__(self, lookup, servers, timeout=2.0):
        self.lookup = lookup
        self.servers = servers
        self.timeout = timeout
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.socks = {}  # key -> socket
        self.wake_r, self.wake_w = socket.socketpair()
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="berth-dns", daemon=True)
        self.thread.start()

    def add(self, key, sock):
        """Serve sock (a UDP socket bound to 127.0.0.11:53 in a container) for key."""
        sock.setblocking(False)
        with self.lock:
            old = self.socks.pop(key, None)
            if old is not None:
                self.sel.unregister(old)
                old.close()
            self.socks[key] = sock
            self.sel.register(sock, selectors.EVENT_READ, key)
        self.wake_w.send(b"x")

    def remove(self, key):
        with self.lock:
            sock = self.socks.pop(key, None)
            if sock is not None:
                self.sel.unregister(sock)
                sock.close()
        self.wake_w.send(b"x")

    def keys(self):
        with self.lock:
            return list(self.socks)

    def close(self):
        self.closed = True
        self.wake_w.send(b"x")
        self.thread.join(5)
        with self.lock:
            for s in self.socks.values():
                s.close()
            self.socks.clear()
        self.wake_r.close()
        self.wake_w.close()
        self.sel.close()

    def _loop(self):
        while not self.closed:
            for k, _ in self.sel.select():
                if k.data is None:
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                try:
                    data, peer = k.fileobj.recvfrom(4096)
                except OSError:
                    continue
                self._answer(k.data, k.fileobj, data, peer)

    def _answer(self, key, sock, data, peer):
        try:
            _, _, name, qtype, _ = parse_question(data)
        except (ValueError, IndexError, struct.error):
            if len(data) >= 4:
                _send(sock, failure(data, 1), peer)  # FORMERR
            return
        addresses = self.lookup(key, name) if qtype in (TYPE_A, TYPE_AAAA) else None
        if addresses is not None:
            _send(sock, reply(data, addresses), peer)
            return
        threading.Thread(target=self._forward, args=(key, sock, data, peer), daemon=True).start()

    def _forward(self, key, sock, data, peer):
        for server in self.servers(key):
            up = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                up.settimeout(self.timeout)
                up.connect((server, 53))
                up.send(data)
                answer = up.recv(65535)
            except OSError:
                continue
            finally:
                up.close()
            _send(sock, answer, peer)
            return
        _send(sock, reply(data, [], RCODE_SERVFAIL), peer)


def _send(sock, data, peer):
    try:
        sock.sendto(data, peer)
    except OSError:
        pass  # the container is gone, or its socket closed under us


def bind_socket(netns_fd):
    """A UDP socket bound to 127.0.0.11:53 inside the network namespace netns_fd."""
    from runtime.network import netns
    s = netns.socket_in(netns_fd, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ADDRESS, 53))
    except OSError:
        s.close()
        raise
    return s
