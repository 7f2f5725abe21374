"""Registries for tests/registry: real docker-registry processes on loopback, started once per
session, each with its own storage dir, and stopped (by PID) at the end."""

import os
import socket
import subprocess

import pytest

from tests.registry.registries import Registry, TokenServer, make_ca, skopeo_copy

USERS = {"alice": "s3cret-pw"}


@pytest.fixture(scope="session")
def regdir(tmp_path_factory):
    """A session tmp dir for registry storage, certificates and credentials."""
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def plain_registry(regdir):
    """docker-registry over plain HTTP, anonymous, on 127.0.0.1:random."""
    r = Registry(regdir / "plain").start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def token_registry(regdir):
    """docker-registry with `auth: token` and a loopback token server (alice may push,
    anonymous may pull)."""
    ts = TokenServer(regdir, USERS)
    r = Registry(regdir / "token", token=ts).start()
    r.token_server = ts
    yield r
    r.stop()
    ts.close()


def loopback_hostname():
    """This machine's host name when it resolves to a loopback address (so TLS is verified:
    only IP-literal loopback and `localhost` are insecure by default), else None."""
    name = socket.gethostname()
    try:
        addr = socket.gethostbyname(name)
    except OSError:
        return None
    return name if addr.startswith("127.") and "." not in name else None


@pytest.fixture(scope="session")
def tls_registry(regdir):
    """docker-registry with TLS from a test CA (cert for 127.0.0.1, localhost and this host's
    loopback name) and htpasswd auth for alice. `.ca` is the CA file."""
    host = loopback_hostname()
    certs = make_ca(str(regdir / "ca"), ["127.0.0.1", "localhost"] + ([host] if host else []))
    htpasswd = regdir / "htpasswd"
    out = subprocess.run(["htpasswd", "-Bbn", "alice", USERS["alice"]], stdout=subprocess.PIPE, check=True)
    htpasswd.write_bytes(out.stdout)
    r = Registry(regdir / "tls", tls=certs, htpasswd=str(htpasswd)).start()
    r.ca = certs["ca.crt"]
    r.hostname = host
    yield r
    r.stop()


@pytest.fixture(scope="session")
def seed(tmp_path_factory):
    """seed(registry, "repo:tag", imagefactory.Image or layer tars): push an image to a
    registry with skopeo (an independent client); returns the image's config digest."""
    from tests import imagefactory
    d = tmp_path_factory.mktemp("seed")
    count = [0]

    def push(registry, repo_tag, image):
        if not isinstance(image, imagefactory.Image):
            image = imagefactory.Image(repo_tag, image)
        count[0] += 1
        archive = imagefactory.docker_archive(d / ("img%d.tar" % count[0]), [image])
        skopeo_copy("docker-archive:%s" % archive, "docker://%s/%s" % (registry.host, repo_tag),
                    *(["--dest-creds", "alice:" + USERS["alice"]] if registry.url.startswith("https")
                      else []))
        return imagefactory.sha256(image.blobs()[1])

    return push


def store_files(engine):
    """Every file path under the engine's data root, for before/after comparisons."""
    out = set()
    for top, dirs, files in os.walk(engine.data_root):
        for f in files + [x for x in dirs if os.path.islink(os.path.join(top, x))]:
            out.add(os.path.relpath(os.path.join(top, f), engine.data_root))
    return out


def make_registry_engine(data_root, config=None):
    """A real Engine (tests/engine/conftest.make_engine) for registry tests."""
    from tests.engine.conftest import make_engine
    return make_engine(data_root, config)
