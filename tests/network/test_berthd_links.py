"""berthd in a test namespace: a container's MAC address (--mac-address, EndpointsConfig and the
deprecated Config.MacAddress) and legacy links on the default bridge (--link: /etc/hosts,
the NAME_PORT_* variables, the linked container reached by its alias)."""

import json

from tests.imagefactory import busybox_image_tar, wait_for
from tests.network.conftest import http_get

WEB = ["sh", "-c", "mkdir -p /www && echo linked page > /www/index.html && exec httpd -f -p 80 -h /www"]


def ok(r):
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def containers(d):
    return json.loads(d.api("GET", "/containers/json?all=1")[2])


def test_mac_address_on_the_bridge_and_on_a_user_network(clean):
    d = clean
    ok(d.docker("run", "-d", "--name", "m1", "--mac-address", "02:AA:bb:cc:dd:01", "busybox", "sleep", "60"))
    assert ok(d.berth("exec", "m1", "cat", "/sys/class/net/eth0/address")) == "02:aa:bb:cc:dd:01\n"
    ns = json.loads(ok(d.docker("inspect", "m1")))[0]["NetworkSettings"]
    assert ns["MacAddress"] == ns["Networks"]["bridge"]["MacAddress"] == "02:aa:bb:cc:dd:01"
    # the host's neighbour table learns it from the container's first packet
    ip = ns["IPAddress"]
    ok(d.berth("exec", "m1", "ping", "-c", "1", "-W", "2", "172.17.0.1"))
    assert "lladdr 02:aa:bb:cc:dd:01" in d.ns.ip("neigh", "show", ip)
    ok(d.berth("network", "create", "macnet"))
    ok(d.berth("run", "-d", "--name", "m2", "--network", "macnet", "--mac-address", "02-aa-bb-cc-dd-02",
               "busybox", "sleep", "60"))
    assert ok(d.berth("exec", "m2", "cat", "/sys/class/net/eth0/address")) == "02:aa:bb:cc:dd:02\n"
    # a created (not started) container shows the address it will take
    ok(d.docker("create", "--name", "m3", "--mac-address", "02:aa:bb:cc:dd:03", "busybox", "true"))
    net = json.loads(ok(d.docker("inspect", "m3")))[0]["NetworkSettings"]["Networks"]["bridge"]
    assert net["MacAddress"] == "02:aa:bb:cc:dd:03"


def test_config_mac_address_moves_to_the_endpoint(clean):
    d = clean
    status, _, body = d.api("POST", "/containers/create?name=old", body={
        "Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": "02:42:ac:11:00:0a"})
    assert status == 201, body
    assert "MacAddress field is now deprecated" in json.loads(body)["Warnings"][0]
    assert d.api("POST", "/containers/old/start")[0] == 204
    assert ok(d.berth("exec", "old", "cat", "/sys/class/net/eth0/address")) == "02:42:ac:11:00:0a\n"
    ns = json.loads(ok(d.berth("inspect", "old")))[0]["NetworkSettings"]
    assert ns["MacAddress"] == "02:42:ac:11:00:0a"


def test_bad_mac_addresses_are_refused_and_nothing_is_made(clean):
    d = clean
    before = containers(d)
    r = d.berth("run", "-d", "--mac-address", "03:00:00:00:00:01", "busybox", "true")
    assert r.returncode == 125 and "invalid MAC address '03:00:00:00:00:01'" in r.stderr.decode()
    assert "multicast" in r.stderr.decode()
    r = d.berth("run", "-d", "--mac-address", "02:00:00:00:01", "busybox", "true")
    assert r.returncode == 125 and "invalid MAC address '02:00:00:00:01'" in r.stderr.decode()
    r = d.berth("run", "-d", "--network", "none", "--mac-address", "02:00:00:00:00:01", "busybox", "true")
    assert r.returncode == 125 and "network mode none" in r.stderr.decode()
    status, _, body = d.api("POST", "/containers/create", body={
        "Image": "busybox", "MacAddress": "02:00:00:00:00:01", "NetworkingConfig": {"EndpointsConfig": {
            "default": {"MacAddress": "02:00:00:00:00:02"}}}})
    assert status == 400 and b"differs from network default's endpoint MacAddress" in body
    assert containers(d) == before


def test_legacy_links_on_the_default_bridge(clean):
    d = clean
    ok(d.docker("run", "-d", "--name", "web", "-e", "FOO=bar baz", "--expose", "80", "--expose",
                "8000-8001/udp", "busybox", *WEB))
    web = json.loads(ok(d.docker("inspect", "web")))[0]
    ip, hostname = web["NetworkSettings"]["IPAddress"], web["Config"]["Hostname"]
    assert wait_for(lambda: http_get(d.ns, ip, 80), 5)
    out = ok(d.docker("run", "--rm", "--name", "cl", "--link", "web:db", "busybox", "sh", "-c",
                      "cat /etc/hosts; env | sort; wget -qO- http://$DB_PORT_80_TCP_ADDR/"))
    assert "%s\tdb %s web\n" % (ip, hostname) in out
    for var in ("DB_PORT=tcp://%s:80" % ip, "DB_PORT_80_TCP=tcp://%s:80" % ip, "DB_PORT_80_TCP_ADDR=%s" % ip,
                "DB_PORT_80_TCP_PORT=80", "DB_PORT_80_TCP_PROTO=tcp", "DB_PORT_8000_UDP_PORT_END=8001",
                "DB_PORT_8000_UDP_START=udp://%s:8000" % ip, "DB_NAME=/cl/db", "DB_ENV_FOO=bar baz"):
        assert var + "\n" in out, var
    assert "DB_ENV_PATH" not in out
    assert out.endswith("linked page\n")
    # the alias may be left out; the container's own variables win over a link's
    out = ok(d.berth("run", "--rm", "--link", "web", "-e", "WEB_NAME=mine", "busybox", "sh", "-c",
                     "env | grep ^WEB_; grep web /etc/hosts"))
    assert "WEB_NAME=mine\n" in out and "WEB_PORT_80_TCP_ADDR=%s\n" % ip in out
    assert "%s\tweb %s\n" % (ip, hostname) in out


def test_bad_links_are_refused(clean):
    d = clean
    before = containers(d)
    r = d.berth("run", "--rm", "--link", "nope:db", "busybox", "true")
    assert r.returncode == 125 and "could not get container for nope" in r.stderr.decode()
    r = d.berth("run", "--rm", "--network", "host", "--link", "nope:db", "busybox", "true")
    assert r.returncode == 125 and "--link needs a bridge network" in r.stderr.decode()
    assert containers(d) == before
    ok(d.berth("create", "--name", "idle", "busybox", "sleep", "60"))
    r = d.berth("run", "-d", "--name", "cl", "--link", "idle:db", "busybox", "sleep", "60")
    assert r.returncode != 0 and "cannot link to container idle as db: it is not running" in r.stderr.decode()
    ok(d.berth("start", "idle"))
    ok(d.berth("start", "cl"))  # the same container starts once its link's target runs
    assert "\tdb " in ok(d.berth("exec", "cl", "cat", "/etc/hosts"))


def test_an_images_exposed_ports_are_published_by_P_and_named_by_links(clean, tmp_path):
    d = clean
    tar = busybox_image_tar(tmp_path / "exp.tar", ref="exposing:1", exposed_ports=["80/tcp"])
    with open(str(tar), "rb") as f:
        status = d.api("POST", "/images/load", body=f.read(),
                       headers={"Content-Type": "application/x-tar"})[0]
    assert status == 200
    try:
        ok(d.berth("run", "-d", "--name", "exp", "-P", "exposing:1", *WEB))
        port = ok(d.berth("port", "exp", "80")).strip()
        assert port.startswith("0.0.0.0:")
        assert wait_for(lambda: http_get(d.ns, "127.0.0.1", int(port.split(":")[1])), 5) == "linked page\n"
        out = ok(d.berth("run", "--rm", "--link", "exp:e", "busybox", "env"))
        assert "E_PORT_80_TCP_PORT=80\n" in out
    finally:
        d.berth("rm", "-f", "exp")
        d.api("DELETE", "/images/exposing:1")
