"""A health-check probe run by the container's monitor (the `probe` request on its socket):
one fork of the monitor, whose PID namespace for children already is the container's, joins
the cgroup and the other namespaces and execs the test with stdout and stderr on one pipe.
No forkserver hop, no exec helper, no exec record: the monitor reads the output (4 KiB kept),
reaps the process, kills it at the timeout and answers {"code", "output"} (code -1 at the
timeout)."""

import os
import signal

from runtime.container.proc import init
from runtime.container.proc import syscalls as sc
from runtime.container.proc.wire import send_msg

MAX_OUTPUT = 4096
_NS = ("ipc", "uts", "net", "mnt", "user")  # a user namespace last


class Probe(object):
    """One running probe; `fd` is its output pipe, `pid` its process."""

    def __init__(self, conn, req, pid1, now):
        # type: (object, dict, int, float) -> None
        self.conn = conn
        self.deadline = now + float(req.get("timeout") or 30)
        self.output = b""
        self.status = None  # type: object
        self.timed_out = False
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(req, pid1, w)
        os.close(w)
        self.pid, self.fd = pid, r

    def read(self):
        # type: () -> None
        """Output is there (or EOF: fd becomes -1)."""
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            os.close(self.fd)
            self.fd = -1
        elif len(self.output) < MAX_OUTPUT:
            self.output += data[:MAX_OUTPUT - len(self.output)]

    def expire(self):
        # type: () -> None
        """Past the deadline: kill it (its exit is reaped as usual)."""
        self.timed_out = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def done(self):
        # type: () -> bool
        return self.status is not None and self.fd < 0

    def answer(self):
        # type: () -> None
        code = -1 if self.timed_out else _code(self.status)
        try:
            send_msg(self.conn, {"code": code, "output": self.output.decode("utf-8", "replace"),
                                 "timeout": self.timed_out})
        except OSError:
            pass
        self.conn.close()

    def abandon(self):
        # type: () -> None
        """The container stopped under it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.conn.close()


def _code(status):
    # type: (int) -> int
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _child(req, pid1, out):
    # type: (dict, int, int) -> None
    """In the fork: the container's cgroup and namespaces, /dev/null and the pipe as stdio,
    then the process (as an exec's). Never returns."""
    code = 126
    try:
        init.join_cgroup(req["cgroup_procs"])
        fds = []  # all opened first: after the mount namespace, /proc is the container's
        for name in _NS:
            path = "/proc/%d/ns/%s" % (pid1, name)
            if os.readlink(path) != os.readlink("/proc/self/ns/" + name):
                fds.append(os.open(path, os.O_RDONLY))
        for fd in fds:
            sc.setns(fd, 0)
            os.close(fd)
        null = os.open("/dev/null", os.O_RDONLY)
        init.set_stdio([null, out, out])
        init.finalize_and_exec(req["process"])
    except init.StartError as e:
        code = e.code
        _say(out, str(e))
    except BaseException as e:  # noqa: B036 - never return into the monitor
        _say(out, "probe: %s" % (e,))
    os._exit(code)


def _say(fd, text):
    # type: (int, str) -> None
    try:
        os.write(fd, text.encode("utf-8", "replace")[:MAX_OUTPUT])
    except OSError:
        pass
