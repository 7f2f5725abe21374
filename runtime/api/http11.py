"""HTTP/1.1 on one connection, server side: request lines and headers read, responses' status
lines and headers written, keep-alive and `Expect: 100-continue` as RFC 9112 has them.

What http.server.BaseHTTPRequestHandler did for berthd, without its imports: http.server
brings html, mimetypes, http.client and the email package (2.4 MB of berthd's memory on
Python 3.6, held for the daemon's life). The API needs none of what they add (HTML error pages,
file serving, MIME header parsing): a request's headers are `name: value` lines, and errors
are Docker's JSON `{"message": ...}`.

A subclass (runtime/api/server.APIHandler) defines `dispatch()`; a handler object serves one
connection, as socketserver's request handlers do: `Handler(sock, address, server)`.
"""

import json
import logging
import socket
import time
from http import HTTPStatus  # (the http package alone: the status codes, not http.client)

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401

log = logging.getLogger("berthd.api")

MAX_LINE = 65536  # a request line or header line longer than this is refused
MAX_HEADERS = 100  # as http.client's parse_headers
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def reason(code):
    # type: (int) -> str
    """The reason phrase of a status code, as http.server sent it ("" for one not listed)."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def http_date(now=None):
    # type: (Optional[float]) -> str
    """An IMF-fixdate (`Date:`), in English whatever the locale."""
    t = time.gmtime(now)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (_DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1],
                                                    t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


class Headers(object):
    """A request's header fields: names compared without case; get() gives the first value
    of a repeated field, get_all() every one."""

    __slots__ = ("_fields",)

    def __init__(self, fields=()):
        # type: (Any) -> None
        self._fields = list(fields)  # type: List[Tuple[str, str]]

    def get(self, name, default=None):
        # type: (str, Optional[str]) -> Optional[str]
        name = name.lower()
        for k, v in self._fields:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        # type: (str) -> List[str]
        name = name.lower()
        return [v for k, v in self._fields if k.lower() == name]

    def __contains__(self, name):
        # type: (object) -> bool
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name):
        # type: (str) -> Optional[str]
        return self.get(name)

    def __repr__(self):
        # type: () -> str
        return "Headers(%r)" % (self._fields,)


class BadRequest(Exception):
    """A request that cannot be read: answered with `status` and the connection closed."""

    def __init__(self, status, message):
        # type: (int, str) -> None
        Exception.__init__(self, message)
        self.status = status


def read_headers(rfile):
    # type: (Any) -> Headers
    """The header section up to its empty line. Obsolete line folding (a line starting with
    a space or tab) continues the previous field; a line without a colon is refused."""
    fields = []  # type: List[List[str]]
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequest(431, "a header line is longer than %d bytes" % MAX_LINE)
        if not line:
            raise BadRequest(400, "the connection ended inside the request's headers")
        if line in (b"\r\n", b"\n"):
            return Headers((k, v) for k, v in fields)
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t"):
            if not fields:
                raise BadRequest(400, "the first header line starts with white space")
            fields[-1][1] = (fields[-1][1] + " " + text.strip()).strip()
            continue
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "malformed header line %r: a field is `Name: value`" % text[:80])
        if len(fields) >= MAX_HEADERS:
            raise BadRequest(431, "more than %d header fields" % MAX_HEADERS)
        fields.append([name, value.strip()])


class _Writer(object):
    """The connection's write side: each write is sent whole (socket.sendall)."""

    __slots__ = ("_sock", "closed")

    def __init__(self, sock):
        # type: (socket.socket) -> None
        self._sock = sock
        self.closed = False

    def write(self, data):
        # type: (bytes) -> int
        self._sock.sendall(data)
        return len(data)

    def flush(self):
        # type: () -> None
        pass

    def close(self):
        # type: () -> None
        self.closed = True


class HTTPHandler(object):
    """Serves the HTTP/1.1 requests of one connection, one after another, until the client or
    a response closes it. For each request `command`, `path` (the request target),
    `request_version` and `headers` are set and `dispatch()` is called, which answers through
    send_response / send_header / end_headers (or writes `wfile` itself after them)."""

    protocol_version = "HTTP/1.1"
    server_version = "berth"
    timeout = None  # type: Optional[float]  # an idle connection is closed after this many seconds

    def __init__(self, request, client_address, server):
        # type: (socket.socket, Any, Any) -> None
        self.request = self.connection = request
        self.client_address = client_address
        self.server = server
        self.command = ""
        self.path = ""
        self.request_version = "HTTP/1.1"
        self.headers = Headers()
        self.close_connection = True
        self._buffer = []  # type: List[bytes]
        if self.timeout is not None:
            request.settimeout(self.timeout)
        self.rfile = request.makefile("rb")
        self.wfile = _Writer(request)
        try:
            self.handle()
        finally:
            self.wfile.close()
            self.rfile.close()

    def dispatch(self):
        # type: () -> None
        """Answer the request just read (a subclass's)."""
        raise NotImplementedError

    def handle(self):
        # type: () -> None
        """Serve requests until the connection is to be closed."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self):
        # type: () -> None
        """Read one request and dispatch it; a malformed one is answered and ends the connection."""
        try:
            line = self.rfile.readline(MAX_LINE + 1)
        except OSError:  # a timeout on an idle connection, a reset
            self.close_connection = True
            return
        if not line:
            self.close_connection = True
            return
        try:
            self._parse(line)
        except BadRequest as exc:
            self.close_connection = True
            self.send_error(exc.status, str(exc))
            return
        except socket.timeout:
            self.close_connection = True
            return
        self.dispatch()

    def _parse(self, line):
        # type: (bytes) -> None
        self.close_connection = True
        self.command, self.path, self.request_version = "", "", "HTTP/1.1"
        if len(line) > MAX_LINE:
            raise BadRequest(414, "the request line is longer than %d bytes" % MAX_LINE)
        words = line.decode("iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3:
            raise BadRequest(400, "malformed request line %r: `METHOD TARGET HTTP/1.1` is expected"
                             % line[:80].decode("iso-8859-1"))
        command, path, version = words
        try:
            if not version.startswith("HTTP/"):
                raise ValueError(version)
            major, minor = (int(x) for x in version[5:].split("."))
        except ValueError:
            raise BadRequest(400, "bad HTTP version %r" % version) from None
        if major != 1:
            raise BadRequest(505, "HTTP version %s is not served: use HTTP/1.1" % version[5:])
        self.command, self.path, self.request_version = command, path, version
        self.headers = read_headers(self.rfile)
        connection = (self.headers.get("Connection") or "").lower()
        if minor >= 1:
            self.close_connection = "close" in connection
        else:
            self.close_connection = "keep-alive" not in connection
        if command not in METHODS:
            raise BadRequest(501, "method %r is not served" % command)
        if (self.headers.get("Expect") or "").lower() == "100-continue" and minor >= 1:
            self.wfile.write(("%s 100 Continue\r\n\r\n" % self.protocol_version).encode())

    # -- responses
    def send_response(self, code, message=None):
        # type: (int, Optional[str]) -> None
        """Start a response: its status line, Server and Date (sent by end_headers)."""
        log.debug('"%s %s %s" %d', self.command, self.path, self.request_version, code)
        self._buffer = [("%s %d %s\r\n" % (self.protocol_version, code,
                                           message or reason(code))).encode("latin-1")]
        self.send_header("Server", self.server_version)
        self.send_header("Date", http_date())

    def send_header(self, name, value):
        # type: (str, Any) -> None
        """One header field; `Connection: close` ends the connection after this response."""
        self._buffer.append(("%s: %s\r\n" % (name, value)).encode("latin-1"))
        if name.lower() == "connection":
            value = str(value).lower()
            if value == "close":
                self.close_connection = True
            elif value == "keep-alive":
                self.close_connection = False

    def end_headers(self, body=b""):
        # type: (bytes) -> None
        """Send the status line, the headers and body, in one write."""
        self._buffer.append(b"\r\n")
        if body:
            self._buffer.append(body)
        data, self._buffer = b"".join(self._buffer), []
        self.wfile.write(data)

    def send_error(self, code, message):
        # type: (int, str) -> None
        """A request that could not be read: Docker's JSON error, and the connection closed."""
        log.debug("bad request: %d %s", code, message)
        body = json.dumps({"message": message}).encode() + b"\n"
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers(body if self.command != "HEAD" else b"")
        except OSError:
            pass
