"""The engine side of the forkserver (runtime/container/proc/forkserver.py): start it on first use,
send it requests. Kept apart so the forkserver never imports subprocess or threading, whose
at-fork handlers would slow down every fork it makes."""

import json
import os
import socket
import subprocess
import sys
import threading

from runtime.container.proc import wire


def message(kind, spec):
    # type: (str, dict) -> bytes
    """A request as the forkserver takes it: a JSON header line ("kind" first: the forkserver
    routes on the first bytes; for a run, what the monitor needs before it reads the spec), then
    the spec's JSON, which the monitor hands to a prepared PID 1 unread. (JSON without indent
    has no raw newline.)"""
    head = {"kind": kind}  # type: dict
    if kind != "exec":
        head.update(tty=bool(spec.get("tty")), open_stdin=bool(spec.get("open_stdin")),
                    join_netns=bool(spec.get("join_netns")))
    return json.dumps(head).encode() + b"\n" + json.dumps(spec).encode()


class Spawner(object):
    """Engine side: starts the forkserver on first use and sends it requests."""

    def __init__(self, stage_dir=None, cgroup_parent=None):
        # type: (str, str) -> None
        self._stage_dir = stage_dir  # the containers' root mount point: spares stage on it
        self._cgroup_parent = cgroup_parent  # (cgroup v1) spares wait in a cgroup under it
        self._lock = threading.Lock()
        self._proc = None  # type: subprocess.Popen
        self._ctrl = None  # type: socket.socket

    def _start(self):
        # type: () -> None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = ("import sys; sys.path.insert(0, %r); from runtime.container.proc.forkserver import serve; "
                "serve(%d, %r, %r)" % (root, theirs.fileno(), self._stage_dir, self._cgroup_parent))
        self._proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], pass_fds=[theirs.fileno()],
                                      stdin=subprocess.DEVNULL, cwd="/")
        theirs.close()
        self._ctrl = ours

    def request(self, kind, spec, fds=()):
        # type: (str, dict, tuple) -> tuple
        """Send a request (with fds for the child: a run's attach sockets); returns (first
        reply message, the connected reply socket)."""
        a, b = socket.socketpair()
        try:
            data = message(kind, spec)
            with self._lock:
                if self._proc is None or self._proc.poll() is not None:
                    self._start()
                wire.send_fds(self._ctrl, data, [b.fileno()] + list(fds))
            b.close()
            try:
                reply = wire.recv_msg(a)
            except EOFError:
                reply = {"error": "the monitor died before the container started", "code": 126}
            return reply, a
        except BaseException:
            a.close()
            raise

    @property
    def pid(self):
        # type: () -> int
        """The forkserver's pid (0 before it started)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else 0

    def close(self):
        # type: () -> None
        """Stop the forkserver (monitors stay)."""
        with self._lock:
            if self._ctrl is not None:
                self._ctrl.close()
                self._ctrl = None
            if self._proc is not None:
                self._proc.wait()
                self._proc = None
