"""NetworkService in a test 'host' namespace: the default bridge, published ports, user
networks with names, isolation, bad input leaving nothing behind, and reconciliation after a
restart. Containers are namespaces (plus a process holding one where a PID is needed)."""

import os
import socket
import subprocess

import pytest

from runtime.errors import Conflict, Forbidden, InvalidParameter
from runtime.network import conntrack, firewall, links, netns
from runtime.network.service import NetworkService
from tests.network.test_dns import ask
from tests.network.topology import HOST_OUT, OUTSIDE, Topology, conn


def ip_link(ns_fd):
    out = netns.run_in(ns_fd, subprocess.check_output, ["ip", "-o", "link"]).decode()
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


@pytest.fixture(params=["iptables-legacy", "iptables-nft"])
def world(request, tmp_path):
    t = Topology()
    t.prefix = request.param
    t.root = str(tmp_path / "root")
    t.svc = netns.run_in(t.host, NetworkService, t.root, {"dns": [OUTSIDE]}, request.param)
    yield t
    netns.run_in(t.host, t.svc.close)
    t.close()


def snapshot(t):
    saved = netns.run_in(t.host, firewall.Firewall(t.prefix).save)
    rules = sorted(line.split(" [")[0] for line in saved.splitlines() if line.startswith(("-A", ":")))
    return rules, ip_link(t.host), {n: t.svc.ipam.allocations(n) for n in t.svc.ipam.state}


def test_default_bridge_ports_user_networks_and_cleanup(world):
    t, svc = world, world.svc
    h = t.host
    netns.run_in(h, svc.ensure)
    bridge = svc.get("bridge")
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert "berth0" in ip_link(h)
    before = snapshot(t)

    a = t.ns()
    joins = svc.resolve_networks("default", None)
    ep = netns.run_in(h, svc.attach, "a" * 64, "/web", a, joins,
                      {"PortBindings": {"80/tcp": [{"HostPort": "18080"}]}, "PublishAllPorts": True},
                      {"80/tcp": {}, "81/udp": {}})
    e = ep["Networks"][bridge["Id"]]
    assert (e["IPAddress"], e["Gateway"], e["MacAddress"]) == \
        ("172.17.0.2", "172.17.0.1", "02:42:ac:11:00:02")
    assert sorted((p["Proto"], p["ContainerPort"]) for p in ep["Ports"]) == [("tcp", 80), ("udp", 81)]
    t.tcp_server(a, 80, "web")
    assert t.tcp(t.outside, HOST_OUT, 18080) == "web " + OUTSIDE
    assert t.tcp(h, "127.0.0.1", 18080).startswith("web ")
    t.tcp_server(t.outside, 9000, "outside")
    assert t.tcp(a, OUTSIDE, 9000) == "outside " + HOST_OUT

    # a host port already published: refused, nothing half-applied
    b0 = t.ns()
    mid = snapshot(t)
    with pytest.raises(Conflict, match="18080/tcp is already published"):
        netns.run_in(h, svc.attach, "b" * 64, "/b0", b0, joins,
                     {"PortBindings": {"80/tcp": [{"HostPort": "18080"}]}}, {})
    assert snapshot(t) == mid and "b" * 64 not in svc.endpoints

    # user networks: names and aliases resolve, networks are isolated
    netns.run_in(h, svc.create, "appnet")
    net2 = netns.run_in(h, svc.create, "other", subnet="10.99.0.0/24", gateway="10.99.0.254",
                        labels={"x": "y"})
    assert svc.get("appnet")["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"
    with pytest.raises(Conflict, match="overlaps 172.18.0.0/16"):
        netns.run_in(h, svc.create, "dup", subnet="172.18.1.0/24")
    with pytest.raises(Conflict, match="already exists"):
        netns.run_in(h, svc.create, "appnet")
    b, c, d = t.ns(), t.ns(), t.ns()
    netns.run_in(h, svc.attach, "b" * 64, "/db", b,
                 svc.resolve_networks("appnet", {"appnet": {"Aliases": ["database"]}}), {}, {})
    netns.run_in(h, svc.attach, "c" * 64, "/app", c, svc.resolve_networks("appnet", None), {}, {})
    netns.run_in(h, svc.attach, "d" * 64, "/lone", d,
                 svc.resolve_networks("other", {"other": {"IPAMConfig": {"IPv4Address": "10.99.0.7"}}}),
                 {}, {})
    assert ask(c, "db") == (0, ["172.18.0.2"])
    assert ask(c, "database") == (0, ["172.18.0.2"])
    assert ask(c, "b" * 12) == (0, ["172.18.0.2"])
    t.tcp_server(b, 5432, "db")
    assert t.tcp(c, "172.18.0.2", 5432) == "db 172.18.0.3"
    assert t.blocked(d, "172.18.0.2", 5432)                     # other network: isolated
    assert t.blocked(a, "172.18.0.2", 5432)                     # default bridge: isolated
    assert svc.inspect("other")["Containers"]["d" * 64]["IPv4Address"] == "10.99.0.7/24"
    with pytest.raises(Conflict, match="has active endpoints"):
        netns.run_in(h, svc.remove, "appnet")
    with pytest.raises(Forbidden):
        netns.run_in(h, svc.remove, "bridge")
    with pytest.raises(InvalidParameter, match="on user defined networks only"):
        netns.run_in(h, svc.attach, "e" * 64, "/e", t.ns(),
                     svc.resolve_networks("bridge",
                                          {"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}),
                     {}, {})

    for cid in ("a", "b", "c", "d"):  # their namespaces are still held here: delete the veths
        netns.run_in(h, svc.detach, cid * 64, exited=False)
    assert sorted(netns.run_in(h, svc.prune, set())) == ["appnet", "other"]
    assert net2["Id"] not in svc.records.nets
    assert snapshot(t) == before


def bridge_mac(ns_fd, name):
    with conn(ns_fd) as c:
        return links.links(c)[name]["mac"]


def test_the_gateway_keeps_its_mac_while_ports_come_and_go(world):
    """A bridge whose address the kernel picks takes its lowest port's, and another one when
    that port leaves (a `run --rm` container's veth, a namespace made ahead taken to another
    network): containers that have the gateway's old MAC in their ARP cache can no longer
    reach it. Ours is set: the traffic goes on."""
    t, svc = world, world.svc
    h = t.host
    netns.run_in(h, svc.ensure)
    gateway_mac = "02:42:ac:11:00:01"  # Docker's MAC scheme, for the gateway's address
    assert bridge_mac(h, "berth0") == gateway_mac
    with conn(h) as c:  # a port with the lowest MAC there can be
        links.add_veth(c, "vlow", "eth0", t.ns(), master=links.link_index(c, "berth0"), up=False)
        links.set_link(c, links.link_index(c, "vlow"), mac="02:00:00:00:00:01")
    a = t.ns()
    netns.run_in(h, svc.attach, "a" * 64, "/a", a, svc.resolve_networks("default", None), {}, {})
    t.tcp_server(t.outside, 9000, "outside")
    # 5 s: on a loaded machine the first SYN can wait for an ARP retry (1 s apart); what this
    # test is about is the second connection, made with the gateway's MAC already in the cache
    assert t.tcp(a, OUTSIDE, 9000, timeout=5) == "outside " + HOST_OUT
    with conn(h) as c:
        links.delete_link(c, "vlow")  # that port leaves
    assert bridge_mac(h, "berth0") == gateway_mac
    assert t.tcp(a, OUTSIDE, 9000, timeout=5) == "outside " + HOST_OUT
    netns.run_in(h, svc.detach, "a" * 64)


def test_the_host_knows_a_new_containers_mac_at_once(world):
    """The address of a container that just went: something still sending to it (here one
    datagram) leaves the host resolving it for seconds, and the next holder's first packets
    would wait behind that resolution (up to a second: bench/net_reuse.py). A start gives the
    host the new holder's ARP entry itself."""
    t, svc = world, world.svc
    h = t.host
    netns.run_in(h, svc.ensure)

    def entry():
        out = netns.run_in(h, subprocess.check_output, ["ip", "neigh", "show", "172.17.0.2", "dev", "berth0"])
        return out.decode().split()
    s = netns.socket_in(h, socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"?", ("172.17.0.2", 9))
    s.close()
    assert entry()[-1] in ("INCOMPLETE", "FAILED"), entry()
    netns.run_in(h, svc.attach, "a" * 64, "/a", t.ns(), svc.resolve_networks("default", None), {}, {})
    got = entry()
    assert got[1:3] == ["lladdr", "02:42:ac:11:00:02"] and got[-1] in ("STALE", "REACHABLE", "DELAY"), got
    netns.run_in(h, svc.detach, "a" * 64, False)


def test_a_published_udp_port_follows_its_new_container(world):
    """A UDP client that keeps sending to a published port: its tracked flow was translated to
    the first container's address, and outlives it. When that container goes, its flows are
    forgotten, so the next datagram reaches the container that publishes the port now (a
    dockerd host had this bug until it flushed them too)."""
    t, svc = world, world.svc
    h = t.host
    netns.run_in(h, svc.create, "udpnet", subnet="10.98.0.0/24")
    publish = {"PortBindings": {"5353/udp": [{"HostPort": "15353"}]}}

    def serve(cid, ip, tag):
        ns = t.ns()
        netns.run_in(h, svc.attach, cid, "/" + tag, ns,
                     svc.resolve_networks("udpnet", {"udpnet": {"IPAMConfig": {"IPv4Address": ip}}}),
                     publish, {"5353/udp": {}})
        t.udp_server(ns, 5353, tag)

    client = netns.socket_in(t.outside, socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(3)
    client.bind((OUTSIDE, 40053))  # one source port throughout: one tracked flow

    def ask_port():
        client.sendto(b"?", (HOST_OUT, 15353))
        try:
            return client.recv(200).decode()
        except socket.timeout:
            return None
    try:
        serve("a" * 64, "10.98.0.2", "first")
        assert ask_port() == "first " + OUTSIDE
        netns.run_in(h, svc.detach, "a" * 64, False)
        assert netns.run_in(h, conntrack.forget, ["10.98.0.2"]) == 0  # (nothing left to forget)
        serve("b" * 64, "10.98.0.3", "second")
        assert ask_port() == "second " + OUTSIDE
        netns.run_in(h, svc.detach, "b" * 64, False)
    finally:
        client.close()


def test_restart_keeps_running_containers_and_reconciles_the_rest(world):
    t, svc, h = world, world.svc, world.host
    netns.run_in(h, svc.ensure)
    before = snapshot(t)
    live, dead = t.ns(), t.ns()
    holder = netns.run_in(live, subprocess.Popen, ["sleep", "60"])
    try:
        joins = svc.resolve_networks("default", None)
        netns.run_in(h, svc.attach, "1" * 64, "/live", live, joins,
                     {"PortBindings": {"80/tcp": [{"HostPort": "18090"}]}}, {})
        netns.run_in(h, svc.attach, "2" * 64, "/dead", dead, joins,
                     {"PortBindings": {"80/tcp": [{"HostPort": "18091"}]}}, {})
        t.tcp_server(live, 80, "live")
        netns.run_in(h, svc.close)  # the daemon is killed: its sockets go, the kernel state stays
        os.close(live)
        t.fds.remove(live)
        assert t.tcp(t.outside, HOST_OUT, 18090) == "live " + OUTSIDE  # still served meanwhile
        again = netns.run_in(h, NetworkService, t.root, {"dns": [OUTSIDE]}, t.prefix)
        t.svc = again
        netns.run_in(h, again.reconcile, lambda cid: holder.pid if cid == "1" * 64 else None)
        assert list(again.endpoints) == ["1" * 64]
        assert t.tcp(t.outside, HOST_OUT, 18090) == "live " + OUTSIDE
        assert t.blocked(t.outside, HOST_OUT, 18091)
        assert list(again.ipam.allocations(again.get("bridge")["Id"]).values()) == ["1" * 64]
        netns.run_in(h, again.detach, "1" * 64, exited=False)
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(t)[0] == before[0] and snapshot(t)[2] == before[2]
