"""The Linux system calls Python 3.6's os module lacks, through ctypes: unshare, setns, mount,
umount2, pivot_root, sethostname, capset, prctl, eventfd.

Every wrapper raises OSError(errno, "<call> <what>: <strerror>") so a failure names the call.
"""

import ctypes
import os


def _load_libc():
    # type: () -> ctypes.CDLL
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        # not glibc; ctypes.util drags in subprocess and threading, which make every fork of
        # the forkserver slower (at-fork handlers), so it is only the fallback
        from ctypes.util import find_library
        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_UNBINDABLE = 1 << 17
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_SYS_pivot_root = _PIVOT_ROOT.get(os.uname().machine, 155)

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
# prctl with a string argument (PR_SET_NAME): a bytes object passed as is. A buffer made per
# call (create_string_buffer) creates a ctypes array type in each freshly forked process: ~0.2 ms
# of a start on the machine's python, ~0.3 ms on 3.6.
_prctl_str = _libc["prctl"]
_prctl_str.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(ret, what):
    # type: (int, str) -> int
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return ret


def _b(s):
    # type: (object) -> bytes
    if s is None:
        return None  # type: ignore
    return s if isinstance(s, bytes) else str(s).encode()


def unshare(flags):
    # type: (int) -> None
    """Move the caller into new namespaces (CLONE_NEW* flags)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd, nstype=0):
    # type: (int, int) -> None
    """Join the namespace open at fd."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source, target, fstype=None, flags=0, data=None):
    # type: (str, str, str, int, str) -> None
    """mount(2)."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(ret, "mount %s on %s" % (fstype or source, target))


def umount2(target, flags=0):
    # type: (str, int) -> None
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), "umount %s" % target)


def pivot_root(new_root, put_old):
    # type: (str, str) -> None
    """pivot_root(2), which has no libc wrapper."""
    ret = _libc.syscall(_SYS_pivot_root, _b(new_root), _b(put_old))
    _check(ret, "pivot_root %s" % new_root)


def sethostname(name):
    # type: (str) -> None
    """sethostname(2) in the caller's UTS namespace."""
    raw = _b(name)
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name):
    # type: (str) -> None
    """setdomainname(2) in the caller's UTS namespace."""
    raw = _b(name)
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]


_RLIM_INFINITY = ctypes.c_ulong(-1).value


def setrlimit(resource, soft, hard):
    # type: (int, int, int) -> None
    """setrlimit(2) (-1 = unlimited); the resource module is not loaded in the forkserver."""
    lim = _Rlimit(_RLIM_INFINITY if soft < 0 else soft, _RLIM_INFINITY if hard < 0 else hard)
    _check(_libc.setrlimit(resource, ctypes.byref(lim)), "setrlimit %d" % resource)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    # type: (int, int, int, int, int) -> int
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl %d" % option)


PR_SET_NAME = 15


def set_name(name):
    # type: (str) -> None
    """The calling thread's comm (what ps -o comm and top show), at most 15 bytes."""
    _prctl_str(PR_SET_NAME, _b(name)[:15], 0, 0, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective, permitted, inheritable):
    # type: (int, int, int) -> None
    """capset(2) for the calling thread, with 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


_cap_last = []  # type: list


def cap_last_cap():
    # type: () -> int
    """The highest capability number this kernel knows (read once: the forkserver reads it for
    the processes it forks, where the read is ~0.3 ms of each start)."""
    if not _cap_last:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _cap_last.append(int(f.read()))
        except (OSError, ValueError):
            return 37
    return _cap_last[0]


def eventfd(initval=0, flags=0):
    # type: (int, int) -> int
    """eventfd(2) (os.eventfd is 3.10+)."""
    return _check(_libc.eventfd(initval, flags), "eventfd")
