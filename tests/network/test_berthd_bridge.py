"""berthd in a test network namespace: the default bridge (outbound NAT, inspect), published
ports (from another host, from the host's loopback, by hairpin), `berth port` and ps."""

import json

from tests.imagefactory import wait_for
from tests.network.conftest import http_get
from tests.network.topology import HOST_OUT, OUTSIDE

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
                     "exec httpd -f -p 80 -h /www"]


def test_default_bridge_outbound_and_inspect(clean):
    d = clean
    r = d.berth("run", "--rm", "busybox", "wget", "-qO-", "http://%s:9000/" % OUTSIDE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "outside saw %s\n" % HOST_OUT  # masqueraded behind the host
    r = d.berth("run", "-d", "--name", "web", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    info = json.loads(d.berth("inspect", "web").stdout)[0]["NetworkSettings"]
    net = info["Networks"]["bridge"]
    assert (net["IPAddress"], net["Gateway"], net["IPPrefixLen"]) == ("172.17.0.2", "172.17.0.1", 16)
    assert info["IPAddress"] == "172.17.0.2" and info["MacAddress"] == "02:42:ac:11:00:02"
    # the host reaches the container by its address; the container's /etc files name it
    assert wait_for(lambda: http_get(d.ns, "172.17.0.2", 80), 5).startswith("hello from ")
    hosts = d.berth("exec", "web", "cat", "/etc/hosts").stdout.decode()
    hostname = json.loads(d.berth("inspect", "web").stdout)[0]["Config"]["Hostname"]
    assert hosts.endswith("172.17.0.2\t%s\n" % hostname)
    resolv = d.berth("exec", "web", "cat", "/etc/resolv.conf").stdout.decode()
    assert resolv.startswith("nameserver %s\n" % OUTSIDE)
    r = d.berth("exec", "web", "ip", "route")
    assert "default via 172.17.0.1 dev eth0" in r.stdout.decode()


def test_published_ports(clean):
    d = clean
    r = d.berth("run", "-d", "--name", "pub", "-p", "18080:80", "-p", "127.0.0.1:18081:80", "--expose", "81",
                "-P", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    # from another host, from the host's loopback, bound to 127.0.0.1 only
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18080), 5).startswith("hello from ")
    assert http_get(d.ns, "127.0.0.1", 18080).startswith("hello from ")        # the host's loopback
    assert http_get(d.ns, "127.0.0.1", 18081).startswith("hello from ")
    assert http_get(d.outside.ns, HOST_OUT, 18081) is None                     # 127.0.0.1 only
    r = d.berth("run", "--rm", "busybox", "wget", "-qO-", "http://%s:18080/" % HOST_OUT)  # hairpin
    assert r.returncode == 0 and r.stdout.decode().startswith("hello from "), r.stderr
    r = d.berth("exec", "pub", "wget", "-qO-", "http://%s:18080/" % HOST_OUT)  # to itself
    assert r.returncode == 0 and r.stdout.decode().startswith("hello from "), r.stderr
    ports = json.loads(d.berth("inspect", "pub").stdout)[0]["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "18080"},
                               {"HostIp": "127.0.0.1", "HostPort": "18081"}]
    eph = int(ports["81/tcp"][0]["HostPort"])
    assert eph >= 32768
    out = d.berth("port", "pub").stdout.decode()
    assert "80/tcp -> 0.0.0.0:18080\n" in out and "81/tcp -> 0.0.0.0:%d\n" % eph in out
    assert d.berth("port", "pub", "80").stdout.decode() == "0.0.0.0:18080\n127.0.0.1:18081\n"
    ps = d.berth("ps").stdout.decode()
    assert "127.0.0.1:18081->80/tcp, 0.0.0.0:18080->80/tcp" in ps or "0.0.0.0:18080->80/tcp" in ps


def test_a_taken_or_bad_port_fails_cleanly(clean):
    d = clean
    taken = d.ns.sock()
    taken.bind(("0.0.0.0", 18090))
    try:
        r = d.berth("run", "-d", "--name", "taken", "-p", "18091:80", "-p", "18090:81", "busybox",
                    "sleep", "60")
        assert r.returncode == 125
        assert "host port 0.0.0.0:18090/tcp is not available" in r.stderr.decode()
        assert http_get(d.outside.ns, HOST_OUT, 18091) is None
    finally:
        taken.close()
    r = d.berth("run", "-d", "-p", "80:99999", "busybox", "true")
    assert r.returncode == 125 and "invalid container port '99999' in -p 80:99999" in r.stderr.decode()
