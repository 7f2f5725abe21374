"""The distribution-API client against real registries: anonymous, Bearer token (the challenge
dance against docker-registry's `auth: token`, with token reuse), Basic over TLS verified
against a CA in the certs dir, uploads (monolithic and chunked), errors."""

import hashlib
import io
import json
import os
import shutil

import pytest

from runtime.errors import NotFound, Unauthorized
from runtime.registry import manifest as mf
from runtime.registry.auth import Authenticator, Credentials, TokenCache
from runtime.registry.client import Repository
from runtime.registry.endpoints import RegistryConfig
from runtime.registry.transport import TransportError
from tests.registry.conftest import USERS


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_image(repo, tag, layer):
    """Push one layer + config + OCI manifest with the client primitives; returns digest."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
    for blob in (layer, cfg):
        if repo.blob_size(_digest(blob)) is None:
            repo.upload(_digest(blob), io.BytesIO(blob), len(blob))
    man = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                      "config": {"mediaType": mf.OCI_CONFIG, "digest": _digest(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": mf.OCI_LAYER, "digest": _digest(layer),
                                  "size": len(layer)}]}).encode()
    return repo.put_manifest(tag, man, mf.OCI_MANIFEST)


def _endpoint(registry, config=None):
    return RegistryConfig(config).endpoints(registry.host)[1 if registry.url.startswith("http:") else 0]


def test_chunked_and_monolithic_uploads_then_head_and_get(plain_registry):
    repo = Repository(_endpoint(plain_registry), "client/upload", push=True)
    big, small = os.urandom(300000), os.urandom(1000)
    since = len(plain_registry.requests())
    repo.upload(_digest(big), io.BytesIO(big), len(big), chunk_size=100000)
    repo.upload(_digest(small), io.BytesIO(small), len(small), chunk_size=100000)
    methods = [m for m, path, _ in plain_registry.requests()[since:] if "/blobs/uploads/" in path]
    assert methods.count("PATCH") == 3 and methods.count("PUT") == 2
    assert repo.blob_size(_digest(big)) == len(big)
    assert repo.open_blob(_digest(big)).read() == big
    assert repo.blob_size(_digest(b"never pushed")) is None


def test_bearer_token_dance_and_token_reuse(token_registry):
    ts = token_registry.token_server
    ep = _endpoint(token_registry)
    pusher = Repository(ep, "team/app", Credentials("alice", USERS["alice"]), push=True)
    digest = _push_image(pusher, "v1", os.urandom(5000))
    assert ("alice", ["repository:team/app:pull,push"]) in ts.issued
    before = len(ts.issued)
    anon = Repository(ep, "team/app")
    for _ in range(3):
        raw, media_type, got = anon.get_manifest("v1")
        assert got == digest and media_type == mf.OCI_MANIFEST
    assert anon.get_manifest(digest)[2] == digest
    # one token for the anonymous pull scope, reused for all four requests
    assert ts.issued[before:] == [("", ["repository:team/app:pull"])]


def test_identity_token_is_exchanged_with_a_refresh_grant(token_registry):
    ts = token_registry.token_server
    before = len(ts.issued)
    repo = Repository(_endpoint(token_registry), "team/refresh",
                      Credentials(identitytoken="refresh-alice"), push=True)
    digest = _push_image(repo, "v1", os.urandom(1000))
    assert repo.get_manifest("v1")[2] == digest
    assert ts.issued[before:] == [("alice", ["repository:team/refresh:pull,push"])]
    bad = Repository(_endpoint(token_registry), "team/refresh", Credentials(identitytoken="nope"))
    with pytest.raises(Unauthorized):
        bad.get_manifest("v1")


def test_bearer_wrong_password_is_one_clear_line(token_registry):
    repo = Repository(_endpoint(token_registry), "team/app", Credentials("alice", "wrong"))
    with pytest.raises(Unauthorized) as e:
        repo.get_manifest("v1")
    msg = str(e.value)
    assert "incorrect username or password" in msg and token_registry.host in msg and "\n" not in msg


def test_anonymous_push_to_token_registry_is_refused(token_registry):
    repo = Repository(_endpoint(token_registry), "team/app", push=True)
    with pytest.raises(Unauthorized):
        repo.start_upload()


def test_token_cache_expiry():
    cache = TokenCache()
    cache.put("k", "tok", 0)
    assert cache.get("k") is None
    cache.put("k", "tok", 1e12)
    assert cache.get("k") == "tok"
    auth = Authenticator("r")
    assert auth.learn('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"')
    assert auth.params == {"realm": "https://a/token", "service": "reg", "scope": "repository:x:pull"}
    assert not auth.learn("Negotiate abc")


def test_tls_basic_auth_verified_against_certs_dir(tls_registry, tmp_path):
    if not tls_registry.hostname:
        pytest.skip("this host's name does not resolve to loopback")
    host = "%s:%d" % (tls_registry.hostname, tls_registry.port)
    certs = tmp_path / "certs.d"
    cfg = RegistryConfig({"certs-dir": str(certs)})
    assert not cfg.is_insecure(host) and cfg.is_insecure("127.0.0.1:5000")
    [ep] = cfg.endpoints(host)
    with pytest.raises(TransportError) as e:
        Repository(ep, "x/y", Credentials("alice", USERS["alice"])).ping()
    assert "certificate not trusted" in str(e.value)
    (certs / host).mkdir(parents=True)
    shutil.copy(tls_registry.ca, str(certs / host / "ca.crt"))
    [ep] = RegistryConfig({"certs-dir": str(certs)}).endpoints(host)
    repo = Repository(ep, "x/y", Credentials("alice", USERS["alice"]), push=True)
    digest = _push_image(repo, "v1", os.urandom(2000))
    assert repo.get_manifest("v1")[2] == digest
    with pytest.raises(Unauthorized) as e:
        Repository(ep, "x/y", Credentials("alice", "wrong")).get_manifest("v1")
    assert "incorrect username or password" in str(e.value)
    with pytest.raises(Unauthorized) as e:
        Repository(ep, "x/y").get_manifest("v1")
    assert "requires authentication" in str(e.value) and "berth login" in str(e.value)


def test_missing_repository_and_tag(plain_registry):
    ep = _endpoint(plain_registry)
    with pytest.raises(NotFound) as e:
        Repository(ep, "no/such-repo", name="%s/no/such-repo" % plain_registry.host).get_manifest("latest")
    assert "no/such-repo:latest" in str(e.value) and "not found" in str(e.value)


def test_insecure_registries_cidr_and_hosts():
    cfg = RegistryConfig({"insecure-registries": ["10.1.0.0/16", "reg.example:5000"]})
    assert cfg.is_insecure("10.1.2.3:5000") and cfg.is_insecure("reg.example:5000")
    assert cfg.is_insecure("[::1]:5000") and cfg.is_insecure("localhost:1")
    assert not cfg.is_insecure("10.2.0.1") and not cfg.is_insecure("reg.example:6000")
    https, http = cfg.endpoints("10.1.2.3:5000")
    assert https.url == "https://10.1.2.3:5000" and http.url == "http://10.1.2.3:5000"
    assert [e.url for e in cfg.endpoints("quay.io")] == ["https://quay.io"]
    hub = RegistryConfig({"registry-mirrors": ["http://127.0.0.1:1", "https://m.example"],
                          "hub-url": "https://127.0.0.1:2"}).endpoints("docker.io")
    assert [(e.url, e.mirror) for e in hub] == [("http://127.0.0.1:1", True), ("https://m.example", True),
                                                ("https://127.0.0.1:2", False)]


def test_reference_parsing():
    from runtime.errors import InvalidParameter
    from runtime.registry import names
    r = names.parse("busybox")
    assert (r.domain, r.path, r.tag, r.reference, r.familiar_tagged()) == \
        ("docker.io", "library/busybox", "latest", "latest", "busybox:latest")
    r = names.parse("127.0.0.1:5000/team/app", "v1")
    assert (r.domain, r.path, r.tagged()) == ("127.0.0.1:5000", "team/app", "127.0.0.1:5000/team/app:v1")
    digest = "sha256:" + "a" * 64
    r = names.parse("user/app:1@" + digest)
    assert (r.tag, r.reference, r.tagged()) == (None, digest, "docker.io/user/app@" + digest)
    assert names.parse("busybox", digest).digest == digest
    for bad in ("Bad Name", "x:!!"):
        with pytest.raises(InvalidParameter):
            names.parse(bad)
