"""/etc/hosts and /etc/resolv.conf contents for a container."""

import pytest

from runtime.errors import InvalidParameter
from runtime.network import etcfiles

STUB = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n"
PLAIN = "nameserver 10.0.0.2\nnameserver 127.0.0.1\nsearch a.example b.example\n"


def test_hosts_with_extra_hosts_and_domain():
    extra = etcfiles.parse_extra_hosts(["db:10.1.2.3", "gw:host-gateway", "v6=[::1]"], "172.17.0.1")
    assert extra == [("db", "10.1.2.3"), ("gw", "172.17.0.1"), ("v6", "::1")]
    text = etcfiles.hosts("web", "example.org", ["172.17.0.2"], extra)
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "10.1.2.3\tdb\n172.17.0.1\tgw\n::1\tv6\n" in text
    assert text.endswith("172.17.0.2\tweb.example.org web\n")


@pytest.mark.parametrize("entry,message", [
    ("db", "invalid --add-host 'db'"), ("db:10.1.2", "invalid --add-host 'db:10.1.2'"),
    (":10.1.2.3", "the host name is missing")])
def test_bad_extra_hosts(entry, message):
    with pytest.raises(InvalidParameter, match=message.replace(".", r"\.")):
        etcfiles.parse_extra_hosts([entry], None)
    with pytest.raises(InvalidParameter, match="host-gateway needs"):
        etcfiles.parse_extra_hosts(["x:host-gateway"], None)


def test_resolv_conf_forms():
    assert etcfiles.resolv_conf(PLAIN, False) == "nameserver 10.0.0.2\nsearch a.example b.example\n"
    # a stub resolver on loopback: its upstream servers instead, the host's options kept
    assert etcfiles.resolv_conf(STUB, False, upstream=["192.0.2.53"]) == (
        "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n")
    assert etcfiles.resolv_conf(STUB, False).startswith("nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    assert etcfiles.resolv_conf(PLAIN, False, servers=["1.1.1.1"], search=["x.example"],
                                options=["ndots:2"]) == \
        "nameserver 1.1.1.1\nsearch x.example\noptions ndots:2\n"
    assert etcfiles.resolv_conf(PLAIN, True) == \
        "nameserver 127.0.0.11\nsearch a.example b.example\noptions ndots:0\n"
    assert etcfiles.resolv_conf(PLAIN, True, search=["."]) == "nameserver 127.0.0.11\noptions ndots:0\n"
