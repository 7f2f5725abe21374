"""The seccomp compiler against the real kernel: each program is installed in a forked child
(no_new_privs set) that makes raw syscalls and reports their results."""

import ctypes
import errno
import os
import platform
import struct

import pytest

from runtime.container.proc import seccomp as installer
from runtime.container.proc import syscalls as sc
from runtime.container.seccomp import bpf
from runtime.container.seccomp.default_profile import PROFILE
from runtime.container.seccomp.syscalls import TABLES

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="numbers below are x86_64's")
NR = TABLES["x86_64"]
DEFAULT_CAPS = {"CAP_" + c for c in ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
                                     "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
                                     "SYS_CHROOT", "KILL", "AUDIT_WRITE")}


def under_filter(program, calls):
    """Run calls [(nr, args...)] under program in a child; [(ret, errno name)] or a signal."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            installer.install(program)
            out = []
            for call in calls:
                ret = libc.syscall(*[ctypes.c_long(a) for a in call])
                out.append("%d:%s" % (ret, errno.errorcode.get(ctypes.get_errno(), "") if ret < 0 else ""))
                os.write(w, (" ".join(out[-1:]) + "\n").encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    lines = data.decode().split()
    return lines, (os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)


def test_default_profile_arguments_and_errnos():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS)
    res, sig = under_filter(prog, [
        (NR["getppid"],),
        (NR["personality"], 0xFFFFFFFF),          # query: allowed
        (NR["personality"], 0x0400000),           # ADDR_COMPAT_LAYOUT: not in the list
        (NR["socket"], 40, 1, 0),                 # AF_VSOCK: refused
        (NR["socket"], 38, 5, 0),                 # AF_ALG: refused
        (NR["unshare"], 0x10000000),              # needs CAP_SYS_ADMIN in the profile
        (NR["clone3"], 0, 0),                     # ENOSYS, so libc falls back to clone
        (NR["keyctl"], 0, 0),
        (NR["bpf"], 0, 0, 0),
        (NR["reboot"], 0, 0, 0, 0),
    ])
    assert sig is None
    assert res[0].endswith(":") and int(res[0].split(":")[0]) > 0
    assert not res[1].endswith("EPERM")
    assert res[2:] == ["-1:EPERM", "-1:EPERM", "-1:EPERM", "-1:EPERM", "-1:ENOSYS", "-1:EPERM",
                       "-1:EPERM", "-1:EPERM"]


def test_capability_dependent_rules_follow_the_caps():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS | {"CAP_SYS_ADMIN"})
    res, _ = under_filter(prog, [(NR["clone3"], 0, 0), (NR["keyctl"], 0, 0)])
    assert res[0] != "-1:ENOSYS"  # reaches the kernel (EINVAL/EFAULT for our bogus args)
    assert res[1] == "-1:EPERM"  # keyctl is refused whatever the capabilities


def test_x32_syscalls_kill_the_process():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS)
    res, sig = under_filter(prog, [(NR["getpid"] | bpf.X32_SYSCALL_BIT,), (NR["getpid"],)])
    assert sig == 31 and res == []  # SIGSYS before anything ran


@pytest.mark.parametrize("op, value, allowed", [
    ("SCMP_CMP_EQ", 5, [5]), ("SCMP_CMP_NE", 5, [0, 4, 6, 1 << 32, (1 << 32) + 1, 1 << 33]),
    ("SCMP_CMP_LT", 5, [0, 4]), ("SCMP_CMP_LE", 5, [0, 4, 5]),
    ("SCMP_CMP_GT", 5, [6, 1 << 32, (1 << 32) + 1, 1 << 33]),
    ("SCMP_CMP_GE", 5, [5, 6, 1 << 32, (1 << 32) + 1, 1 << 33]),
    ("SCMP_CMP_GT", 1 << 32, [(1 << 32) + 1, 1 << 33]), ("SCMP_CMP_LE", 1 << 32, [0, 4, 5, 6, 1 << 32]),
])
def test_64_bit_argument_comparisons(op, value, allowed):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": [
            {"index": 0, "value": value, "op": op}]}]}
    probes = [0, 4, 5, 6, 1 << 32, (1 << 32) + 1, 1 << 33]
    res, _ = under_filter(bpf.compile_profile(profile, set()), [(NR["getpgid"], p) for p in probes])
    matched = [p for p, r in zip(probes, res) if r == "-1:EDOM"]  # the rule's errno 33
    assert matched == allowed


def test_masked_eq_and_repeated_index_is_or():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0xF0, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["getsid"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
        {"names": ["exit_group", "exit", "write"], "action": "SCMP_ACT_ALLOW"}]}
    prog = bpf.compile_profile(profile, set())
    res, _ = under_filter(prog, [(NR["getpgid"], 0x1F), (NR["getpgid"], 0x2F),
                                 (NR["getsid"], 1), (NR["getsid"], 2), (NR["getsid"], 3)])
    assert [r.endswith("EPERM") for r in res] == [False, True, False, True, False]


def test_bad_profiles_say_what_is_wrong():
    for profile, words in (({"defaultAction": "SCMP_ACT_NOPE"}, "SCMP_ACT_NOPE"),
                           ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                               {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, "0-5"),
                           ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                               {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}, "SCMP_CMP_XX")):
        with pytest.raises(bpf.ProfileError) as e:
            bpf.compile_profile(profile, set())
        assert words in str(e.value)


def test_aarch64_program_compiles_with_its_own_numbers():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS, arch="aarch64")
    assert len(prog) % 8 == 0 and len(prog) // 8 < bpf.MAX_INSNS
    # the arch check compares against AUDIT_ARCH_AARCH64 only (no i386 on arm)
    assert (0xC00000B7).to_bytes(4, "little") in prog and (0x40000003).to_bytes(4, "little") not in prog


def _int80(nr, arg):
    """An i386 system call from this 64-bit process (int $0x80: audit arch i386, the i386
    numbers): push rbx; mov ebx, arg; mov eax, nr; int 0x80; pop rbx; ret."""
    import mmap
    code = (b"\x53\xbb" + struct.pack("<I", arg) + b"\xb8" + struct.pack("<I", nr) + b"\xcd\x80\x5b\xc3")
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    return ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()


def test_i386_calls_are_filtered_by_their_own_numbers():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS)
    i386 = TABLES["i386"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            installer.install(prog)
            got = [_int80(i386["getpid"], 0) == os.getpid(), _int80(i386["unshare"], 0x10000000),
                   _int80(i386["keyctl"], 0)]
            os.write(w, repr(got).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 200)
    os.close(r)
    os.waitpid(pid, 0)
    assert data == repr([True, -errno.EPERM, -errno.EPERM]).encode()


def test_clone_with_namespace_flags_is_refused_without_sys_admin():
    prog = bpf.compile_profile(PROFILE, DEFAULT_CAPS)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            installer.install(prog)
            out = []
            for flags in (0x04000000 | 17, 17):  # CLONE_NEWUTS|SIGCHLD, then a plain fork's SIGCHLD
                ret = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(flags), None, None, None, None)
                if ret == 0:
                    os._exit(0)  # the new child
                out.append(-ctypes.get_errno() if ret < 0 else "child")
                if ret > 0:
                    os.waitpid(ret, 0)
            os.write(w, repr(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 200)
    os.close(r)
    os.waitpid(pid, 0)
    assert data == repr([-errno.EPERM, "child"]).encode()
