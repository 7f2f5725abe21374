"""Stdio plumbing shared by the monitor and the exec helper: pipes or a pty for the child,
and exit-status decoding (the log writers are in runtime/container/proc/logfile.py)."""

import fcntl
import os
import struct
import termios

from runtime.container.proc.wire import recv_fd
from runtime.framing import STDERR, STDOUT



class Stdio(object):
    """The parent's ends of a child's stdio: `readers` fd -> stream, `stdin_w`, `master` (tty)."""

    def __init__(self, tty, open_stdin, size=None):
        # type: (bool, bool, list) -> None
        """With a TTY the child opens the pty itself, in the container's devpts, and the
        master arrives later through adopt_master()."""
        self.tty = tty
        self.master = -1
        self.stdin_w = -1
        self.size = size
        if tty:
            self.child = []  # type: list
            self.readers = {}  # type: dict
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if open_stdin:
                in_r, self.stdin_w = os.pipe()
            else:
                in_r = os.open("/dev/null", os.O_RDONLY)
            self.child = [in_r, out_w, err_w]
            self.readers = {out_r: STDOUT, err_r: STDERR}

    def adopt_master(self, fd):
        # type: (int) -> None
        self.master = self.stdin_w = fd
        self.readers = {fd: STDOUT}
        if self.size:
            resize(fd, self.size[0], self.size[1])

    def close_child_ends(self):
        # type: () -> None
        for fd in set(self.child):
            os.close(fd)
        self.child = []

    def read(self, fd):
        # type: (int) -> bytes
        """A chunk from fd; b"" (and fd dropped) at EOF, including the pty's EIO."""
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            del self.readers[fd]
            if fd != self.master:
                os.close(fd)
        return data

    def write_stdin(self, data):
        # type: (bytes) -> None
        if self.stdin_w >= 0:
            try:
                os.write(self.stdin_w, data)
            except OSError:
                pass

    def close_stdin(self):
        # type: () -> None
        if self.tty:
            if self.master >= 0:
                try:
                    os.write(self.master, b"\x04")  # EOF for the line discipline
                except OSError:
                    pass
            return
        if self.stdin_w >= 0:
            os.close(self.stdin_w)
            self.stdin_w = -1


# what a container's PID 1 writes on the sync pipe once only the execve is left (runtime/
# container/proc/init.py exec_); never part of an error text
EXEC_MARK = b"\x00"


def await_exec(io, sync_r, pty_sock=None, pty_child_sock=None, early=False):
    # type: (Stdio, int, object, object, bool) -> bytes
    """The parent's side of starting a process (a container's PID 1 or an exec): adopt the pty
    master the child sends back when it has a TTY, then read the child's setup errors from the
    sync pipe until the child execs (the pipe is close-on-exec). b"" means the exec happened;
    with early, that every check passed and only the execve is left (EXEC_MARK), as runc's
    start returns before its init's execve (the kernel takes ~1 ms to replace a forked
    interpreter's address space): the child writes nothing more there."""
    if pty_sock is not None:
        pty_child_sock.close()
        master = recv_fd(pty_sock)
        if master >= 0:
            io.adopt_master(master)
        pty_sock.close()
    err = b""
    while True:
        chunk = os.read(sync_r, 4096)
        if not chunk:
            return err
        err += chunk
        if early and err.startswith(EXEC_MARK):  # (what follows is the execve's failure, if any)
            return b""


def resize(fd, height, width):
    # type: (int, int, int) -> None
    """TIOCSWINSZ on a pty."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(height), int(width), 0, 0))


def exit_code(status):
    # type: (int) -> int
    """Docker's exit code from a wait status: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
