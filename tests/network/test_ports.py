"""-p spec parsing and host port reservation (inside a test network namespace)."""

import socket

import pytest

from runtime.errors import Conflict, InvalidParameter
from runtime.network import netns, ports


@pytest.mark.parametrize("spec,expected", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("7000-7001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "7000"}),
                         ("81/tcp", {"HostIp": "", "HostPort": "7001"})]),
    ("7000-7010:80", [("80/tcp", {"HostIp": "", "HostPort": "7000-7010"})]),
    ("53-54/udp", [("53/udp", {"HostIp": "", "HostPort": ""}), ("54/udp", {"HostIp": "", "HostPort": ""})]),
])
def test_specs(spec, expected):
    assert ports.parse_spec(spec) == expected


@pytest.mark.parametrize("spec,message", [
    ("80/icmp", "invalid protocol 'icmp' in -p 80/icmp"),
    ("x:80", "invalid host port 'x' in -p x:80"),
    ("8080:0", "invalid container port '0' in -p 8080:0"),
    ("1.2.3:8080:80", "invalid host IP '1.2.3' in -p 1.2.3:8080:80"),
    ("7000-7002:80-81", "the host and container ranges differ in size"),
    ("1:2:3:4", "invalid -p 1:2:3:4"),
    ("8080:", "the container port is missing"),
    ("90-80", "invalid container port '90-80'"),
])
def test_bad_specs_name_the_value(spec, message):
    with pytest.raises(InvalidParameter, match=message.replace(".", r"\.").replace("(", r"\(")):
        ports.parse_spec(spec)


def test_parse_specs_and_port_map():
    exposed, bindings = ports.parse_specs(["8080:80", "127.0.0.1:9090:80", "53/udp"])
    assert exposed == {"80/tcp": {}, "53/udp": {}}
    assert bindings["80/tcp"] == [{"HostIp": "", "HostPort": "8080"},
                                  {"HostIp": "127.0.0.1", "HostPort": "9090"}]
    m = [ports.Mapping("tcp", "", 8080, 80), ports.Mapping("tcp", "127.0.0.1", 9090, 80)]
    assert ports.port_map(m, {"80/tcp": {}, "443/tcp": {}}) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9090"}],
        "443/tcp": None}


@pytest.fixture
def ns():
    fd = netns.create()
    yield fd
    import os
    os.close(fd)


def test_resolve_reserves_ports_and_undoes_a_failed_request(ns):
    def body():
        res = ports.PortReservations()
        try:
            lo, _ = ports.ephemeral_range()
            got = ports.resolve({"80/tcp": [{"HostPort": "18080"}], "53/udp": [{"HostPort": "18080"}]},
                                True, {"80/tcp": {}, "443/tcp": {}}, res)
            assert sorted(got) == sorted([ports.Mapping("tcp", "", 18080, 80),
                                          ports.Mapping("udp", "", 18080, 53),
                                          ports.Mapping("tcp", "", lo, 443)])
            # a port some other program holds is refused, and the request's other port is released
            other = socket.socket()
            other.bind(("0.0.0.0", 18081))
            with pytest.raises(Conflict, match="host port 0.0.0.0:18081/tcp is not available"):
                ports.resolve({"81/tcp": [{"HostPort": "18082"}], "82/tcp": [{"HostPort": "18081"}]},
                              False, {}, res)
            assert ("tcp", "", 18082) not in res.held
            with pytest.raises(Conflict, match="already published"):
                ports.resolve({"81/tcp": [{"HostPort": "18080"}]}, False, {}, res)
            # a host range takes the first free port of the range
            got = ports.resolve({"81/tcp": [{"HostPort": "18080-18090"}]}, False, {}, res)
            assert got == [ports.Mapping("tcp", "", 18082, 81)]
            other.close()
        finally:
            res.close()
    netns.run_in(ns, body)
