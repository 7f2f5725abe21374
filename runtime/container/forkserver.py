"""A lean single-threaded process that forks monitors and exec helpers for one engine.

Why: the daemon is threaded, and fork() in a threaded process may copy a lock some other thread
holds. This server is a fresh interpreter (`python -I -S`) that imports only what a monitor
needs, so every monitor forked from it is small (its pages are shared with the server) and
inherits no engine state. It serves one SOCK_SEQPACKET control socket: each request is a JSON
message {"kind": "run"|"exec", "spec": {...}} carrying one fd (SCM_RIGHTS), the socket the
forked child answers on. It exits when the engine closes the control socket; the monitors,
in their own sessions, live on.

runtime/container/spawner.py is the engine side.
"""

import array
import gc
import json
import os
import signal
import socket

from runtime.container import syscalls as sc
from runtime.container import wire

_MAX_MSG = 1 << 20


def serve(ctrl_fd):
    # type: (int) -> None
    """The server loop (in the forkserver process)."""
    from runtime.container import execproc, monitor  # noqa: F401 - preload for the children
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sc.set_name("berth-forksrv")
    # no cyclic GC here or in a fresh child: a collection right after fork touches every
    # object and copies the pages they sit on (slow, and it raises the monitor's PSS);
    # the monitor turns it back on once the container runs
    gc.collect()
    gc.disable()
    ctrl = socket.socket(fileno=ctrl_fd)
    fds = array.array("i")
    while True:
        try:
            # MSG_CMSG_CLOEXEC: the reply socket must not leak into the container's processes
            msg, anc, _, _ = ctrl.recvmsg(_MAX_MSG, socket.CMSG_SPACE(fds.itemsize), socket.MSG_CMSG_CLOEXEC)
        except InterruptedError:
            continue
        if not msg:
            return
        reply_fd = -1
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                reply_fd = array.array("i", data[:fds.itemsize])[0]
        if reply_fd < 0:
            continue
        req = json.loads(msg.decode())
        pid = os.fork()
        if pid == 0:
            _child(ctrl, req, reply_fd)
        os.close(reply_fd)


def _child(ctrl, req, reply_fd):
    # type: (socket.socket, dict, int) -> None
    from runtime.container import execproc, monitor
    try:
        ctrl.close()
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):  # hold none of the engine's stdio: monitors outlive it
            os.dup2(null, fd)
        os.close(null)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        reply = socket.socket(fileno=reply_fd)
        sc.set_name("berth-monitor" if req["kind"] == "run" else "berth-exec")
        if req["kind"] == "run":
            monitor.Monitor(req["spec"], reply).run()
        else:
            execproc.run(req["spec"], reply)
    except BaseException as e:  # noqa: B036 - report, never return into the server loop
        try:
            wire.send_msg(socket.socket(fileno=reply_fd), {"error": "monitor: %s" % (e,), "code": 126})
        except Exception:  # noqa: BLE001
            pass
    os._exit(1)
