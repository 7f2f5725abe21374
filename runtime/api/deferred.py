"""Attach before start, for engines whose container_attach needs a running container.

Docker clients attach first and start second (`docker run`, `start -a`). When the engine
refuses the attach because the container has not started, the API answers the upgrade at
once and waits for the start. A first run is then attached for real, with the monitor replaying
the log so far (which holds only this run). Otherwise (a restart, or a run already over) it
streams the log from the moment of the attach and, when asked, feeds stdin through an
attach. An engine that supports attaching to a created container never reaches this module.
"""

import socket
import threading
import time

from runtime.api.streams import frame, pump
from runtime.errors import BerthError, NotFound

try:
    from typing import Any, Dict  # noqa: F401
except ImportError:  # pragma: no cover
    pass

POLL = 0.005
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


def deferred_attach(req, name, state, tty, stdin, stdout, stderr):
    # type: (Any, str, Dict[str, Any], bool, bool, bool, bool) -> None
    """Serve a hijacked attach for a container that is not running yet (see module doc)."""
    t0 = time.time()
    conn = req.http.connection
    before = state.get("StartedAt")
    backend = req.backend
    # The client may have shut down its write side already (no stdin): that is no sign it left.
    deadline = t0 + START_TIMEOUT
    while True:
        if time.time() > deadline:
            conn.shutdown(socket.SHUT_RDWR)
            return
        try:
            st = backend.container_inspect(name).get("State") or {}
        except NotFound:
            conn.shutdown(socket.SHUT_RDWR)
            return
        if st.get("Running") or st.get("StartedAt") != before:  # a new run (maybe over already)
            break
        time.sleep(POLL if time.time() - t0 < 2 else 20 * POLL)
    if st.get("Running") and _never_ran(before):
        # A first run: its log holds only this run's output, so an attach that replays the log
        # and then streams (the monitor does both in one step) misses nothing.
        try:
            peer = backend.container_attach(name, stdin=stdin, stdout=stdout, stderr=stderr, logs=True)
        except BerthError:
            peer = None  # it exited meanwhile: the log has it all
        if peer is not None:
            pump(conn, req.http.rfile, peer, stdin=stdin)
            return
    if stdin and st.get("Running"):
        try:
            peer = backend.container_attach(name, stdin=True, stdout=False, stderr=False)
            threading.Thread(target=_feed, args=(req.http.rfile, peer), daemon=True).start()
        except BerthError:
            pass
    try:
        sent = 0
        for stream, line in backend.container_logs(name, stdout=stdout, stderr=stderr, follow=True,
                                                   since=t0):
            conn.sendall(line if tty else frame(stream, line))
            sent += 1
        # a follow may end when PID 1 is gone but before its monitor logged the last output:
        # once the exit is recorded, send what the log holds beyond what was sent
        backend.container_wait(name, "not-running", 10)
        tail = list(backend.container_logs(name, stdout=stdout, stderr=stderr, since=t0))
        for stream, line in tail[sent:]:
            conn.sendall(line if tty else frame(stream, line))
    except (BerthError, OSError):
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)  # also wakes the stdin thread blocked in a read
        except OSError:
            pass
