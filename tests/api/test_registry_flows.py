"""Pull, push and login through berthd's API (`/images/create?fromImage=`, `/images/{name}/push`,
`/auth`) with the three clients, against real docker-registry processes on loopback."""

import json
import os
import stat
import subprocess

import pytest

from tests.registry.registries import Registry

pytestmark = pytest.mark.timeout(180)

USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("api-registry")).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("api-registry-auth")
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], stdout=subprocess.PIPE, check=True)
    (d / "htpasswd").write_bytes(out.stdout)
    r = Registry(d / "r", htpasswd=str(d / "htpasswd")).start()
    yield r
    r.stop()


def _has(berthd, ref):
    return berthd.api("GET", "/images/%s/json" % ref)[0] == 200


def test_push_then_pull_with_each_client(loaded, registry):
    ref = "%s/bb:1" % registry.host
    assert loaded.berth("tag", "busybox", ref).returncode == 0
    out = loaded.berth("push", ref)
    assert out.returncode == 0, out.stderr
    assert loaded.berth("rmi", ref).returncode == 0 and not _has(loaded, ref)

    out = loaded.berth("pull", ref)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "Digest: sha256:" in text and "Status:" in text and text.strip().endswith(ref)
    assert _has(loaded, ref)

    assert loaded.docker("rmi", ref).returncode == 0
    out = loaded.docker("pull", ref)
    assert out.returncode == 0, out.stderr
    assert "Digest: sha256:" in out.stdout.decode() and _has(loaded, ref)

    client = loaded.client()
    try:
        client.images.remove(ref)
        image = client.images.pull("%s/bb" % registry.host, tag="1")
        assert ref in image.tags
    finally:
        client.close()


def test_run_pulls_a_missing_image(loaded, registry):
    ref = "%s/runme:2" % registry.host
    assert loaded.berth("tag", "busybox", ref).returncode == 0
    assert loaded.berth("push", ref).returncode == 0
    assert loaded.berth("rmi", ref).returncode == 0
    out = loaded.berth("run", "--rm", ref, "echo", "pulled")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"pulled\n" and "Unable to find image '%s' locally" % ref in out.stderr.decode()
    assert loaded.berth("rmi", ref).returncode == 0
    out = loaded.docker("run", "--rm", "--network", "none", ref, "echo", "docker-pulled")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"docker-pulled\n"


def test_pull_errors(loaded, registry):
    status, headers, body = loaded.api("POST", "/images/create?fromImage=%s/nope&tag=1" % registry.host)
    assert status in (404, 400) and headers["content-type"] == "application/json"
    assert json.loads(body)["message"]
    out = loaded.berth("pull", "%s/nope:1" % registry.host)
    assert out.returncode == 1 and "Error response from daemon" in out.stderr.decode()
    out = loaded.docker("pull", "%s/nope:1" % registry.host)
    assert out.returncode == 1


def test_login_push_logout(loaded, auth_registry, tmp_path):
    config = str(tmp_path / "berth-config.json")
    env = {"BERTH_CONFIG": config}
    host = auth_registry.host
    out = loaded.berth("login", "-u", USER, "-p", "wrong", host, env=env)
    assert out.returncode == 1 and not os.path.exists(config)
    out = loaded.berth("login", "-u", USER, "--password-stdin", host, input=PASSWORD.encode(), env=env)
    assert out.returncode == 0 and "Login Succeeded" in out.stdout.decode(), out.stderr
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    with open(config) as f:
        doc = json.load(f)
    assert list(doc["auths"]) == [host] and doc["auths"][host]["auth"]
    ref = "%s/private:1" % host
    assert loaded.berth("tag", "busybox", ref).returncode == 0
    out = loaded.berth("push", ref, env=env)
    assert out.returncode == 0, out.stderr
    assert loaded.berth("rmi", ref).returncode == 0
    out = loaded.berth("pull", ref, env=env)
    assert out.returncode == 0, out.stderr
    out = loaded.berth("logout", host, env=env)
    assert out.returncode == 0 and host in out.stdout.decode()
    with open(config) as f:
        assert json.load(f)["auths"] == {}
    assert loaded.berth("rmi", ref).returncode == 0
    out = loaded.berth("pull", ref, env=env)
    assert out.returncode == 1
