"""Network namespaces from the daemon's threads.

A network namespace belongs to a thread, and a socket to the namespace it was made in. So the
daemon makes a namespace, or a netlink socket inside one, by switching one thread there and back
(setns is allowed for network namespaces in a threaded process); no helper process is forked."""

import os
import socket
import threading

from runtime.container.proc import syscalls as sc

_GETTID = {"x86_64": 186, "aarch64": 178, "ppc64le": 207, "s390x": 236}.get(os.uname().machine)


def _self_ns():
    # /proc/thread-self is 3.17+: CentOS 7's 3.10 has only /proc/self/task/TID
    if threading.current_thread() is threading.main_thread():
        return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    tid = sc._libc.syscall(_GETTID)
    return os.open("/proc/self/task/%d/ns/net" % tid, os.O_RDONLY | os.O_CLOEXEC)


class _Inside(object):
    """with _Inside(fd): this thread is in namespace fd, and back in its own afterwards."""

    def __init__(self, fd):
        self.fd = fd
        self.home = None

    def __enter__(self):
        self.home = _self_ns()
        try:
            if self.fd is None:
                sc.unshare(sc.CLONE_NEWNET)
            else:
                sc.setns(self.fd, sc.CLONE_NEWNET)
        except BaseException:
            os.close(self.home)
            raise
        return self

    def __exit__(self, *exc):
        try:
            sc.setns(self.home, sc.CLONE_NEWNET)
        finally:
            os.close(self.home)


def create():
    """A new network namespace (lo up), as an fd; it lives while the fd or a process holds it."""
    with _Inside(None):
        fd = _self_ns()
        _lo_up()
    return fd


def open_pid(pid):
    """An fd of process pid's network namespace."""
    return os.open("/proc/%d/ns/net" % pid, os.O_RDONLY | os.O_CLOEXEC)


def socket_in(fd, family, kind, proto=0):
    """A socket made inside namespace fd."""
    with _Inside(fd):
        return socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)


def run_in(fd, fn, *args, **kwargs):
    """fn(*args, **kwargs) with this thread inside namespace fd (for work that opens its own
    sockets, links or processes there)."""
    with _Inside(fd):
        return fn(*args, **kwargs)


def same(fd_a, fd_b):
    """Whether two namespace fds refer to one namespace."""
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _lo_up():
    import fcntl
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS
    finally:
        s.close()
