"""HTTP for the registry client: one request at a time over http.client, kept-alive
connections reused per host, redirects followed (Authorization dropped when the redirect
leaves the registry's host), bodies streamed in large chunks, and network failures turned into
one-line TransportError messages.
"""

import http.client
import socket
import ssl
import threading
from urllib.parse import urljoin, urlsplit

from runtime.errors import BerthError

CHUNK = 1 << 20
TIMEOUT = 120.0
MAX_REDIRECTS = 5
USER_AGENT = "berth/0.1"


class TransportError(BerthError):
    """The registry could not be reached or spoke no HTTP we understand."""


class Response(object):
    """An HTTP response; `read()` or iterate `chunks()`; `close()` returns the connection to
    the pool once the body is consumed."""

    def __init__(self, url, raw, conn, pool):
        # type: (str, http.client.HTTPResponse, http.client.HTTPConnection, Pool) -> None
        self.url = url
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._raw = raw
        self._conn = conn
        self._pool = pool

    def header(self, name, default=None):
        # type: (str, str) -> str
        """One header value or `default`."""
        return self.headers.get(name, default)

    def read(self):
        # type: () -> bytes
        """The whole body (then the connection is released)."""
        try:
            data = self._raw.read()
        except (OSError, http.client.HTTPException) as e:
            self.close(reuse=False)
            raise TransportError("reading %s: %s" % (self.url, _reason(e))) from None
        self.close()
        return data

    def chunks(self, size=CHUNK):
        """Yield the body in pieces of up to `size` bytes; a body cut short of its
        Content-Length raises TransportError (http.client's read(n) would just stop)."""
        expected = self.header("Content-Length")
        got = 0
        try:
            while True:
                data = self._raw.read(size)
                if not data:
                    break
                got += len(data)
                yield data
        except (OSError, http.client.HTTPException) as e:
            self.close(reuse=False)
            raise TransportError("reading %s: %s" % (self.url, _reason(e))) from None
        if expected is not None and expected.isdigit() and got < int(expected):
            self.close(reuse=False)
            raise TransportError("reading %s: connection closed after %d of %s bytes"
                                 % (self.url, got, expected))
        self.close()

    def close(self, reuse=True):
        # type: (bool) -> None
        """Release the connection: back to the pool when the body was read fully."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if reuse and self._raw.isclosed() and not self._raw.will_close:
            self._pool.release(conn)
        else:
            self._raw.close()
            conn.close()


class Pool(object):
    """Idle keep-alive connections by (scheme, host:port, TLS context)."""

    def __init__(self):
        # type: () -> None
        self._idle = {}  # type: dict
        self._lock = threading.Lock()

    def acquire(self, scheme, netloc, context):
        """An idle connection for the key, or a new one."""
        key = (scheme, netloc, id(context))
        with self._lock:
            conns = self._idle.get(key)
            if conns:
                return conns.pop()
        if scheme == "https":
            conn = http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=context)
        else:
            conn = http.client.HTTPConnection(netloc, timeout=TIMEOUT)
        conn._berth_key = key
        return conn

    def release(self, conn):
        """Keep `conn` for the next request to the same place."""
        with self._lock:
            conns = self._idle.setdefault(conn._berth_key, [])
            if len(conns) < 8:
                conns.append(conn)
                return
        conn.close()


POOL = Pool()


def _reason(exc):
    # type: (BaseException) -> str
    if isinstance(exc, (getattr(ssl, "SSLCertVerificationError", ssl.CertificateError),
                        ssl.CertificateError)):
        return "TLS certificate not trusted (%s): add its CA as /etc/berth/certs.d/HOST/ca.crt " \
               "or list the registry in insecure-registries" % getattr(exc, "verify_message", exc)
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "CERTIFICATE_VERIFY_FAILED":  # Python 3.6 has no SSLCertVerificationError
            return "TLS certificate not trusted: add its CA as /etc/berth/certs.d/HOST/ca.crt " \
                   "or list the registry in insecure-registries"
        return "TLS error: %s" % (exc.reason or exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host name (%s)" % exc.strerror
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def request(method, url, headers=None, body=None, length=None, context=None, follow=True,
            pool=POOL):
    # type: (str, str, dict, object, int, ssl.SSLContext, bool, Pool) -> Response
    """Send one request and return the Response (body not yet read).

    `body` is bytes or a readable file object of `length` bytes. Redirects (301/302/303/307/
    308) are followed for bodiless requests when `follow`; a redirect to another host loses
    the Authorization header and uses the system CA store."""
    headers = dict(headers or {})
    host = urlsplit(url).netloc
    for _ in range(MAX_REDIRECTS + 1):
        resp = _send_once(method, url, headers, body, length, context, pool)
        if not follow or body is not None or resp.status not in (301, 302, 303, 307, 308):
            return resp
        location = resp.header("Location")
        resp.read()
        if not location:
            raise TransportError("%s %s: redirect without a Location" % (method, url))
        url = urljoin(url, location)
        if urlsplit(url).netloc != host:
            headers.pop("Authorization", None)
            context = None
    raise TransportError("%s %s: too many redirects" % (method, url))


def _send_once(method, url, headers, body, length, context, pool):
    parts = urlsplit(url)
    if parts.scheme == "https" and context is None:
        context = default_context()
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    for attempt in (0, 1):
        conn = pool.acquire(parts.scheme, parts.netloc, context)
        reused = getattr(conn, "sock", None) is not None
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader("User-Agent", USER_AGENT)
            for k, v in headers.items():
                conn.putheader(k, v)
            if isinstance(body, (bytes, bytearray)):
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(bytes(body))
            elif body is not None:
                conn.putheader("Content-Length", str(length))
                conn.endheaders()
                while True:
                    data = body.read(CHUNK)
                    if not data:
                        break
                    conn.send(data)
            else:
                if method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", "0")
                conn.endheaders()
            raw = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            # A kept-alive connection the server closed meanwhile: retry once on a fresh one.
            if reused and attempt == 0 and (body is None or isinstance(body, (bytes, bytearray))) \
                    and isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                       ConnectionResetError)):
                continue
            raise TransportError("cannot reach %s://%s: %s"
                                 % (parts.scheme, parts.netloc, _reason(e))) from None
        if method == "HEAD":
            raw.read()
        return Response(url, raw, conn, pool)
    raise AssertionError("unreachable")


_DEFAULT = []  # type: list


def default_context():
    # type: () -> ssl.SSLContext
    """The system CA store, built once."""
    if not _DEFAULT:
        _DEFAULT.append(ssl.create_default_context())
    return _DEFAULT[0]


def tls_context(verify=True, ca_files=(), client_cert=None):
    # type: (bool, tuple, tuple) -> ssl.SSLContext
    """A TLS context: the system CAs plus `ca_files`, or no verification at all."""
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()
        for ca in ca_files:
            ctx.load_verify_locations(cafile=ca)
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx
