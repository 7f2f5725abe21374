"""The embedded resolver: answers for names it knows, from a socket at 127.0.0.11:53 inside a
container's namespace; forwards the rest to an upstream server (in another test namespace)."""

import os
import socket
import struct
import threading

import pytest

from runtime.network import dns, netns
from tests.network.topology import OUTSIDE, Topology


def query(name, qtype=dns.TYPE_A, qid=0x1234):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", qtype, 1)


def ask(ns_fd, name, qtype=dns.TYPE_A):
    """(rcode, [A addresses]) from 127.0.0.11 as seen in namespace ns_fd."""
    s = netns.socket_in(ns_fd, socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query(name, qtype), (dns.ADDRESS, 53))
        data = s.recv(4096)
    finally:
        s.close()
    qid, flags, _, an, _, _ = struct.unpack_from("!HHHHHH", data)
    assert qid == 0x1234
    _, _, _, _, off = dns.parse_question(data)
    out = []
    for _ in range(an):
        _, rtype, _, _, rdlen = struct.unpack_from("!HHHIH", data, off)
        off += 12
        if rtype == dns.TYPE_A:
            out.append(socket.inet_ntoa(data[off:off + rdlen]))
        off += rdlen
    return flags & 0xF, out


@pytest.fixture
def topo():
    t = Topology()
    yield t
    t.close()


def test_names_of_ours_and_forwarding(topo):
    # a fake upstream server in the outside namespace: answers every A question with 203.0.113.7
    up = netns.socket_in(topo.outside, socket.AF_INET, socket.SOCK_DGRAM)
    up.bind((OUTSIDE, 53))
    def serve():
        while True:
            try:
                data, peer = up.recvfrom(512)
            except OSError:
                return
            if peer is None:
                return
            up.sendto(dns.reply(data, ["203.0.113.7"]), peer)
    threading.Thread(target=serve, daemon=True).start()

    records = {"a": {"web": ["10.5.0.2"], "db": ["10.5.0.3"], "0123456789ab": ["10.5.0.2"]}, "b": {}}
    asked = []

    def lookup(key, name):
        asked.append((key, name))
        return records[key].get(name)

    servers = [OUTSIDE]
    ca, cb = topo.ns(), topo.ns()
    # made in the test's "host" namespace: forwards go out from there, as from the daemon's
    resolver = netns.run_in(topo.host, dns.EmbeddedDns, lookup, lambda key: servers, 2.0)
    try:
        resolver.add("a", dns.bind_socket(ca))
        resolver.add("b", dns.bind_socket(cb))
        assert ask(ca, "web") == (0, ["10.5.0.2"])
        assert ask(ca, "WEB") == (0, ["10.5.0.2"])
        assert ask(ca, "0123456789ab") == (0, ["10.5.0.2"])
        assert ask(ca, "web", dns.TYPE_AAAA) == (0, [])       # a name of ours, no IPv6 address
        assert ask(cb, "web") == (0, ["203.0.113.7"])          # not on b's networks: forwarded
        assert ask(ca, "example.org") == (0, ["203.0.113.7"])  # forwarded
        assert ("b", "web") in asked and ("a", "example.org") in asked
        servers[:] = ["192.0.2.99"]                            # no answer upstream
        assert ask(ca, "example.org")[0] == dns.RCODE_SERVFAIL
        resolver.remove("b")
        s = netns.socket_in(cb, socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((dns.ADDRESS, 53))  # the address is free again in b
        s.close()
    finally:
        resolver.close()
        up.close()


def test_upstream_servers_skip_a_stub_resolver(tmp_path):
    stub = tmp_path / "stub.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0\n")
    real = tmp_path / "real.conf"
    real.write_text("# comment\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch x\n")
    assert dns.upstream_servers([str(stub), str(real)]) == ["10.0.0.2", "fe80::1"]
    assert dns.nameservers(str(tmp_path / "missing")) == []
    assert os.path.exists(str(stub))
