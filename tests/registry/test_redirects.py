"""Blob downloads that redirect elsewhere (as registries on S3/GCS storage do): followed,
digest-verified, and the registry's Authorization header is not sent to the other host.

The front below is a small loopback server that demands Basic auth, forwards manifests to a
real docker-registry and answers blob GETs with a 307 to a second server on another host name
(`localhost` instead of 127.0.0.1) that serves the registry's own blob files."""

import base64
import http.client
import http.server
import socketserver
import threading

import pytest

from tests import imagefactory
from tests.registry.conftest import make_registry_engine


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def _serve(handler):
    srv = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def redirecting_front(plain_registry):
    seen = []  # (path, Authorization) the storage server received

    class Storage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            digest = self.path.rsplit("/", 1)[-1]
            with open(plain_registry.blob_data(digest), "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    storage = _serve(Storage)

    class Front(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            expected = "Basic " + base64.b64encode(b"bob:pw").decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="front"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "/blobs/" in self.path:
                self.send_response(307)
                self.send_header("Location", "http://localhost:%d/storage/%s"
                                 % (storage.server_address[1], self.path.rsplit("/", 1)[-1]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            conn = http.client.HTTPConnection(plain_registry.host)
            conn.request("GET", self.path, headers={"Accept": self.headers.get("Accept", "*/*")})
            resp = conn.getresponse()
            body = resp.read()
            self.send_response(resp.status)
            for h in ("Content-Type", "Docker-Content-Digest"):
                if resp.getheader(h):
                    self.send_header(h, resp.getheader(h))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            conn.close()

    front = _serve(Front)
    yield "127.0.0.1:%d" % front.server_address[1], seen
    for srv in (front, storage):
        srv.shutdown()
        srv.server_close()


def test_blob_redirect_followed_without_credentials(plain_registry, seed, redirecting_front, tmp_path):
    image_id = seed(plain_registry, "redir/app:1", [imagefactory.layer_tar([("file", "f", b"x" * 5000)])])
    front, seen = redirecting_front
    engine = make_registry_engine(tmp_path / "root")
    got = engine.image_pull("%s/redir/app" % front, "1", auth={"username": "bob", "password": "pw"})
    assert got == image_id
    assert len(seen) == 2 and all(auth is None for _, auth in seen)  # config + layer
