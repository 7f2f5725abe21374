"""`exec` in a running container: a helper forked by the forkserver joins the container's PID
namespace (which applies to its children), forks the process, which joins the cgroup and the
other namespaces (ipc, uts, net, mnt) and execs. The helper relays stdio over the request
socket (frames, or raw when the start asked for a TTY), waits, and writes `exec/<id>.json` with the exit code.
"""

import os
import select
import signal
import socket

from runtime.container.proc import init, stdio
from runtime.container.proc import syscalls as sc
from runtime.atomicfile import write_json
from runtime.container.proc.wire import recv_msg, send_fd, send_msg
from runtime.framing import frame

_NS_ORDER = ("ipc", "uts", "net", "mnt", "user")  # a user namespace last


def run(spec, reply):
    # type: (dict, socket.socket) -> None
    """Never returns."""
    pid = spec["pid"]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # with a TTY the child opens the pty in the container's devpts and sends us the master
    io = stdio.Stdio(spec["tty"], spec["stdin"], spec.get("console_size"))
    raw = spec.get("raw", spec["tty"])  # the start's Tty decides the framing, as in dockerd
    pty_sock, pty_child_sock = socket.socketpair() if spec["tty"] else (None, None)
    try:
        ns = [(name, os.open("/proc/%d/ns/%s" % (pid, name), os.O_RDONLY)) for name in _NS_ORDER
              if os.readlink("/proc/%d/ns/%s" % (pid, name)) != os.readlink("/proc/self/ns/" + name)]
        pidns = os.open("/proc/%d/ns/pid" % pid, os.O_RDONLY)
        sc.setns(pidns, sc.CLONE_NEWPID)
    except OSError as e:
        send_msg(reply, {"error": "cannot join the container's namespaces: %s" % e, "code": 126})
        os._exit(0)
    sync_r, sync_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(sync_r)
        _child(spec, ns, io, sync_w, pty_child_sock)
    os.close(sync_w)
    io.close_child_ends()
    err = stdio.await_exec(io, sync_r, pty_sock, pty_child_sock)
    result = os.path.join(spec["exec_dir"], spec["exec_id"] + ".json")
    if err:
        _, status = os.waitpid(child, 0)
        code = stdio.exit_code(status)
        write_json(result, {"ExitCode": code, "Running": False, "Pid": child})
        send_msg(reply, {"error": err.decode("utf-8", "replace"), "code": code})
        os._exit(0)
    control = None
    if io.tty:  # exec_resize connects here (a relative name: the full path may be too long)
        os.chdir(spec["exec_dir"])
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        control.bind(spec["exec_id"] + ".sock")
        control.listen(4)
    write_json(result, {"ExitCode": None, "Running": True, "Pid": child})
    send_msg(reply, {"pid": child})
    if spec.get("detach"):
        reply.close()
        reply = None
    status = _relay(io, child, reply, control, raw)
    if control is not None:
        os.unlink(spec["exec_id"] + ".sock")
    write_json(result, {"ExitCode": stdio.exit_code(status), "Running": False, "Pid": child})
    if reply is not None:
        reply.close()
    os._exit(0)


def _child(spec, ns, io, sync_w, pty_sock):
    # type: (dict, list, stdio.Stdio, int, socket.socket) -> None
    code = 126
    try:
        init.join_cgroup(spec["cgroup_procs"])
        for _, fd in ns:
            sc.setns(fd, 0)
        if pty_sock is not None:  # /dev/ptmx is the container's now
            master, slave = os.openpty()
            send_fd(pty_sock, master)
            os.close(master)
            pty_sock.close()
            io.child = [slave, slave, slave]
        if spec["tty"]:
            os.setsid()
        init.set_stdio(io.child)
        if spec["tty"]:
            init.fcntl.ioctl(0, init.termios.TIOCSCTTY, 0)
        init.finalize_and_exec(spec["process"])
    except init.StartError as e:
        code = e.code
        os.write(sync_w, str(e).encode()[:4000])
    except BaseException as e:  # noqa: B036 - never return into the forkserver
        os.write(sync_w, ("exec: %s" % e).encode()[:4000])
    os._exit(code)


def _resize(io, control):
    # type: (stdio.Stdio, socket.socket) -> None
    conn, _ = control.accept()
    with conn:
        conn.settimeout(5)
        try:
            req = recv_msg(conn)
            stdio.resize(io.master, req.get("h", 24), req.get("w", 80))
        except (EOFError, OSError, ValueError):
            pass


def _relay(io, child, sock, control=None, raw=False):
    # type: (stdio.Stdio, int, socket.socket, socket.socket, bool) -> int
    """Copy output to sock (raw, or in frames) and sock to stdin until the process exits and
    its output is drained."""
    status = None
    reading = sock is not None
    while True:
        if status is None:
            try:
                wpid, st = os.waitpid(child, os.WNOHANG)
            except ChildProcessError:
                wpid, st = child, 0
            if wpid == child:
                status = st
        if status is not None and not io.readers:
            return status
        rlist = list(io.readers) + ([sock] if reading else []) + ([control] if control else [])
        timeout = 0.05 if status is None else 0.2
        ready, _, _ = select.select(rlist, [], [], timeout)
        if status is not None and not ready:
            return status
        for r in ready:
            if r is control:
                _resize(io, control)
                continue
            if r is sock:
                data = b""
                try:
                    data = sock.recv(65536)
                except OSError:
                    pass
                if data:
                    io.write_stdin(data)
                else:
                    reading = False
                    io.close_stdin()
                continue
            stream = io.readers[r]
            data = io.read(r)
            if data and sock is not None:
                try:
                    sock.sendall(data if raw else frame(stream, data))
                except OSError:
                    sock = None
                    reading = False
