"""Attach before start, for engines whose container_attach needs a running container.

Docker clients attach first and start second (`docker run`, `start -a`). When the engine
refuses the attach because the container has not started, the API answers the upgrade at
once and registers the client. The start route (on_started) then attaches it right after the
engine started the container: for a first run with a real attach whose log replay (the
monitor's, in one step with the live stream) misses nothing; if the run is already over, by
reading its complete log before an AutoRemove can delete it. A restart (`start -a` of an
exited container) streams the log from the moment of the attach instead. An engine that
supports attaching to a created container never reaches this module.
"""

import logging
import socket
import threading
import time

from runtime.api.streams import frame, pump
from runtime.errors import BerthError, NotFound

try:
    from typing import Any, Dict  # noqa: F401
except ImportError:  # pragma: no cover
    pass

log = logging.getLogger("berthd.api")
START_TIMEOUT = 300.0  # a client that attached but never starts the container


def _feed(rfile, peer):
    # type: (Any, Any) -> None
    try:
        while True:
            data = rfile.read1(65536)
            if not data:
                break
            peer.sendall(data)
    except (OSError, ValueError):
        pass
    try:
        peer.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _never_ran(started_at):
    # type: (Any) -> bool
    return not started_at or str(started_at).startswith("0001-")


class Pending(object):
    """A deferred attach waiting for its container's start."""

    def __init__(self, cid, first_run, stdin, stdout, stderr, t0):
        # type: (str, bool, bool, bool, bool, float) -> None
        self.cid, self.first_run, self.t0 = cid, first_run, t0
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.event = threading.Event()
        self.peer = None  # type: Any
        self.lines = None  # type: Any


_lock = threading.Lock()
_waiting = {}  # type: Dict[str, list]
_active = {}  # type: Dict[str, int]
_done = threading.Condition(_lock)


def wait_delivered(cid, timeout):
    # type: (str, float) -> None
    """Block until no deferred attach of the container is still sending (or timeout)."""
    deadline = time.time() + timeout
    with _done:
        while _active.get(cid) and time.time() < deadline:
            _done.wait(max(0.0, deadline - time.time()))


def on_started(backend, name):
    # type: (Any, str) -> None
    """Called by the start and restart routes right after the engine started the container:
    attach the clients waiting for a first run at once, while its monitor still serves even
    if PID 1 is already gone; if the monitor is gone too, read the (complete) log before an
    AutoRemove can delete it."""
    if not _waiting:
        return
    cid = name
    if name not in _waiting:  # a name or short id: docker clients start by the full id
        try:
            cid = backend.container_inspect(name)["Id"]
        except (BerthError, OSError):
            return
    with _lock:
        pending = _waiting.pop(cid, [])
    for p in pending:
        if p.first_run:
            try:
                p.peer = backend.container_attach(cid, stdin=p.stdin, stdout=p.stdout, stderr=p.stderr,
                                                  logs=True)
            except (BerthError, OSError):
                try:
                    p.lines = list(backend.container_logs(cid, stdout=p.stdout, stderr=p.stderr,
                                                          since=p.t0))
                except (BerthError, OSError):
                    p.lines = []
        p.event.set()


def _send_log_tail(backend, name, conn, tty, p, sent):
    # type: (Any, str, Any, bool, Pending, int) -> None
    """Once the exit is recorded, send what the log holds since t0 beyond `sent` lines."""
    backend.container_wait(name, "not-running", 10)
    lines = list(backend.container_logs(name, stdout=p.stdout, stderr=p.stderr, since=p.t0))
    for stream, line in lines[sent:]:
        conn.sendall(line if tty else frame(stream, line))


def _wait_for_start(backend, name, p, before):
    # type: (Any, str, Pending, Any) -> Any
    """The container's State once it has started (or None if it is gone or never starts)."""
    deadline = p.t0 + START_TIMEOUT
    while time.time() < deadline:
        signalled = p.event.wait(1.0)  # the start route signals; polling covers other starters
        try:
            st = backend.container_inspect(name).get("State") or {}
        except (NotFound, OSError):
            return None if p.lines is None and p.peer is None else {}
        if signalled or st.get("Running") or st.get("StartedAt") != before:
            return st
    return None


def deferred_attach(req, name, info, tty, stdin, stdout, stderr):
    # type: (Any, str, Dict[str, Any], bool, bool, bool, bool) -> None
    """Serve a hijacked attach for a container that is not running yet (see module doc)."""
    state = info.get("State") or {}
    before = state.get("StartedAt")
    p = Pending(info.get("Id") or name, _never_ran(before), stdin, stdout, stderr, time.time())
    with _lock:
        _waiting.setdefault(p.cid, []).append(p)
        _active[p.cid] = _active.get(p.cid, 0) + 1
    conn = req.http.connection
    backend = req.backend
    try:
        st = _wait_for_start(backend, name, p, before)
        if st is None:
            return
        if p.peer is None and p.lines is None and st.get("Running") and p.first_run:
            try:  # started by something other than the start route
                p.peer = backend.container_attach(name, stdin=stdin, stdout=stdout, stderr=stderr, logs=True)
            except (BerthError, OSError):
                pass
        if p.peer is not None:
            n = pump(conn, req.http.rfile, p.peer, stdin=stdin, close=False)
            log.debug("deferred attach %s: attached at start, %d bytes", name, n)
            if n == 0:
                _send_log_tail(backend, name, conn, tty, p, 0)  # attached as the monitor went
            return
        if p.lines is not None:
            log.debug("deferred attach %s: over at start, %d log lines", name, len(p.lines))
            for stream, line in p.lines:
                conn.sendall(line if tty else frame(stream, line))
            return
        if stdin and st.get("Running"):
            try:
                peer = backend.container_attach(name, stdin=True, stdout=False, stderr=False)
                threading.Thread(target=_feed, args=(req.http.rfile, peer), daemon=True).start()
            except BerthError:
                pass
        log.debug("deferred attach %s: following the log", name)
        sent = 0
        for stream, line in backend.container_logs(name, stdout=stdout, stderr=stderr, follow=True,
                                                   since=p.t0):
            conn.sendall(line if tty else frame(stream, line))
            sent += 1
        # a follow may end when PID 1 is gone but before its monitor logged the last output
        _send_log_tail(backend, name, conn, tty, p, sent)
    except (BerthError, OSError) as exc:
        log.debug("deferred attach %s: %s", name, exc)
    finally:
        with _lock:
            mine = _waiting.get(p.cid, [])
            if p in mine:
                mine.remove(p)
            if not mine:
                _waiting.pop(p.cid, None)
            _active[p.cid] -= 1
            if not _active[p.cid]:
                del _active[p.cid]
            _done.notify_all()
        try:
            conn.shutdown(socket.SHUT_RDWR)  # also wakes the stdin thread blocked in a read
        except OSError:
            pass
