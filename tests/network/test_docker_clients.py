"""The real docker CLI and docker-py against berthd in a test namespace: the issue's scenario
(a user network, a web server reached by name, a port on 127.0.0.1) and docker-py's network
calls."""

import pytest

from tests.imagefactory import wait_for
from tests.network.conftest import http_get
from tests.network.test_berthd_bridge import HTTPD
from tests.network.topology import HOST_OUT


def ok(r):
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def test_docker_cli_scenario(clean):
    d = clean
    ok(d.docker("network", "create", "appnet"))
    ok(d.docker("run", "-d", "--network", "appnet", "--name", "web", "busybox", *HTTPD))
    out = ok(d.docker("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                      "for i in 1 2 3 4 5 6 7 8 9; do wget -qO- http://web:80/ && break; sleep 0.3; done"))
    assert out.startswith("hello from ")
    ok(d.docker("run", "-d", "--name", "pub", "-p", "127.0.0.1:18080:80", "busybox", *HTTPD))
    assert wait_for(lambda: http_get(d.ns, "127.0.0.1", 18080), 5).startswith("hello from ")
    assert ok(d.docker("port", "pub")) == "80/tcp -> 127.0.0.1:18080\n"
    assert "127.0.0.1:18080->80/tcp" in ok(d.docker("ps"))
    nets = ok(d.docker("network", "ls", "--format", "{{.Name}}")).split()
    assert sorted(nets) == ["appnet", "bridge", "host", "none"]
    assert ok(d.docker("inspect", "-f", "{{.NetworkSettings.Networks.appnet.IPAddress}}", "web")).strip() == \
        "172.18.0.2"
    r = d.docker("network", "rm", "appnet")
    assert r.returncode != 0 and "active endpoints" in r.stderr.decode()


def test_docker_py_networks(clean):
    d = clean
    docker = pytest.importorskip("docker")
    cli = d.client()
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.50.0.0/24",
                                                                       gateway="10.50.0.1")])
    net = cli.networks.create("pynet", driver="bridge", ipam=ipam, labels={"a": "b"})
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.50.0.0/24"
    c = cli.containers.run("busybox", ["sleep", "60"], detach=True, network="pynet", name="pyc")
    net.reload()
    assert [x.name for x in net.containers] == ["pyc"]
    c.reload()
    assert c.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"] == "10.50.0.2"
    net.disconnect(c)
    net.connect(c, aliases=["alias1"], ipv4_address="10.50.0.20")
    c.reload()
    assert c.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"] == "10.50.0.20"
    assert [n.name for n in cli.networks.list(names=["pynet"])] == ["pynet"]
    assert cli.networks.get(net.id[:12]).name == "pynet"
    c.remove(force=True)
    assert cli.networks.prune()["NetworksDeleted"] == ["pynet"]
    with pytest.raises(docker.errors.NotFound):
        cli.networks.get("pynet")


def cgi(name, url, port):
    """A busybox httpd on port whose /cgi-bin/NAME answers with what it fetches from url."""
    script = "#!/bin/sh\\necho Content-Type: text/plain\\necho\\nwget -qO- %s\\n" % url
    return ["sh", "-c", "mkdir -p /www/cgi-bin && printf '%s' > /www/cgi-bin/%s && "
            "chmod +x /www/cgi-bin/%s && exec httpd -f -p %d -h /www" % (script, name, name, port)]


def test_multi_container_app_with_docker_py(clean):
    """A compose-shaped application: a data service with a named volume, an API reaching it by
    service name, a front publishing a port and reaching the API by its alias."""
    d = clean
    cli = d.client()
    net = cli.networks.create("shop", labels={"com.docker.compose.network": "default"})
    vol = cli.volumes.create("shop-data")
    data = cli.containers.run("busybox", ["sh", "-c", "mkdir -p /data/www && echo stock=42 > "
                              "/data/www/index.html && exec httpd -f -p 8000 -h /data/www"],
                              detach=True, name="shop-db", network="shop",
                              volumes={"shop-data": {"bind": "/data", "mode": "rw"}})
    api = cli.containers.run("busybox", cgi("stock", "http://shop-db:8000/", 8080),
                             detach=True, name="shop-api", network="shop")
    net.disconnect(api)
    net.connect(api, aliases=["api"])
    front = cli.containers.run("busybox", cgi("index", "http://api:8080/cgi-bin/stock", 80),
                               detach=True, name="shop-front", network="shop", ports={"80/tcp": 18088})
    try:
        # front -> api (alias) -> shop-db (service name) -> the named volume, via a published port
        body = wait_for(lambda: _get(d, "/cgi-bin/index"), 10)
        assert body is not None and "stock=42" in body, body
        front.reload()
        ports = front.attrs["NetworkSettings"]["Ports"]
        assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "18088"}]
        assert front.attrs["NetworkSettings"]["Networks"]["shop"]["IPAddress"].startswith("172.")
    finally:
        for c in (front, api, data):
            c.remove(force=True)
        net.remove()
        vol.remove()


def _get(d, path):
    """The response to GET path on the host's published port 18088, from the outside host."""
    s = d.outside.ns.sock()
    s.settimeout(5)
    try:
        s.connect((HOST_OUT, 18088))
        s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        s.close()
