"""A hostile registry on loopback (a small HTTP server of the test's own, one misbehaviour per
repository): wrong bytes for a digest, a manifest that does not hash to the digest pulled, a
manifest list with no linux/<this arch> entry, a redirect loop, a 10 GB Content-Length, a
stalled connection, a token endpoint that fails. Each pull is refused with one clear line, the
data root is unchanged and the checker finds nothing."""

import gzip
import hashlib
import http.server
import json
import socketserver
import threading
import time

import pytest

from runtime import datacheck
from runtime.errors import BerthError
from runtime.goarch import goarch
from runtime.registry import transport
from tests import imagefactory
from tests.engine.conftest import make_engine
from tests.hostile.test_corpus import snapshot

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYER = gzip.compress(imagefactory.layer_tar([("file", "etc/hostile", b"x" * 1000)]), mtime=0)
CONFIG = json.dumps({"architecture": goarch(), "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [_sha(gzip.decompress(LAYER))]}},
                    sort_keys=True).encode()
IMAGE_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": MANIFEST,
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
               "digest": _sha(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": _sha(LAYER), "size": len(LAYER)}]}, sort_keys=True).encode()
OTHER_ARCH = "s390x" if goarch() != "s390x" else "riscv64"
MANIFEST_LIST = json.dumps({
    "schemaVersion": 2, "mediaType": LIST,
    "manifests": [{"mediaType": MANIFEST, "digest": _sha(IMAGE_MANIFEST),
                   "size": len(IMAGE_MANIFEST),
                   "platform": {"architecture": OTHER_ARCH, "os": "linux"}}]}).encode()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class Hostile(http.server.BaseHTTPRequestHandler):
    """/v2/<repo>/...: the repository's name says how to misbehave."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="application/json", length=None, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        parts = self.path.split("?")[0].split("/")
        if self.path.startswith("/token"):
            return self.reply(500, b'{"errors": [{"message": "token service down"}]}')
        if parts[:3] == ["", "v2", ""]:
            return self.reply(200, b"{}")
        repo, kind, ref = parts[2], parts[3], parts[4]
        if repo == "tokenfail":
            return self.reply(401, b"{}", headers=[(
                "WWW-Authenticate", 'Bearer realm="http://127.0.0.1:%d/token",service="h"' % port)])
        if repo == "stall":
            time.sleep(5)
            return None
        if repo == "loop":
            return self.reply(302, headers=[("Location", self.path)])
        if kind == "manifests":
            if repo == "noplatform":
                return self.reply(200, MANIFEST_LIST, LIST,
                                  headers=[("Docker-Content-Digest", _sha(MANIFEST_LIST))])
            if repo == "hugemanifest":
                self.reply(200, b"{", MANIFEST, length=10 << 30)
                return None
            if repo == "manifestlie":
                body = IMAGE_MANIFEST.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
                return self.reply(200, body, MANIFEST)
            return self.reply(200, IMAGE_MANIFEST, MANIFEST,
                              headers=[("Docker-Content-Digest", _sha(IMAGE_MANIFEST))])
        if ref == _sha(CONFIG):
            return self.reply(200, CONFIG, "application/octet-stream")
        if repo == "wrongbytes":
            return self.reply(200, b"y" * len(LAYER), "application/octet-stream")
        if repo == "hugeblob":
            self.reply(200, LAYER[:100], "application/octet-stream", length=10 << 30)
            return None
        return self.reply(200, LAYER, "application/octet-stream")

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def hostile():
    srv = _Server(("127.0.0.1", 0), Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = make_engine(str(tmp_path_factory.mktemp("hostile-registry") / "root"))
    yield eng
    eng.close()


def test_the_server_serves_a_good_image(hostile, engine):
    """The same server with a well-behaved repository: the pull works (so the refusals below
    are about the misbehaviour, not the server)."""
    image_id = engine.image_pull("%s/good" % hostile, "1")
    assert image_id == _sha(CONFIG)
    engine.image_remove("%s/good:1" % hostile)
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []


@pytest.mark.parametrize("repo, ref, match", [
    ("wrongbytes", "1", "digest mismatch"),
    ("hugeblob", "1", "the registry sends 10737418240 bytes, the manifest says"),
    ("manifestlie", "@" + _sha(IMAGE_MANIFEST), "digest"),
    ("noplatform", "1", "linux/" + goarch()),
    ("loop", "1", "too many redirects"),
    ("hugemanifest", "1", "manifest"),
    ("stall", "1", "timed out"),
    ("tokenfail", "1", "token"),
])
def test_hostile_registry_is_refused_and_changes_nothing(hostile, engine, monkeypatch, repo, ref,
                                                         match):
    monkeypatch.setattr(transport, "TIMEOUT", 1.0)
    before = snapshot(engine.data_root)
    name = "%s/%s" % (hostile, repo)
    start = time.time()
    with pytest.raises(BerthError) as err:
        if ref.startswith("@"):
            engine.image_pull(name + ref)
        else:
            engine.image_pull(name, ref)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 500, msg
    assert match in msg, msg
    assert time.time() - start < 30
    assert snapshot(engine.data_root) == before
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []
