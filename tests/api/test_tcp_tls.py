"""The API on a loopback TCP listener with TLS (hosts: tcp://127.0.0.1:PORT, tlsverify,
tlscacert, tlscert, tlskey; certificates made by openssl here): the docker CLI and docker-py with
--tlsverify, attach and exec included; a client without a certificate, with one from another CA,
or speaking plain HTTP is refused and berthd goes on serving; plain TCP only with `"tls": false`,
warned about loudly; bad TLS settings are one line."""

import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.request

import pytest

from tests.api.conftest import DOCKER, ROOT, Berthd
from tests.registry.registries import free_port

pytestmark = pytest.mark.timeout(180)


def _ossl(d, *args):
    subprocess.run(["openssl"] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _ca(d, name):
    _ossl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + "-ca-key.pem", "-out", name + "-ca.pem", "-days", "2", "-subj", "/CN=" + name)


def _signed(d, ca, name, ext):
    """A key and a certificate signed by ca's key, with the extensions in ext."""
    _ossl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", "/CN=" + name)
    with open(os.path.join(d, name + ".cnf"), "w") as f:
        f.write(ext)
    _ossl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + "-ca.pem", "-CAkey", ca + "-ca-key.pem",
          "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".cnf")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    _ca(d, "good")
    _ca(d, "rogue")
    _signed(d, "good", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _signed(d, "good", "client", "extendedKeyUsage=clientAuth\n")
    _signed(d, "rogue", "intruder", "extendedKeyUsage=clientAuth\n")
    return lambda name: os.path.join(d, name)


@pytest.fixture(scope="module")
def tlsd(tmp_path_factory, certs, busybox_tar):
    port = free_port()
    d = Berthd(str(tmp_path_factory.mktemp("tlsd")), config={
        "tlsverify": True, "tlscacert": certs("good-ca.pem"), "tlscert": certs("server.pem"),
        "tlskey": certs("server-key.pem")}, extra_args=["-H", "tcp://127.0.0.1:%d" % port])
    d.tcp = "tcp://127.0.0.1:%d" % port
    d.port = port
    d.start()
    with open(busybox_tar, "rb") as f:
        assert d.api("POST", "/images/load", body=f.read())[0] == 200
    yield d
    d.cleanup()


def _docker(d, certs, *args, **kw):
    env = dict(os.environ, DOCKER_CONFIG=os.path.join(d.base, "docker-config"))
    env.pop("DOCKER_HOST", None)
    tls = ["--tlsverify", "--tlscacert", certs("good-ca.pem"), "--tlscert", certs("client.pem"),
           "--tlskey", certs("client-key.pem")]
    return subprocess.run([DOCKER, "-H", d.tcp] + tls + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, env=env, **kw)


def test_docker_cli_with_tlsverify(tlsd, certs):
    out = _docker(tlsd, certs, "version", "--format", "{{.Server.APIVersion}}")
    assert out.returncode == 0 and out.stdout.strip() == b"1.44", out
    out = _docker(tlsd, certs, "run", "--rm", "busybox", "echo", "over tls")
    assert out.returncode == 0 and out.stdout == b"over tls\n", out
    out = _docker(tlsd, certs, "run", "-i", "--rm", "busybox", "tr", "a-z", "A-Z", input=b"shout\n")
    assert out.returncode == 0 and out.stdout == b"SHOUT\n", out
    out = _docker(tlsd, certs, "run", "-d", "--name", "tlsexec", "busybox", "sleep", "60")
    assert out.returncode == 0, out
    try:
        out = _docker(tlsd, certs, "exec", "tlsexec", "cat", "/etc/hostname")
        assert out.returncode == 0 and out.stdout.strip(), out
        out = _docker(tlsd, certs, "ps", "--format", "{{.Names}}")
        assert b"tlsexec" in out.stdout.split(), out
    finally:
        assert _docker(tlsd, certs, "rm", "-f", "tlsexec").returncode == 0


def test_docker_py_with_tls(tlsd, certs, monkeypatch):
    import docker
    # requests puts these (set on this machine) before the client's own CA file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = docker.tls.TLSConfig(client_cert=(certs("client.pem"), certs("client-key.pem")),
                               ca_cert=certs("good-ca.pem"), verify=True)
    client = docker.DockerClient(base_url=tlsd.tcp, tls=tls, timeout=60)
    try:
        assert client.ping() is True
        assert client.containers.run("busybox", ["echo", "py over tls"], remove=True) == b"py over tls\n"
        assert any("busybox:latest" in i.tags for i in client.images.list())
    finally:
        client.close()


def _handshake(port, cert=None, key=None, ca=None):
    """A TLS client handshake plus one request; the response's first line, or the error."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(100).split(b"\r\n")[0]
        except (ssl.SSLError, OSError) as exc:
            return exc


def test_clients_without_a_good_certificate_are_refused(tlsd, certs):
    good = _handshake(tlsd.port, certs("client.pem"), certs("client-key.pem"), certs("good-ca.pem"))
    assert good == b"HTTP/1.1 200 OK", good
    for cert, key in ((None, None), (certs("intruder.pem"), certs("intruder-key.pem"))):
        got = _handshake(tlsd.port, cert, key, certs("good-ca.pem"))
        assert isinstance(got, Exception) or got == b"", (cert, got)
    # plain HTTP to the TLS port
    with socket.create_connection(("127.0.0.1", tlsd.port), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = s.recv(100)
        except OSError:
            reply = b""
        assert b"OK" not in reply, reply
    env = dict(os.environ, DOCKER_CONFIG=os.path.join(tlsd.base, "docker-config"))
    out = subprocess.run([DOCKER, "-H", tlsd.tcp, "--tlsverify", "--tlscacert", certs("good-ca.pem"),
                          "--tlscert", certs("intruder.pem"), "--tlskey", certs("intruder-key.pem"),
                          "version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=env)
    assert out.returncode != 0 and b"Server:" not in out.stdout
    assert "TLS handshake with 127.0.0.1" in tlsd.log()
    # still serving, on both listeners
    assert tlsd.api("GET", "/_ping")[0] == 200
    assert _docker(tlsd, certs, "info", "--format", "{{.Containers}}").returncode == 0


def _validate(tmp_path, config, *flags):
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps(config))
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main", "--validate", "--config-file",
                           str(conf)] + list(flags), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, universal_newlines=True)


def test_plain_tcp_is_refused_unless_the_risk_is_accepted(tmp_path, certs):
    host = "tcp://127.0.0.1:%d" % free_port()
    out = _validate(tmp_path, {"hosts": [host]})
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out
    assert "without TLS" in out.stderr and "tlsverify" in out.stderr and host in out.stderr, out
    out = _validate(tmp_path, {}, "-H", host)
    assert out.returncode == 1 and "without TLS" in out.stderr, out
    out = _validate(tmp_path, {"hosts": [host], "tlsverify": True, "tlscert": certs("server.pem"),
                               "tlskey": certs("server-key.pem")})
    assert out.returncode == 1 and "needs tlscacert" in out.stderr, out
    for bad, words in (("tcp://127.0.0.1:99999", "port '99999'"), ("tcp://[::1", "brackets"),
                       ("http://127.0.0.1:1", "is not supported")):
        out = _validate(tmp_path, {"hosts": [bad], "tls": False})
        assert out.returncode == 1 and words in out.stderr and out.stderr.count("\n") == 1, out
    assert _validate(tmp_path, {"hosts": [host], "tls": False}).returncode == 0
    assert _validate(tmp_path, {}, "-H", host, "--tls=false").returncode == 0

    # the risk accepted: served, with a loud warning
    d = Berthd(str(tmp_path / "plain"), config={"tls": False}, extra_args=["-H", host])
    try:
        d.start()
        with urllib.request.urlopen("http://%s/_ping" % host[len("tcp://"):], timeout=10) as r:
            assert r.read() == b"OK"
        assert "WITHOUT TLS" in d.log() and "root on this host" in d.log()
    finally:
        d.cleanup()


def test_unusable_tls_files_stop_the_start_in_one_line(tmp_path, certs):
    host = "tcp://127.0.0.1:%d" % free_port()
    d = Berthd(str(tmp_path / "badtls"), config={
        "tlsverify": True, "tlscacert": certs("good-ca.pem"), "tlscert": certs("server.pem"),
        "tlskey": str(tmp_path / "missing-key.pem")}, extra_args=["-H", host])
    try:
        with pytest.raises(RuntimeError) as err:
            d.start()
        lines = [x for x in d.log().splitlines() if x.startswith("berthd:")]
        assert len(lines) == 1 and "tlskey" in lines[0] and "missing-key.pem" in lines[0], err.value
        assert not os.path.exists(d.sock)
    finally:
        d.cleanup()
