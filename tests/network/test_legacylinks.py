"""The pure parts of legacy links and MAC addresses: link specs, the variables, the hosts names."""

import pytest

from runtime.errors import InvalidParameter
from runtime.network import legacylinks, links


def test_parse_link():
    assert legacylinks.parse_link("web:db") == ("web", "db")
    assert legacylinks.parse_link("/web") == ("web", "web")
    assert legacylinks.parse_link("/web:/db") == ("web", "db")
    for bad in ("", ":db", "a/b:c"):
        with pytest.raises(InvalidParameter, match="invalid link"):
            legacylinks.parse_link(bad)


def test_env_vars_as_dockerd_orders_them():
    env = legacylinks.env_vars("/app/my-db", "my-db", "10.0.0.5", ["PATH=/bin", "PW=a=b", "HOME=/root", "X"],
                               {"5432/tcp": {}, "53/udp": {}, "54/udp": {}, "8080/tcp": {}})
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.5:5432"  # tcp first, then by number
    assert env[1:5] == ["MY_DB_PORT_5432_TCP=tcp://10.0.0.5:5432", "MY_DB_PORT_5432_TCP_ADDR=10.0.0.5",
                        "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp"]
    assert "MY_DB_PORT_53_UDP_START=udp://10.0.0.5:53" in env and "MY_DB_PORT_53_UDP_PORT_END=54" in env
    assert not any(e.startswith("MY_DB_PORT_5432_TCP_START") for e in env)  # 5432 and 8080 are no run
    assert env[-2:] == ["MY_DB_NAME=/app/my-db", "MY_DB_ENV_PW=a=b"]
    assert legacylinks.env_vars("/a/b", "b", "10.0.0.5", [], {}) == ["B_NAME=/a/b"]


def test_host_names_and_merge():
    assert legacylinks.host_names("db", "abc123", "web") == "db abc123 web"
    assert legacylinks.host_names("web", "abc123", "web") == "web abc123"
    assert legacylinks.merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=2", "C=4"]


def test_parse_mac():
    assert links.parse_mac("02:AA:bb:00:00:01") == "02:aa:bb:00:00:01"
    assert links.parse_mac("02-aa-bb-00-00-01") == "02:aa:bb:00:00:01"
    for bad, why in (("01:00:5e:00:00:01", "multicast"), ("00:00:00:00:00:00", "all zeros"),
                     ("02:aa:bb:00:00", "six hex octets"), ("02:aa:bb:00:00:0g", "six hex octets"),
                     ("2:aa:bb:00:00:01", "six hex octets")):
        with pytest.raises(InvalidParameter, match=why):
            links.parse_mac(bad)
