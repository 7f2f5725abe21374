"""The HTTP server: HTTP/1.1 on unix sockets, one thread per connection, the `/v1.NN` prefix,
and dispatch through the route tables (runtime/api/routes), each to its own backend
(runtime/api/backend).

A handler is `handler(req, vars)`; it returns `(status, obj)` (obj: None for no body, bytes
as is, anything else as JSON) or None when it wrote the response itself (streams, hijack).
"""

import fcntl
import json
import logging
import re
import socketserver
import struct
import termios
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

from runtime import TYPE_CHECKING, __version__
from runtime.api import admission, httpstatus
from runtime.api.http11 import HTTPHandler
from runtime.api.streams import BodyReader, ChunkedWriter, MalformedBody, body_length
from runtime.api.threads import KeptThreadsMixIn
from runtime.api.version import API_VERSION, MIN_API_VERSION
from runtime.errors import BerthError, InvalidParameter, Unavailable

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: F401

log = logging.getLogger("berthd.api")

_PREFIX = re.compile(r"^/v([0-9]+\.[0-9]+)(/.*)$")
_FALSE = ("", "0", "no", "false", "none")
_DRAIN_SECONDS = 30.0


def _vtuple(text):
    # type: (str) -> Tuple[int, int]
    major, minor = text.split(".")
    return int(major), int(minor)


class Router(object):
    """Route tables compiled once: `{name}` matches one path segment, `{name:.*}` any text.

    A table is a routes module (its ROUTES list and the BACKEND interface its handlers call)
    with the object that implements that interface; a handler sees only its table's backend
    (as `req.backend`)."""

    def __init__(self, tables):
        # type: (List[Tuple[Any, Any]]) -> None
        self._routes = {}  # type: Dict[str, List[Tuple[Any, Callable, Any]]]
        for routes, backend in tables:
            if not isinstance(backend, routes.BACKEND):
                raise TypeError("%s needs a %s, not %r" % (routes.__name__, routes.BACKEND.__name__,
                                                          type(backend).__name__))
            for method, pattern, handler in routes.ROUTES:
                regex = re.sub(r"\{(\w+):\.\*\}", r"(?P<\1>.+)", pattern)
                regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
                self._routes.setdefault(method, []).append((re.compile("^" + regex + "$"), handler, backend))

    def match(self, method, path):
        # type: (str, str) -> Tuple[Callable, Dict[str, str], Any]
        """The handler, the path variables (unescaped) and the table's backend; RouteNotFound
        otherwise."""
        for regex, handler, backend in self._routes.get(method, ()):
            m = regex.match(path)
            if m:
                return handler, {k: unquote(v) for k, v in m.groupdict().items()}, backend
        raise httpstatus.RouteNotFound("page not found")


class Request(object):
    """What a handler sees of one HTTP request."""

    def __init__(self, handler, path, query, version):
        # type: (Any, str, Dict[str, List[str]], Tuple[int, int]) -> None
        self.http = handler
        self.backend = None  # type: Any  # the route table's backend, once routed
        self.server = handler.server
        self.method = handler.command
        self.path = path
        self.query = query
        self.version = version
        self.headers = handler.headers
        chunked = "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower()
        length = None if chunked else body_length(handler.headers.get("Content-Length"))
        self.body = BodyReader(handler.rfile, length, chunked)
        self.started = False
        self.slots = None  # type: Optional[admission.Slots]  # while this request holds a slot

    def free_slot(self):
        # type: () -> None
        """Give this request's slot (runtime/api/admission.py) to the next request: the handler
        is about to wait for something other than the CPU (an exit, a stream, a peer)."""
        slots, self.slots = self.slots, None
        if slots is not None:
            slots.release()

    def client_gone(self):
        # type: () -> bool
        """Whether the client has hung up (it will read no reply)."""
        return admission.client_gone(self.http.connection)

    # -- query helpers (Docker's form parsing: httputils.BoolValue, Int64ValueOrZero)
    def arg(self, name, default=None):
        # type: (str, Optional[str]) -> Optional[str]
        """The last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name):
        # type: (str) -> List[str]
        """Every value of a repeated query parameter."""
        return list(self.query.get(name, ()))

    def flag(self, name, default=False):
        # type: (str, bool) -> bool
        """A boolean parameter: absent gives default, "", 0, no, false, none give False."""
        value = self.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE

    def int_arg(self, name, default=None):
        # type: (str, Optional[int]) -> Optional[int]
        """An integer parameter (InvalidParameter when malformed)."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidParameter(
                "invalid value for %s: %r (an integer is expected)" % (name, value)) from None

    def filters(self):
        # type: () -> Dict[str, List[str]]
        """The `filters` parameter as {key: [values]}, from either of Docker's JSON forms."""
        raw = self.arg("filters")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidParameter("invalid filters: %r is not JSON" % raw) from None
        if not isinstance(data, dict):
            raise InvalidParameter("invalid filters: an object is expected")
        out = {}
        for key, value in data.items():
            if isinstance(value, dict):
                out[key] = [k for k, on in value.items() if on]
            elif isinstance(value, list):
                out[key] = [str(v) for v in value]
            else:
                out[key] = [str(value)]
        return out

    def json(self, default=None):
        # type: (Any) -> Any
        """The request body parsed as JSON (default when empty)."""
        raw = self.body.read()
        if not raw.strip():
            return {} if default is None else default
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise InvalidParameter("invalid JSON in request body: %s" % exc) from None

    def json_object(self, what):
        # type: (str) -> Dict[str, Any]
        """The request body as a JSON object ({} when empty); InvalidParameter naming `what`
        (e.g. "container config") for any other JSON value."""
        body = self.json()
        if not isinstance(body, dict):
            raise InvalidParameter("invalid %s: a JSON object is expected" % what)
        return body

    # -- responses written by streaming handlers
    def start(self, status=200, content_type="application/json", chunked=True, extra=None):
        # type: (int, str, bool, Optional[Dict[str, str]]) -> ChunkedWriter
        """Send the status line and headers now (flushed) and return a chunked body writer."""
        h = self.http
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for key, value in (extra or {}).items():
            h.send_header(key, value)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        self.started = True
        return ChunkedWriter(h.wfile)

    def hijack(self, content_type):
        # type: (str) -> None
        """Answer an attach/exec start: 101 UPGRADED when the client asked to upgrade, else 200;
        after this the connection carries the raw streams."""
        h = self.http
        upgrade = "upgrade" in (self.headers.get("Connection") or "").lower()
        if upgrade:
            head = ("HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\n"
                    "Upgrade: tcp\r\n\r\n" % content_type)
        else:
            head = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n" % content_type
        self.free_slot()  # an attached session lasts as long as its peer does
        h.wfile.write(head.encode())
        wait_drained(h.connection)
        h.connection.settimeout(None)  # an attached session may be idle for hours
        h.close_connection = True
        self.started = True


def wait_drained(sock, timeout=1.0):
    # type: (Any, float) -> None
    """Wait (at most timeout seconds) until the client has read everything sent on sock so far.

    docker-py parses a hijacked response's headers through a buffered reader, then reads the raw
    socket: stream bytes that reach the client together with the headers stay in that buffer and
    are lost (a fast `exec_run` then returns no output). So the stream starts only once the
    headers have left the socket's send queue (SIOCOUTQ, which unix sockets report too)."""
    deadline = time.time() + timeout
    while True:
        try:
            queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except (OSError, ValueError):
            return
        if queued <= 0 or time.time() >= deadline:
            return
        time.sleep(0.0002)


def json_body(obj):
    # type: (Any) -> bytes
    """obj as a JSON reply body. The items of a list may carry their JSON already (a
    `json_bytes` attribute: runtime/container/views.Summary), which is used as it is: `ps -a`
    over 1,000 containers spent a third of its time encoding the same summaries again."""
    if type(obj) is list:
        parts = [getattr(item, "json_bytes", None) for item in obj]
        if any(parts):
            return b"[" + b", ".join(p or json.dumps(item).encode()
                                     for p, item in zip(parts, obj)) + b"]\n"
    return json.dumps(obj).encode() + b"\n"


class APIHandler(HTTPHandler):
    """One connection; requests are dispatched through the server's Router."""

    server_version = "berth/" + __version__
    timeout = 900  # an idle keep-alive connection is closed after this; hijacked ones have none

    def end_headers(self, body=b""):
        # type: (bytes) -> None
        """The headers every reply has, then the headers' end and body in one write (one
        syscall and one wake-up of the client per reply)."""
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        HTTPHandler.end_headers(self, body)

    def _reply(self, status, obj, content_type="application/json"):
        # type: (int, Any, str) -> None
        if obj is None or status == 304:
            body = b""
        elif isinstance(obj, bytes):
            body = obj
        else:
            body = json_body(obj)
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        if status != 304 and status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers(body if self.command != "HEAD" else b"")

    def dispatch(self):
        # type: () -> None
        """Parse, route, wait for a slot, call the handler, turn errors into Docker's error
        replies; the slot is given back however the request ended."""
        self._req = None  # type: Optional[Request]
        try:
            self._dispatch()
        finally:
            if self._req is not None:
                self._req.free_slot()

    def _dispatch(self):
        # type: () -> None
        url = urlsplit(self.path)
        path = url.path
        version = _vtuple(API_VERSION)
        req = None
        try:
            m = _PREFIX.match(path)
            if m:
                path = m.group(2)
                version = _vtuple(m.group(1))
                if version < _vtuple(MIN_API_VERSION):
                    raise InvalidParameter(
                        "client version %s is too old. Minimum supported API version is %s, "
                        "please upgrade your client to a newer version" % (m.group(1), MIN_API_VERSION))
                if version > _vtuple(API_VERSION):
                    raise InvalidParameter("client version %s is too new. Maximum supported API "
                                           "version is %s" % (m.group(1), API_VERSION))
            query = parse_qs(url.query, keep_blank_values=True)
            req = self._req = Request(self, path, query, version)
            handler, pathvars, req.backend = self.server.router.match(self.command, path)
            slots = getattr(self.server, "slots", None)
            if slots is not None and path != "/_ping":
                slots.acquire(lambda: admission.client_gone(self.connection))
                req.slots = slots
            result = handler(req, pathvars)
            if result is not None:
                if isinstance(result, tuple) and len(result) == 3:
                    self._reply(result[0], result[1], result[2])
                else:
                    self._reply(result[0], result[1])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except admission.ClientGone:  # dropped: nobody would read the reply
            log.debug("%s %s dropped: its client has gone", self.command, path)
            self.close_connection = True
            return
        except Exception as exc:  # every error becomes a reply here, nowhere else
            if req is not None and req.started:
                log.warning("%s %s failed after the response started: %s", self.command, path, exc)
                self.close_connection = True
                return
            if isinstance(exc, MalformedBody):
                self.close_connection = True  # the next request's start is unknown
            status = httpstatus.status_for(exc)
            if isinstance(exc, Unavailable):
                log.warning("%s %s: %s", self.command, path, exc)
            elif status >= 500 or not isinstance(exc, BerthError):
                log.exception("%s %s: %s", self.command, path, exc)
            else:
                log.debug("%s %s: %d %s", self.command, path, status, exc)
            try:
                self._reply(status, None if status == 304 else
                            httpstatus.error_body(exc, getattr(self.server, "data_root", None)))
            except OSError:
                self.close_connection = True
            if req is not None:
                req.free_slot()  # (reading what the client still sends is no work)
            if req is not None and not self.close_connection and not req.body.eof:
                # the rest of a refused upload (a load that does not fit) is read and dropped,
                # for a while: a client that sends all before reading gets the error, not EPIPE
                if not req.body.drain(limit=None, seconds=_DRAIN_SECONDS):
                    self.close_connection = True
        if req is not None and not self.close_connection and not req.body.drain():
            self.close_connection = True



class APIServer(KeptThreadsMixIn, socketserver.UnixStreamServer):
    """Serves the API on one listening unix socket handed in already bound (runtime.daemon.sockets);
    a thread per connection, kept for the next one (runtime/api/threads.py)."""

    def __init__(self, sock, router, data_root=None, slots=None):
        # type: (Any, Router, Optional[str], Optional[admission.Slots]) -> None
        socketserver.UnixStreamServer.__init__(self, sock.getsockname(), APIHandler,
                                               bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.setup_kept_threads()
        self.router = router
        self.data_root = data_root  # named by disk-full errors
        # the requests worked on at once (shared by every listener of the daemon)
        self.slots = slots if slots is not None else admission.Slots(admission.default_count())
        # a connection has a thread: beyond this many, the next ones wait in the listen backlog
        self.connections = threading.BoundedSemaphore(admission.MAX_CONNECTIONS)

    def get_request(self):
        # type: () -> Any
        self.connections.acquire()
        try:
            return socketserver.UnixStreamServer.get_request(self)
        except BaseException:
            self.connections.release()
            raise

    def shutdown_request(self, request):
        # type: (Any) -> None
        try:
            socketserver.UnixStreamServer.shutdown_request(self, request)
        finally:
            self.connections.release()

    def handle_error(self, request, client_address):
        # type: (Any, Any) -> None
        import sys
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            log.debug("client went away")  # e.g. a keep-alive connection reset
            return
        log.exception("connection handler failed")


def default_router(backends):
    # type: (Dict[str, Any]) -> Router
    """The router over every route table; backends: "images", "containers", "volumes",
    "networks", "system" and "build" (runtime.engine.Engine.backends). The swarm table needs none."""
    from runtime.api.routes import build, containers, execs, images, networks, swarm, system, volumes
    return Router([(system, backends["system"]), (containers, backends["containers"]),
                   (execs, backends["containers"]), (images, backends["images"]),
                   (volumes, backends["volumes"]), (networks, backends["networks"]),
                   (build, backends["build"]), (swarm, None)])
