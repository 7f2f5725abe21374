"""The bridge data path built from links + firewall, with real traffic between test network
namespaces, on both iptables back ends: outbound NAT, published ports from another host, from
the host's loopback and by hairpin, UDP, isolation between bridges, internal networks."""

import pytest

from runtime.network import firewall as fw
from runtime.network import netns
from tests.network.topology import HOST_OUT, OUTSIDE, Topology


@pytest.fixture
def topo():
    t = Topology()
    yield t
    t.close()


@pytest.mark.parametrize("backend", ["iptables-legacy", "iptables-nft"])
def test_bridge_data_path(topo, backend):
    topo.bridge("bt0", "10.77.0.1/24")
    topo.bridge("bt1", "10.78.0.1/24")
    topo.bridge("bt2", "10.79.0.1/24")
    c1 = topo.container("bt0", "10.77.0.2/24", "10.77.0.1", "vc1")
    c2 = topo.container("bt0", "10.77.0.3/24", "10.77.0.1", "vc2")
    c3 = topo.container("bt1", "10.78.0.2/24", "10.78.0.1", "vc3")
    c4 = topo.container("bt2", "10.79.0.2/24", "10.79.0.1", "vc4")
    topo.tcp_server(topo.outside, 9000, "outside")
    for fd, tag in ((c1, "c1"), (c3, "c3"), (c4, "c4")):
        topo.tcp_server(fd, 80, tag)
    topo.udp_server(c2, 53, "c2")

    # no rules yet: the containers' traffic is not NATed, so the outside host cannot answer
    assert topo.blocked(c1, OUTSIDE, 9000)

    firewall = fw.Firewall(backend)
    before = netns.run_in(topo.host, firewall.save)
    nets = [fw.Net("bt0", "10.77.0.0/24"), fw.Net("bt1", "10.78.0.0/24"),
            fw.Net("bt2", "10.79.0.0/24", internal=True)]
    published = [fw.Published("bt0", "10.77.0.2", "tcp", "", 18080, 80),
                 fw.Published("bt0", "10.77.0.3", "udp", "", 15353, 53),
                 fw.Published("bt1", "10.78.0.2", "tcp", "127.0.0.1", 18081, 80)]
    netns.run_in(topo.host, firewall.apply, nets, published)

    assert topo.tcp(c1, OUTSIDE, 9000) == "outside " + HOST_OUT         # outbound, masqueraded
    assert topo.tcp(topo.outside, HOST_OUT, 18080) == "c1 " + OUTSIDE   # DNAT from another host
    assert topo.tcp(topo.host, "127.0.0.1", 18080).startswith("c1 ")    # from the host's loopback
    assert topo.tcp(c1, HOST_OUT, 18080).startswith("c1 ")              # hairpin to itself
    assert topo.tcp(c2, HOST_OUT, 18080) == "c1 10.77.0.3"              # a neighbour through the host
    assert topo.udp(topo.outside, HOST_OUT, 15353) == "c2 " + OUTSIDE   # UDP
    assert topo.tcp(topo.host, "127.0.0.1", 18081).startswith("c3 ")    # bound to 127.0.0.1 only
    assert topo.blocked(topo.outside, HOST_OUT, 18081)
    assert topo.blocked(c1, "10.78.0.2", 80)                            # bridges are isolated
    assert topo.blocked(c3, "10.77.0.2", 80)
    assert topo.blocked(c4, OUTSIDE, 9000)                              # internal: no way out
    assert topo.blocked(c1, "10.79.0.2", 80)                            # nor in

    # a change rewrites our chains: the port is gone, the rest stays; nothing is duplicated
    netns.run_in(topo.host, firewall.apply, nets, published[1:])
    assert topo.blocked(topo.outside, HOST_OUT, 18080)
    assert topo.udp(topo.outside, HOST_OUT, 15353) == "c2 " + OUTSIDE
    saved = netns.run_in(topo.host, firewall.save)
    assert saved.count("-j BERTH-FORWARD") == 1 and saved.count("-A BERTH-USER -j RETURN") == 1

    # the admin's rule in BERTH-USER comes first and survives our rewrites
    netns.run_in(topo.host, firewall._run, "-restore",
                 "*filter\n-I BERTH-USER 1 -i bt0 -o out0 -m conntrack --ctstate NEW -j REJECT\nCOMMIT\n")
    fresh = fw.Firewall(backend)  # a restarted daemon
    netns.run_in(topo.host, fresh.apply, nets, published)
    assert topo.blocked(c1, OUTSIDE, 9000)
    assert topo.tcp(topo.outside, HOST_OUT, 18080) == "c1 " + OUTSIDE
    netns.run_in(topo.host, fresh.remove)
    after = netns.run_in(topo.host, firewall.save)
    assert "BERTH-FORWARD" not in after
    assert "-A BERTH-USER -i bt0 -o out0 -m conntrack --ctstate NEW -j REJECT" in after
    netns.run_in(topo.host, firewall._run, "-restore",
                 "*filter\n-D BERTH-USER -i bt0 -o out0 -m conntrack --ctstate NEW -j REJECT\nCOMMIT\n")
    netns.run_in(topo.host, fresh.remove)
    assert _rules(netns.run_in(topo.host, firewall.save)) == _rules(before)


def _rules(saved):
    return sorted(line for line in saved.splitlines() if line.startswith("-A"))
