"""Install a compiled seccomp filter (runtime/container/seccomp/bpf.py builds it in berthd) on
the calling thread: prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER), which kernel 3.10 has.

The kernel accepts it only with no_new_privs set or CAP_SYS_ADMIN held: init installs it right
before the exec when the process has no_new_privs, else before it drops its capabilities (as
runc does)."""

import binascii
import ctypes

from runtime.container.proc import syscalls as sc

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    # the program's bytes are pointed to as they are: a copy (create_string_buffer) would create
    # a ctypes array type in each freshly forked PID 1, ~0.17 ms of a start
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install(program):
    # type: (bytes) -> None
    """Load the sock_filter array (8 bytes an instruction) as this thread's filter."""
    prog = _SockFprog(len(program) // 8, program)
    sc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def install_b64(text):
    # type: (str) -> None
    """install() of the base64 text the run spec carries."""
    install(binascii.a2b_base64(text))
