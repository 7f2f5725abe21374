"""A lean single-threaded process that forks monitors and exec helpers for one engine.

Why: the daemon is threaded, and fork() in a threaded process may copy a lock some other thread
holds. This server is a fresh interpreter (`python -I -S`) that imports only what a monitor
needs, so every monitor forked from it is small (its pages are shared with the server) and
inherits no engine state. It serves one SOCK_SEQPACKET control socket: each request is a JSON
header line {"kind": "run"|"run-fresh"|"exec", ...} and then the spec's JSON (spawner.message),
carrying fds (SCM_RIGHTS): first the socket the forked child answers on, then any attach
sockets a run hands to its monitor. The child is
usually forked before its request arrives (a spare, forked once the server has been idle for
SPARE_DELAY) and gets the request handed over its own socketpair; the spare has also forked
the container's PID 1 already, in new namespaces (monitor.prepare), so a `run` only builds
the filesystem and execs. An `exec` request, and a `run-fresh` (a container whose PID namespace
or root propagation is not the default, runspec.fresh), gets a fresh fork (the spare's PID namespace is
a container's). It exits when the engine closes the control socket (so does the spare); the
monitors, in their own sessions, live on.

runtime/container/spawner.py is the engine side.
"""

import gc
import json
import os
import select
import signal
import socket
import time

from runtime.container.proc import syscalls as sc
from runtime.container.proc import wire

_MAX_MSG = 1 << 20
MAX_FDS = 64  # the reply socket + attach sockets of clients that attached before the start
# the next spare is forked once no request came for this long: a fork right after a hand-off
# would take the CPU from the container being started
SPARE_DELAY = 0.02


def serve(ctrl_fd, stage_dir=None, cgroup_parent=None):
    # type: (int, str, str) -> None
    """The server loop (in the forkserver process); stage_dir: where a spare's PID 1 stages
    the container-independent mounts (the engine's root mount point); cgroup_parent: where it
    waits in a cgroup of its own (cgroup v1: nursery.py)."""
    from runtime.container.proc import execproc, monitor  # noqa: F401 - preload for the children
    from runtime.container.proc import devices
    devices.preload_default()
    sc.cap_last_cap()  # (cached for the children)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sc.set_name("berth-forksrv")
    # no cyclic GC here or in a fresh child: a collection right after fork touches every
    # object and copies the pages they sit on (slow, and it raises the monitor's PSS);
    # the monitor turns it back on once the container runs
    gc.collect()
    gc.disable()
    ctrl = socket.socket(fileno=ctrl_fd)
    spare, spare_pid = _fork_spare(ctrl, stage_dir, cgroup_parent)
    while True:
        if spare is None and not select.select([ctrl], [], [], SPARE_DELAY)[0]:
            # idle: the last container has left its start behind
            spare, spare_pid = _fork_spare(ctrl, stage_dir, cgroup_parent)
            continue
        msg, fds = _recv_request(ctrl)
        if not msg:
            if spare is not None:  # it sees its socket close, ends its PID 1 and removes its cgroup
                spare.close()
                _wait_gone(spare_pid)
            return
        if not fds:
            continue
        handed = False
        if spare is not None and msg.startswith(b'{"kind": "run"'):  # spawner.request's layout
            try:
                wire.send_fds(spare, msg, fds)
                handed = True
            except OSError:
                pass
            spare.close()
            spare = None
        if not handed:
            pid = os.fork()
            if pid == 0:
                try:
                    ctrl.close()
                    if spare is not None:
                        spare.close()
                    _detach()
                except BaseException:  # noqa: B036 - never return into the server loop
                    os._exit(1)
                _child(msg, fds, None)
        for fd in fds:  # before the next fork: no other child may hold them
            os.close(fd)


def _recv_request(sock):
    # type: (socket.socket) -> tuple
    """(message, [fds]); an empty message when the peer closed."""
    while True:
        try:
            return wire.recv_fds(sock, _MAX_MSG, MAX_FDS)
        except InterruptedError:
            continue


def _fork_spare(ctrl, stage_dir, cgroup_parent):
    # type: (socket.socket, str, str) -> tuple
    """Fork the child that will serve the next request, ahead of it: the fork (~1.5 ms of
    page-table copying) then happens between requests, not on the start path. Returns the
    socket the request is handed over on and the child's pid, or (None, 0) if the fork failed."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return None, 0
    if pid == 0:
        from runtime.container.proc import monitor
        prepared = None
        try:
            ours.close()
            ctrl.close()
            _detach()
            prepared = monitor.prepare(stage_dir, cgroup_parent)
            msg, fds = _recv_request(theirs)
            theirs.close()
        except BaseException:  # noqa: B036 - never return into the server loop
            msg, fds = b"", []
        if not msg or not fds:  # the forkserver went away
            if prepared is not None:
                prepared.abandon()
            os._exit(0)
        _child(msg, fds, prepared)
    theirs.close()
    return ours, pid


def _wait_gone(pid, timeout=5.0):
    # type: (int, float) -> None
    """Wait (bounded) until the child pid has exited: the kernel reaps it (SIGCHLD ignored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.002)


def _detach():
    # type: () -> None
    """A session of its own and /dev/null as stdio: monitors (and the PID 1 a spare forks)
    outlive the engine and hold none of its terminal."""
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _child(msg, fds, prepared):
    # type: (bytes, list, object) -> None
    """Serve one request (spawner.request's message: a JSON header line, then the spec's JSON)."""
    from runtime.container.proc import execproc, monitor
    reply_fd = fds[0]
    try:
        reply = socket.socket(fileno=reply_fd)
        head, _, body = msg.partition(b"\n")
        req = json.loads(head.decode())
        sc.set_name("berth-exec" if req["kind"] == "exec" else "berth-monitor")
        if req["kind"] in ("run", "run-fresh"):
            monitor.Monitor(req, body, reply, fds[1:], prepared).run()
        else:
            execproc.run(json.loads(body.decode()), reply)
    except BaseException as e:  # noqa: B036 - report, never return into the server loop
        try:
            wire.send_msg(socket.socket(fileno=reply_fd), {"error": "monitor: %s" % (e,), "code": 126})
        except Exception:  # noqa: BLE001
            pass
    os._exit(1)
