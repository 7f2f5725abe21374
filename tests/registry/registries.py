"""Real registries for the tests: Debian's docker-registry (CNCF distribution 2.8) on loopback,
plain HTTP, TLS + htpasswd, token auth, or pull-through proxy; a test CA made with openssl; a
small token server that signs RS256 JWTs the registry verifies; a throttling TCP proxy.
"""

import base64
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

REGISTRY = "/usr/bin/docker-registry"
_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[\d.]+" (\d+)')


def free_port():
    """A free TCP port on 127.0.0.1 (a dead one as soon as we close it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(d, hosts=("127.0.0.1",)):
    """A test CA and a server certificate for `hosts` (IPs or names) in dir d; returns paths."""
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=berth test CA")
    ossl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=%s" % hosts[0])
    san = ",".join(("IP:%s" if re.match(r"^[\d.]+$", h) else "DNS:%s") % h for h in hosts)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return {k: os.path.join(d, k) for k in ("ca.crt", "server.crt", "server.key")}


class Registry(object):
    """One docker-registry process on 127.0.0.1:port with storage under `root`."""

    def __init__(self, root, tls=None, htpasswd=None, proxy=None, token=None):
        self.root = str(root)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.storage = os.path.join(self.root, "storage")
        self.log = os.path.join(self.root, "registry.log")
        self.url = ("https://" if tls else "http://") + self.host
        os.makedirs(self.storage, exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
                 "storage:", "  filesystem:", "    rootdirectory: %s" % self.storage,
                 "  delete:", "    enabled: true", "http:", "  addr: 127.0.0.1:%d" % self.port,
                 "  secret: berth-test-secret"]
        if tls:
            lines += ["  tls:", "    certificate: %s" % tls["server.crt"], "    key: %s" % tls["server.key"]]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: berth-test", "    path: %s" % htpasswd]
        if token:
            lines += ["auth:", "  token:", "    realm: %s" % token.realm, "    service: %s" % token.service,
                      "    issuer: %s" % token.issuer, "    rootcertbundle: %s" % token.cert]
        if proxy:
            lines += ["proxy:", "  remoteurl: %s" % proxy]
        self.config = os.path.join(self.root, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        """Start and wait until /v2/ answers."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: %s" % open(self.log).read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start: %s" % open(self.log).read()[-2000:])

    def stop(self):
        """Stop the process we started (by its PID)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def requests(self):
        """[(method, path, status)] from the access log so far."""
        with open(self.log, errors="replace") as f:
            return [(m.group(1), m.group(2), int(m.group(3))) for m in _ACCESS.finditer(f.read())]

    def blob_gets(self, since=0):
        """Successful blob GETs after the first `since` logged requests."""
        return [r for r in self.requests()[since:] if r[0] == "GET" and "/blobs/" in r[1] and r[2] == 200]

    def blob_data(self, digest):
        """Path of the blob's `data` file in the registry storage."""
        h = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", h[:2], h, "data")


def skopeo_copy(src, dest, *extra):
    """Run skopeo copy with TLS verification off for loopback registries."""
    args = ["skopeo", "copy", "--quiet"]
    if src.startswith("docker://"):
        args.append("--src-tls-verify=false")
    if dest.startswith("docker://"):
        args.append("--dest-tls-verify=false")
    subprocess.run(args + list(extra) + [src, dest], check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=120)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer(object):
    """A Bearer token server on loopback: checks Basic credentials and signs RS256 JWTs whose
    `x5c` header carries a self-signed certificate the registry trusts (rootcertbundle)."""

    service = "berth-test-registry"
    issuer = "berth-test-issuer"

    def __init__(self, d, users, lifetime=300):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID
        import datetime

        self.users = users
        self.refresh_tokens = {"refresh-" + u: u for u in users}
        self.lifetime = lifetime
        self.issued = []  # (user, scopes)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth test token signer")])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.cert = os.path.join(str(d), "token-signer.crt")
        with open(self.cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self._sign = lambda data: self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server._handle(self)

            def do_POST(self):
                server._handle_refresh(self)

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.realm = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, user, scopes):
        """A signed JWT granting `scopes` ("repository:NAME:pull,push")."""
        now = int(time.time())
        access = []
        for s in scopes:
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]})
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + self.lifetime,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        return signing + "." + _b64url(self._sign(signing.encode()))

    def _handle(self, req):
        from urllib.parse import parse_qs, urlsplit
        q = parse_qs(urlsplit(req.path).query)
        user = ""
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(user) != password:
                _reply(req, 401)
                return
        scopes = q.get("scope", [])
        if not user:  # anonymous: pull only
            scopes = [s.replace(",push", "").replace("push,", "") for s in scopes]
        self._grant(req, "token", user, scopes)

    def _handle_refresh(self, req):
        """OAuth2 form POST: grant_type=refresh_token with a refresh token issued to a user."""
        from urllib.parse import parse_qs
        form = parse_qs(req.rfile.read(int(req.headers.get("Content-Length", 0))).decode())
        user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
        if form.get("grant_type") != ["refresh_token"] or not user:
            _reply(req, 401)
            return
        scopes = form.get("scope", [])
        self._grant(req, "access_token", user, scopes)

    def _grant(self, req, key, user, scopes):
        """Issue a token for `user` and `scopes`, sent under `key` ("token", or "access_token" for
        the OAuth2 form), and remember the grant in `issued`."""
        self.issued.append((user, scopes))
        _reply(req, 200, {key: self.token(user, scopes), "expires_in": self.lifetime})

    def close(self):
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def _reply(req, status, doc=None):
    """Answer `req` with `status` and `doc` as a JSON body, or an empty body without `doc`."""
    req.send_response(status)
    if doc is None:
        req.send_header("Content-Length", "0")
        req.end_headers()
        return
    body = json.dumps(doc).encode()
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


class ThrottleProxy(object):
    """A TCP proxy on loopback to `target_port` that forwards server->client data at
    `rate` bytes/s (None: full speed), so a pull through it can be killed midway; the first
    `cuts` connections that carry more than `cut_after` bytes to the client are cut there."""

    def __init__(self, target_port, rate=None, cut_after=None, cuts=0):
        self.rate = rate
        self.cut_after = cut_after
        self.cuts = cuts
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.rate, True), daemon=True).start()

    def _pump(self, src, dst, rate, to_client=False):
        sent = 0
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if to_client and self.cut_after and sent + len(data) > self.cut_after and self.cuts > 0:
                    self.cuts -= 1
                    break
                dst.sendall(data)
                sent += len(data)
                if rate:
                    time.sleep(len(data) / float(rate))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        """Stop accepting."""
        self._stop = True
        self.sock.close()


def http_get(url):
    """(status, body) of a plain GET (test helper, no auth)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
