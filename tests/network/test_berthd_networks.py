"""berthd in a test network namespace: user networks (names, aliases, isolation, --ip,
--internal, connect/disconnect, bad input), container: mode, --add-host host-gateway, --dns*."""

import json

from tests.imagefactory import wait_for
from tests.network.conftest import BLOCKED, http_get, wget
from tests.network.test_berthd_bridge import HTTPD
from tests.network.topology import OUTSIDE


def ok(r):
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def test_user_networks_resolve_names_and_are_isolated(clean):
    d = clean
    ok(d.berth("network", "create", "appnet"))
    ok(d.berth("network", "create", "--subnet", "10.42.0.0/24", "--gateway", "10.42.0.254",
               "--label", "tier=back", "other"))
    ok(d.berth("run", "-d", "--network", "appnet", "--name", "web", "--network-alias", "www", "busybox",
               *HTTPD))
    ok(d.berth("run", "-d", "--network", "other", "--ip", "10.42.0.9", "--name", "lone", "busybox", *HTTPD))
    web = json.loads(ok(d.berth("inspect", "web")))[0]["NetworkSettings"]["Networks"]["appnet"]
    assert web["IPAddress"] == "172.18.0.2" and "www" in web["Aliases"] and "web" in web["DNSNames"]
    assert wait_for(lambda: http_get(d.ns, "172.18.0.2", 80), 5)
    for name in ("web", "www", web["DNSNames"][1]):  # name, alias, short id
        out = ok(d.berth("run", "--rm", "--network", "appnet", "busybox", "wget", "-qO-",
                         "http://%s/" % name))
        assert out.startswith("hello from ")
    r = d.berth("run", "--rm", "--network", "appnet", "busybox", "cat", "/etc/resolv.conf")
    assert ok(r).startswith("nameserver 127.0.0.11\n")
    # another network: no route to web, and its name is not ours to answer there (forwarded)
    r = d.berth("run", "--rm", "--network", "other", "busybox", *wget("http://172.18.0.2/", 2))
    assert r.returncode in BLOCKED, r
    r = d.berth("run", "--rm", "busybox", *wget("http://10.42.0.9/", 2))
    assert r.returncode in BLOCKED, r  # the default bridge is isolated too
    lone = json.loads(ok(d.berth("network", "inspect", "other")))[0]
    assert lone["IPAM"]["Config"] == [{"Subnet": "10.42.0.0/24", "Gateway": "10.42.0.254"}]
    assert lone["Labels"] == {"tier": "back"}
    assert [c["IPv4Address"] for c in lone["Containers"].values()] == ["10.42.0.9/24"]
    # connect: lone joins appnet too and reaches web by name
    ok(d.berth("network", "connect", "--alias", "solo", "appnet", "lone"))
    out = ok(d.berth("exec", "lone", "wget", "-qO-", "http://web/"))
    assert out.startswith("hello from ")
    out = ok(d.berth("run", "--rm", "--network", "appnet", "busybox", "wget", "-qO-", "http://solo/"))
    assert out.startswith("hello from ")
    r = d.berth("network", "rm", "appnet")
    assert r.returncode == 1 and "has active endpoints" in r.stderr.decode()
    ok(d.berth("network", "disconnect", "appnet", "lone"))
    r = d.berth("exec", "lone", *wget("http://172.18.0.2/", 2))
    assert r.returncode in BLOCKED, r
    ls = ok(d.berth("network", "ls"))
    assert all(n in ls for n in ("appnet", "other", "bridge", "host", "none"))


def test_internal_network_and_bad_input(clean):
    d = clean
    ok(d.berth("network", "create", "--internal", "--subnet", "10.43.0.0/24", "sealed"))
    r = d.berth("run", "--rm", "--network", "sealed", "busybox", *wget("http://%s:9000/" % OUTSIDE, 2))
    assert r.returncode in BLOCKED, r
    r = d.berth("network", "create", "--subnet", "10.43.0.128/25", "dup")
    assert r.returncode == 1 and "subnet 10.43.0.128/25 overlaps 10.43.0.0/24" in r.stderr.decode()
    r = d.berth("network", "create", "--subnet", "10.44.0.0/24", "--gateway", "10.45.0.1", "badgw")
    assert r.returncode == 1 and "gateway 10.45.0.1 is not a host address in subnet 10.44.0.0/24" in \
        r.stderr.decode()
    r = d.berth("run", "--rm", "--network", "nosuch", "busybox", "true")
    assert r.returncode == 125 and "network nosuch not found" in r.stderr.decode()
    r = d.berth("run", "--rm", "--network", "sealed", "--ip", "10.9.9.9", "busybox", "true")
    assert r.returncode == 125 and "10.9.9.9 (--ip) is not in network sealed's subnet 10.43.0.0/24" in \
        r.stderr.decode()
    r = d.berth("run", "--rm", "--ip", "172.17.0.50", "busybox", "true")
    assert r.returncode == 125 and "user defined networks only" in r.stderr.decode()
    r = d.berth("network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network" in r.stderr.decode()
    r = d.berth("network", "create", "-d", "overlay", "ov")
    assert r.returncode == 1 and "network driver 'overlay' is not supported" in r.stderr.decode()
    ls = ok(d.berth("network", "ls"))
    assert "dup" not in ls and "badgw" not in ls and "ov" not in ls


def test_container_mode_add_host_and_dns_options(clean):
    d = clean
    ok(d.berth("run", "-d", "--name", "base", "busybox", *HTTPD))
    out = ok(d.berth("run", "--rm", "--network", "container:base", "busybox", "sh", "-c",
                     "for i in 1 2 3 4 5 6 7 8 9; do wget -qO- http://127.0.0.1/ && break; sleep 0.3; done"))
    assert out.startswith("hello from ")
    r = d.berth("run", "--rm", "--network", "container:base", "-p", "80:80", "busybox", "true")
    assert r.returncode == 125 and "conflicting options" in r.stderr.decode()
    hosts = ok(d.berth("run", "--rm", "--add-host", "gw:host-gateway", "--add-host", "db:10.1.2.3",
                       "busybox", "cat", "/etc/hosts"))
    assert "172.17.0.1\tgw\n" in hosts and "10.1.2.3\tdb\n" in hosts
    resolv = ok(d.berth("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option",
                        "ndots:3", "busybox", "cat", "/etc/resolv.conf"))
    assert resolv == "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:3\n"
    out = ok(d.berth("run", "--rm", "--hostname", "h1", "--domainname", "example.org", "busybox", "sh", "-c",
                     "hostname; tail -n1 /etc/hosts"))
    assert out.startswith("h1\n") and out.endswith("h1.example.org h1\n")
    r = d.berth("run", "--rm", "--network", "none", "-p", "80:80", "busybox", "true")
    assert r.returncode == 125 and "published ports need a bridge network" in r.stderr.decode()
    # names not ours go upstream: daemon.json dns (the outside host), or the container's --dns
    ok(d.berth("network", "create", "resolving"))
    out = ok(d.berth("run", "--rm", "--network", "resolving", "busybox", "nslookup", "example.org"))
    assert "203.0.113.7" in out
    r = d.berth("run", "--rm", "--network", "resolving", "--dns", "192.0.2.99", "busybox", "nslookup",
                "example.org")
    assert r.returncode != 0 and "203.0.113.7" not in r.stdout.decode()  # nobody at 192.0.2.99
    r = d.berth("run", "--rm", "--network", "slirp4netns", "busybox", "true")
    assert r.returncode == 125 and "network mode 'slirp4netns' is not supported" in r.stderr.decode()
    out = ok(d.berth("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert "eth0" not in out
