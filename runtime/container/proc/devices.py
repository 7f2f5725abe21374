"""The container's device rules on its cgroup (the monitor, before PID 1 may exec) and its
--device nodes in its root (PID 1, before pivot_root). The rules come from berthd
(runtime/container/devices.py): v1 `devices.deny`/`devices.allow` lines, or on cgroup v2 an
eBPF program that this loads with bpf(2) and attaches to the cgroup directory."""

import binascii
import ctypes
import os
import stat
import struct

from runtime.container.proc import syscalls as sc

_SYS_bpf = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351}.get(os.uname().machine, 321)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def _bpf(cmd, attr):
    # type: (int, ctypes.Array) -> int
    ret = sc._libc.syscall(ctypes.c_long(_SYS_bpf), ctypes.c_long(cmd),
                           ctypes.c_void_p(ctypes.addressof(attr)), ctypes.c_long(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "bpf: %s" % os.strerror(err))
    return ret


def load_program(program):
    # type: (bytes) -> int
    """BPF_PROG_LOAD of a cgroup device program; its fd. A refusal is retried with the
    verifier's log, whose last line goes into the error."""
    insns = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(1 << 16)
    for level in (0, 1):
        attr = ctypes.create_string_buffer(struct.pack(
            "<IIQQIIQII", BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8, ctypes.addressof(insns),
            ctypes.addressof(license), level, len(log) if level else 0,
            ctypes.addressof(log) if level else 0, 0, 0), 48)
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            if level:
                detail = log.value.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                raise OSError(e.errno, "loading the device program: %s %s"
                              % (e.strerror, detail[0])) from None
    raise AssertionError("unreachable")


def attach_fd(cgroup_dir, prog_fd):
    # type: (str, int) -> None
    """Attach a loaded program to the cgroup v2 directory (BPF_F_ALLOW_MULTI, so a program the
    parent holds keeps applying too); the attachment keeps it alive."""
    dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        attr = ctypes.create_string_buffer(struct.pack(
            "<IIII", dir_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), 16)
        _bpf(BPF_PROG_ATTACH, attr)
    finally:
        os.close(dir_fd)


def attach(cgroup_dir, program):
    # type: (str, bytes) -> None
    """attach_fd of program: the one preloaded for it, or loaded now (verifier and JIT, ~0.7 ms
    here) and closed once attached."""
    fd = _preloaded.get(program)
    if fd is not None:
        attach_fd(cgroup_dir, fd)
        return
    fd = load_program(program)
    try:
        attach_fd(cgroup_dir, fd)
    finally:
        os.close(fd)


_preloaded = {}  # type: dict


def preload_default():
    # type: () -> None
    """On a cgroup v2 host, load the program of Docker's default device list now (in the
    forkserver: every monitor forked from it inherits the fd, close-on-exec, and only attaches
    it). Best effort: a monitor loads what it does not find here."""
    from runtime.container.proc import cgroups, devices_bpf
    if cgroups.detect_version() != 2:
        return
    program = devices_bpf.compile_rules(tuple(cgroups.DEVICE_RULES))
    try:
        _preloaded[program] = load_program(program)
    except OSError:
        pass


def apply(cg, devices):
    # type: (object, dict) -> None
    """The run spec's "devices" on the container's cgroup manager cg (made already)."""
    if devices.get("rules") is None:
        return  # privileged: what the parent allows
    if getattr(cg, "version", 1) == 2:
        if devices.get("bpf"):
            attach(cg.path, binascii.a2b_base64(devices["bpf"]))
        return
    path = getattr(cg, "paths", {}).get("devices")
    if not path:
        return
    _write(path + "/devices.deny", "a")
    for rule in devices["rules"]:
        _write(path + "/devices.allow", rule)


def _write(path, value):
    # type: (str, str) -> None
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def make_nodes(rootfs, nodes, join):
    # type: (str, list, object) -> None
    """--device nodes at their paths under rootfs (join: rootfs.secure_join), with the host
    node's type, numbers, mode and owner."""
    for n in nodes:
        target = join(rootfs, n["path"])
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        if os.path.lexists(target):
            os.unlink(target)
        kind = stat.S_IFCHR if n["type"] == "c" else stat.S_IFBLK
        os.mknod(target, kind | n["mode"], os.makedev(n["major"], n["minor"]))
        os.chmod(target, n["mode"])
        os.chown(target, n["uid"], n["gid"])
