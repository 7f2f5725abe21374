"""IPAM: pools, allocation order, fixed addresses, persistence and reconciliation."""

import ipaddress
import json

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound
from runtime.network.ipam import DEFAULT_POOLS, Ipam


def test_allocates_lowest_free_after_gateway_and_persists(tmp_path):
    path = str(tmp_path / "ipam.json")
    ipam = Ipam(path)
    pool = ipam.add_pool("n1", "10.5.0.0/29")
    assert pool == {"Subnet": "10.5.0.0/29", "Gateway": "10.5.0.1", "IPRange": ""}
    got = [ipam.allocate("n1", "c%d" % i) for i in range(5)]
    assert got == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(Conflict, match="no address left in 10.5.0.0/29"):
        ipam.allocate("n1", "c9")
    ipam.release("n1", "10.5.0.3")
    again = Ipam(path)  # a restarted daemon reads the same state
    assert again.allocations("n1")["10.5.0.2"] == "c0"
    assert "10.5.0.3" not in again.allocations("n1")
    assert again.allocate("n1", "c7") == "10.5.0.3"
    assert json.load(open(path))["n1"]["Allocated"]["10.5.0.3"] == "c7"


def test_fixed_address_ip_range_and_gateway(tmp_path):
    ipam = Ipam(str(tmp_path / "ipam.json"))
    ipam.add_pool("n", "172.30.0.0/24", gateway="172.30.0.254", ip_range="172.30.0.128/28")
    assert ipam.allocate("n", "a") == "172.30.0.128"
    assert ipam.allocate("n", "b", ip="172.30.0.9") == "172.30.0.9"
    with pytest.raises(Conflict, match="172.30.0.9 is already in use"):
        ipam.allocate("n", "c", ip="172.30.0.9")
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate("n", "c", ip="172.30.0.254")
    with pytest.raises(InvalidParameter, match="10.0.0.1 is not in the network's subnet 172.30.0.0/24"):
        ipam.allocate("n", "c", ip="10.0.0.1")
    with pytest.raises(NotFound):
        ipam.allocate("nope", "c")
    assert ipam.allocations("n") == {"172.30.0.128": "a", "172.30.0.9": "b"}


@pytest.mark.parametrize("subnet,gateway,ip_range,message", [
    ("10.0.0.0/33", None, None, "invalid subnet 10.0.0.0/33"),
    ("10.0.0.1/24", None, None, "invalid subnet 10.0.0.1/24"),
    ("10.0.0.0/24", "10.0.1.1", None, "gateway 10.0.1.1 is not a host address in subnet 10.0.0.0/24"),
    ("10.0.0.0/24", None, "10.0.1.0/28", "ip-range 10.0.1.0/28 is not inside subnet 10.0.0.0/24"),
])
def test_bad_pools_are_refused_and_nothing_is_kept(tmp_path, subnet, gateway, ip_range, message):
    ipam = Ipam(str(tmp_path / "ipam.json"))
    with pytest.raises(InvalidParameter, match=message.replace(".", r"\.")):
        ipam.add_pool("n", subnet, gateway, ip_range)
    assert ipam.pool("n") is None


def test_overlaps_are_refused_and_pools_skip_what_is_taken(tmp_path):
    ipam = Ipam(str(tmp_path / "ipam.json"))
    ipam.add_pool("a", "172.17.0.0/16")
    with pytest.raises(Conflict, match="subnet 172.17.5.0/24 overlaps 172.17.0.0/16"):
        ipam.add_pool("b", "172.17.5.0/24", taken=ipam.subnets())
    host_route = ipaddress.ip_network("172.18.0.0/24")
    assert str(ipam.pick_subnet(DEFAULT_POOLS, [host_route])) == "172.19.0.0/16"
    small = [{"base": "10.10.0.0/23", "size": 24}]
    ipam.add_pool("c", "10.10.0.0/24")
    assert str(ipam.pick_subnet(small, [])) == "10.10.1.0/24"
    ipam.add_pool("d", "10.10.1.0/24")
    with pytest.raises(Conflict, match="fully subnetted"):
        ipam.pick_subnet(small, [])


def test_reconcile_releases_what_belonged_to_gone_owners(tmp_path):
    ipam = Ipam(str(tmp_path / "ipam.json"))
    ipam.add_pool("a", "10.1.0.0/24")
    ipam.add_pool("b", "10.2.0.0/24")
    ipam.allocate("a", "live")
    ipam.allocate("a", "dead")
    ipam.allocate("b", "dead")
    gone = ipam.reconcile(lambda owner: owner == "live")
    assert sorted(gone) == [("a", "10.1.0.3"), ("b", "10.2.0.2")]
    assert ipam.allocations("a") == {"10.1.0.2": "live"} and ipam.allocations("b") == {}
    ipam.release_owner("live")
    assert ipam.allocations("a") == {}
