"""A berthd inside a network namespace of the test's own (`netd`), with an 'outside' host joined
to it by a veth (192.0.2.1 on berthd's side, 192.0.2.2 outside), and a check after each test
that iptables-save, the links and the IPAM state of that namespace are what they were before."""

import json
import os
import socket
import subprocess
import threading

import pytest

from runtime.network import netns as nsmod
from tests import imagefactory
from tests.api.conftest import Berthd
from tests.network.topology import HOST_OUT, OUTSIDE


# what a blocked `sh -c "timeout N wget ..."` in busybox exits with: 1 (refused, unreachable) or
# 143 (timed out); never 139 (Debian's busybox wget segfaults with -T, hence timeout; and under
# a shell that stays PID 1: busybox timeout execs the command itself, and sh execs a lone
# command, which as PID 1 would ignore the TERM)
BLOCKED = (1, 143)


def wget(url, seconds=2):
    """A container command fetching url within seconds."""
    return ["sh", "-c", "timeout %d wget -qO- %s; exit $?" % (seconds, url)]  # sh stays PID 1


class NetNs(object):
    """A named network namespace (`ip netns add`), removed by close()."""

    def __init__(self, name):
        self.name = name
        subprocess.check_call(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")
        self.fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)

    def ip(self, *args):
        return subprocess.check_output(["ip", "-n", self.name] + list(args)).decode()

    def run(self, argv, **kw):
        return subprocess.run(["nsenter", "--net=/run/netns/" + self.name, "--"] + list(argv),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def sock(self, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        return nsmod.socket_in(self.fd, family, kind)

    def close(self):
        os.close(self.fd)
        subprocess.call(["ip", "netns", "del", self.name])


def http_get(ns, ip, port, timeout=3.0):
    """The body of GET / from ip:port as seen from namespace ns, or None."""
    s = ns.sock()
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n\r\n", 1)[-1].decode()
    except OSError:
        return None
    finally:
        s.close()


class Outside(object):
    """The 'other host': a namespace with an HTTP server on 192.0.2.2:9000 answering with the
    caller's address, and a DNS server on 192.0.2.2:53 answering every A question with
    203.0.113.7 (the upstream resolver)."""

    def __init__(self, name, host):
        self.ns = NetNs(name)
        host.ip("link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", name)
        host.ip("addr", "add", HOST_OUT + "/24", "dev", "out0")
        host.ip("link", "set", "out0", "up")
        self.ns.ip("addr", "add", OUTSIDE + "/24", "dev", "eth0")
        self.ns.ip("link", "set", "eth0", "up")
        self.srv = self.ns.sock()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((OUTSIDE, 9000))
        self.srv.listen(32)
        threading.Thread(target=self._serve, daemon=True).start()
        self.dns = self.ns.sock(socket.AF_INET, socket.SOCK_DGRAM)
        self.dns.bind((OUTSIDE, 53))
        threading.Thread(target=self._serve_dns, daemon=True).start()

    def _serve_dns(self):
        from runtime.network import dns
        while True:
            try:
                data, peer = self.dns.recvfrom(512)
                if peer is None:
                    return
                self.dns.sendto(dns.reply(data, ["203.0.113.7"]), peer)
            except OSError:
                return
            except ValueError:
                continue

    def _serve(self):
        while True:
            try:
                c, peer = self.srv.accept()
            except OSError:
                return
            try:
                c.recv(4096)
                body = ("outside saw %s\n" % peer[0]).encode()
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            c.close()

    def close(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        try:
            self.dns.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.dns.close()
        self.ns.close()


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    """A docker-save tarball of busybox:latest."""
    return str(imagefactory.busybox_image_tar(tmp_path_factory.mktemp("netimages") / "busybox.tar"))


@pytest.fixture(scope="module")
def netd(tmp_path_factory, busybox_tar):
    """berthd (busybox loaded) in a fresh network namespace; .ns, .outside; default daemon.json
    but the outside host as upstream DNS."""
    tag = "bt%d%s" % (os.getpid(), os.urandom(2).hex())
    ns = NetNs(tag)
    outside = Outside(tag + "o", ns)
    d = Berthd(str(tmp_path_factory.mktemp("netd")), config={"dns": [OUTSIDE]}, netns=tag)
    try:
        d.start()
        d.ns, d.outside = ns, outside
        with open(busybox_tar, "rb") as f:
            status, _, body = d.api("POST", "/images/load", body=f.read(),
                                    headers={"Content-Type": "application/x-tar"})
        assert status == 200, body
        yield d
    finally:
        d.cleanup()
        outside.close()
        ns.close()


def snapshot(d):
    """(our iptables rules, link names, IPAM pools, endpoint files) in berthd's namespace."""
    saved = d.ns.run(["iptables-save"]).stdout.decode()
    rules = sorted(line.split(" [")[0] for line in saved.splitlines() if line.startswith(("-A", ":")))
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in d.ns.ip("-o", "link").splitlines())
    links = [name for name in links if name != "berth-spare"]  # made ahead for the next start
    try:  # pools; the addresses in use are those of the endpoint files
        with open(os.path.join(d.data_root, "network", "ipam.json")) as f:
            ipam = {k: v["Subnet"] for k, v in json.load(f).items()}
    except FileNotFoundError:
        ipam = {}
    try:
        endpoints = sorted(os.listdir(os.path.join(d.data_root, "network", "endpoints")))
    except FileNotFoundError:
        endpoints = []
    return rules, links, ipam, endpoints


@pytest.fixture
def clean(netd):
    """The test must leave berthd's namespace as it found it (after the default bridge is up)."""
    netd.api("GET", "/networks/bridge")  # makes the default bridge, so it is part of 'before'
    before = snapshot(netd)
    yield netd
    for c in json.loads(netd.api("GET", "/containers/json?all=1")[2] or b"[]"):
        netd.api("DELETE", "/containers/%s?force=1" % c["Id"])
    for n in json.loads(netd.api("GET", "/networks")[2] or b"[]"):
        if n["Name"] not in ("bridge", "host", "none"):
            netd.api("DELETE", "/networks/%s" % n["Id"])
    import time
    deadline = time.time() + 10
    while snapshot(netd) != before and time.time() < deadline:
        time.sleep(0.2)  # exits are released by the watcher threads
    assert snapshot(netd) == before
