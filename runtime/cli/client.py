"""A small HTTP/1.1 client of the engine API over a unix socket. Stdlib only and cheap to
import: no http.client, socket, urllib or json packages (the C modules under them instead), no
engine modules; `berth ps` must start fast."""

import _socket
import posix  # not os: importing os is 5.5 ms of every command on CentOS 7's Python 3.6 (-S)
import sys

from runtime.cli import jsonfast as json

SHUT_WR = _socket.SHUT_WR
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def getenv(name, default=None):
    # type: (str, Optional[str]) -> Optional[str]
    """os.environ.get without os (posix.environ holds bytes)."""
    value = posix.environ.get(name.encode())
    return default if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def quote(text, safe=""):
    # type: (str, str) -> str
    """Percent-encode UTF-8 bytes outside the unreserved set and `safe`."""
    ok = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in ok else "%%%02X" % b for b in str(text).encode("utf-8"))


def urlencode(items):
    # type: (list) -> str
    """key=value&... with both sides percent-encoded."""
    return "&".join("%s=%s" % (quote(k), quote(v)) for k, v in items)


class Reader(object):
    """Buffered reads from a raw socket: read(n) (n bytes unless EOF), read1(n), readline()."""

    def __init__(self, sock):
        # type: (Any) -> None
        self.sock = sock
        self.buf = b""

    def _fill(self):
        # type: () -> bool
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def readline(self):
        # type: () -> bytes
        while b"\n" not in self.buf:
            if not self._fill():
                break
        line, sep, self.buf = self.buf.partition(b"\n")
        return line + sep

    def read1(self, n=65536):
        # type: (int) -> bytes
        if not self.buf:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self, n):
        # type: (int) -> bytes
        while len(self.buf) < n:
            if not self._fill():
                break
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

API_VERSION = "1.44"
DEFAULT_HOST = "unix:///run/berth.sock"


class StreamError(Exception):
    """An errorDetail message in a JSON progress stream (runtime.cli.fmt renders them)."""


class APIError(Exception):
    """The daemon answered with an error status; str() is its message."""

    def __init__(self, status, message):
        # type: (int, str) -> None
        Exception.__init__(self, message)
        self.status = status


class ConnectError(Exception):
    """The daemon's socket cannot be reached."""


def socket_path(host):
    # type: (str) -> str
    """The socket path of a `unix:///path` host (a bare path is accepted too)."""
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if "://" in host:
        raise ConnectError("unsupported host %r: berth talks to unix:///path sockets only" % host)
    return host


class Response(object):
    """Status, lower-cased headers and a body reader (Content-Length, chunked or until close)."""

    def __init__(self, sock, rfile, status, headers):
        # type: (Any, Reader, int, Dict[str, str]) -> None
        self.sock = sock
        self.rfile = rfile
        self.status = status
        self.headers = headers
        length = headers.get("content-length")
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._left = int(length) if length is not None else None
        self._chunk_left = 0
        self._eof = status in (204, 304) or self._left == 0
        self._pending = b""

    def read1(self, n=65536):
        # type: (int) -> bytes
        """Some body bytes (b"" at the end)."""
        if self._eof:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    self._eof = True
                    return b""
                self._chunk_left = size
            data = self.rfile.read(min(n, self._chunk_left))
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self.rfile.readline()
            if not data:
                self._eof = True
            return data
        if self._left is not None:
            data = self.rfile.read(min(n, self._left))
            self._left -= len(data)
            if self._left <= 0 or not data:
                self._eof = True
            return data
        data = self.rfile.read1(n)
        if not data:
            self._eof = True
        return data

    def read_exact(self, n):
        # type: (int) -> bytes
        """n body bytes (fewer only at the end of the body)."""
        buf = self._pending
        while len(buf) < n:
            data = self.read1(max(65536, n - len(buf)))
            if not data:
                break
            buf += data
        self._pending = buf[n:]
        return buf[:n]

    def read_some(self, n=65536):
        # type: (int) -> bytes
        """Up to n body bytes, as soon as some are there (b"" at the end)."""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        return self.read1(n)

    def chunks(self):
        # type: () -> Any
        """The body, as it arrives, in pieces of up to 1 MiB."""
        while True:
            data = self.read1(1 << 20)
            if not data:
                return
            yield data

    def read(self):
        # type: () -> bytes
        """The whole body."""
        body = b"".join(self.chunks())
        self.close()
        return body

    def json(self):
        # type: () -> Any
        """The body as JSON."""
        raw = self.read()
        return json.loads(raw) if raw.strip() else None

    def json_stream(self):
        # type: () -> Iterator[Any]
        """Each JSON value of a newline-separated JSON message stream."""
        buf = b""
        while True:
            data = self.read1()
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
        if buf.strip():
            yield json.loads(buf)
        self.close()

    def close(self):
        # type: () -> None
        try:
            self.sock.close()
        except OSError:
            pass


class Client(object):
    """Requests to one daemon; each request uses its own connection."""

    def __init__(self, host=None):
        # type: (Optional[str]) -> None
        self.host = host or getenv("BERTH_HOST") or DEFAULT_HOST
        self.path = socket_path(self.host)

    def _connect(self):
        # type: () -> Any
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            if isinstance(exc, PermissionError):
                raise ConnectError("permission denied while trying to connect to the berth daemon "
                                   "socket at %s: join its group or use sudo" % self.host) from None
            raise ConnectError(
                "Cannot connect to the berth daemon at %s. Is berthd running?" % self.host) from None
        return sock

    def send(self, method, path, query=None, body=None, headers=None, upgrade=False):
        # type: (str, str, Any, Any, Optional[Dict[str, str]], bool) -> Response
        """Send one request and read the status and headers. body: bytes, a JSON-able object,
        or a file object (sent chunked). Raises APIError for status >= 400."""
        return self.request(method, path, query, body, headers, upgrade)()

    def request(self, method, path, query=None, body=None, headers=None, upgrade=False):
        # type: (str, str, Any, Any, Optional[Dict[str, str]], bool) -> Any
        """Send one request; returns response() -> Response, which reads the status and
        headers (as send does). Several requests can be in flight before their answers are read
        (`run` registers its attach and wait in one round trip)."""
        target = "/v%s%s" % (API_VERSION, quote(path, safe="/:@"))
        if query:
            items = [(k, v) for k, v in (query.items() if isinstance(query, dict) else query)
                     if v is not None]
            items = [(k, ("1" if v else "0") if isinstance(v, bool) else v) for k, v in items]
            if items:
                target += "?" + urlencode(items)
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: berth", "User-Agent: berth-cli"]
        stream = None
        payload = b""
        if body is not None and hasattr(body, "read"):
            stream = body
            lines.append("Transfer-Encoding: chunked")
        elif body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            if not isinstance(body, bytes):
                lines.append("Content-Type: application/json")
        if stream is None:
            lines.append("Content-Length: %d" % len(payload))
        for key, value in (headers or {}).items():
            lines.append("%s: %s" % (key, value))
        if upgrade:
            lines.append("Connection: Upgrade")
            lines.append("Upgrade: tcp")
        else:
            lines.append("Connection: close")
        sock = self._connect()
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
            if stream is not None:
                while True:
                    data = stream.read(1 << 20)
                    if not data:
                        break
                    sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
        except (OSError, ValueError) as exc:
            sock.close()
            raise ConnectError("error talking to the daemon at %s: %s" % (self.host, exc)) from None
        return lambda: self._response(sock, method == "HEAD")

    def _response(self, sock, head=False):
        # type: (Any, bool) -> Response
        try:
            rfile = Reader(sock)
            status_line = rfile.readline().decode("latin-1")
            parts = status_line.split(" ", 2)
            if len(parts) < 2:
                raise ConnectError("the daemon at %s closed the connection" % self.host)
            status = int(parts[1])
            hdrs = {}
            while True:
                line = rfile.readline().decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                key, _, value = line.partition(":")
                hdrs[key.strip().lower()] = value.strip()
        except (OSError, ValueError) as exc:
            sock.close()
            if isinstance(exc, ConnectError):
                raise
            raise ConnectError("error talking to the daemon at %s: %s" % (self.host, exc)) from None
        resp = Response(sock, rfile, status, hdrs)
        if head:  # a HEAD reply has a Content-Length but never a body
            resp._eof = True
        if status >= 400:
            raw = resp.read()
            try:
                message = json.loads(raw).get("message") or raw.decode()
            except (ValueError, AttributeError, UnicodeDecodeError):
                message = raw.decode("utf-8", "replace").strip() or "HTTP %d" % status
            raise APIError(status, message)
        return resp

    def call(self, method, path, query=None, body=None, headers=None):
        # type: (str, str, Any, Any, Optional[Dict[str, str]]) -> Any
        """Send and return the JSON body (None when empty)."""
        return self.send(method, path, query, body, headers).json()

    def get(self, path, query=None):
        # type: (str, Any) -> Any
        """GET returning JSON."""
        return self.call("GET", path, query)

    def post(self, path, query=None, body=None, headers=None):
        # type: (str, Any, Any, Optional[Dict[str, str]]) -> Any
        """POST returning JSON."""
        return self.call("POST", path, query, body, headers)
