"""User namespaces on the child side: a user namespace with a container's uid/gid maps, made by
a short-lived helper process (only a process outside a user namespace may write its maps), and
idmapped mounts of the image layers (open_tree(2) + mount_setattr(2) + move_mount(2), kernel
5.12; overlayfs takes idmapped lower layers from 5.19) so the remapped root sees them as its own
without a copy.

The container's PID 1 builds its whole root as the host's root, then joins the user namespace
right before it drops its privileges (`enter`): the namespaces made before stay owned by the
host's root, so the remapped root holds capabilities only over its own user namespace.

A map is a list of [container id, host id, count] triples (the run spec's "userns").
"""

import ctypes
import os

from runtime.container.proc import syscalls as sc

# the generic syscall table: the same numbers on x86_64 and aarch64
_OPEN_TREE, _MOVE_MOUNT, _MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
_O_CLOEXEC = 0o2000000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


_libc = sc._libc


def _call(nr, what, *args):
    # type: (int, str, *object) -> int
    machine = os.uname().machine
    if machine not in ("x86_64", "aarch64"):
        raise OSError(38, "%s: not known on %s" % (what, machine))
    return sc._check(_libc.syscall(nr, *args), what)


def map_text(triples):
    # type: (list) -> bytes
    """The uid_map/gid_map content for [[inside, outside, count], ...]."""
    return "".join("%d %d %d\n" % tuple(t) for t in triples).encode()


def host_id(triples, inside):
    # type: (list, int) -> int
    """The host id of a container id (-1 when the map does not cover it)."""
    for start, outside, count in triples:
        if start <= inside < start + count:
            return outside + inside - start
    return -1


def container_id(triples, host):
    # type: (list, int) -> int
    """The container id of a host id (the host id itself when the map does not cover it)."""
    for inside, outside, count in triples:
        if outside <= host < outside + count:
            return inside + host - outside
    return host


class Maker(object):
    """A new user namespace, in two steps so that the helper's start overlaps the caller's other
    work: the constructor forks a child that unshares one and waits; `fd(uid_map, gid_map)`
    has this (privileged) process write its maps through the host's /proc (mounted at /proc
    when the child started) and returns an fd of it (close-on-exec); `reap()` waits for the
    child, which exits once it has its maps."""

    def __init__(self):
        # type: () -> None
        ready_r, ready_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: never returns
            code = 1
            try:
                os.close(ready_r)
                os.close(done_w)
                sc.unshare(sc.CLONE_NEWUSER)
                os.write(ready_w, os.readlink("/proc/self").encode())  # our pid as /proc knows it
                os.read(done_r, 1)
                code = 0
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(done_r)
        self.pid, self.ready_r, self.done_w = pid, ready_r, done_w

    def fd(self, uid_map, gid_map):
        # type: (list, list) -> int
        try:
            host_pid = os.read(self.ready_r, 32).decode()
            if not host_pid.isdigit():
                raise OSError(1, "the user namespace helper failed (is user.max_user_namespaces 0?)")
            base = "/proc/%s/" % host_pid
            with open(base + "uid_map", "wb") as f:
                f.write(map_text(uid_map))
            with open(base + "gid_map", "wb") as f:
                f.write(map_text(gid_map))
            return os.open(base + "ns/user", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(self.ready_r)
            os.close(self.done_w)

    def reap(self):
        # type: () -> None
        os.waitpid(self.pid, 0)


def make(uid_map, gid_map):
    # type: (list, list) -> int
    """A new user namespace with these maps (Maker in one go); returns an fd of it."""
    maker = Maker()
    try:
        return maker.fd(uid_map, gid_map)
    finally:
        maker.reap()


def idmapped_mount(src, target, userns_fd):
    # type: (str, str, int) -> None
    """A bind of src on target (an existing dir) whose owners are shifted by userns_fd's maps:
    a file the disk says is uid 0 shows as the host uid the map gives container uid 0."""
    fd = _call(_OPEN_TREE, "open_tree %s" % src, ctypes.c_int(-100), sc._b(src),
               ctypes.c_uint(OPEN_TREE_CLONE | _O_CLOEXEC))
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        _call(_MOUNT_SETATTR, "mount_setattr (idmap) %s" % src, ctypes.c_int(fd), b"",
              ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
        _call(_MOVE_MOUNT, "move_mount %s" % target, ctypes.c_int(fd), b"", ctypes.c_int(-100),
              sc._b(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    finally:
        os.close(fd)


def mount_idmapped_overlay(layers, upper, work, rootfs, base, userns_fd, extra=""):
    # type: (list, str, str, str, str, int, str) -> None
    """The container's overlay root on rootfs with each image layer (top first) idmapped: a
    tmpfs on base (in this private mount namespace) holds the idmapped binds, named 0, 1...
    so the option string stays short. extra: more options (SELinux's context=)."""
    if not os.path.isdir(base):
        os.mkdir(base, 0o700)
    sc.mount("tmpfs", base, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=700,size=16k")
    for i, layer in enumerate(layers):
        os.mkdir("%s/%d" % (base, i))
        idmapped_mount(layer, "%s/%d" % (base, i), userns_fd)
    os.chdir(base)
    try:
        sc.mount("overlay", rootfs, "overlay", 0, "lowerdir=%s,upperdir=%s,workdir=%s%s"
                 % (":".join(str(i) for i in range(len(layers))), upper, work, extra))
    finally:
        os.chdir("/")


def enter(userns_fd):
    # type: (int) -> None
    """Join the user namespace (the last namespace joined: after it this process holds no
    capability over the host's namespaces) and become its root (uid and gid 0 inside, the
    first ids of the maps outside)."""
    sc.setns(userns_fd, sc.CLONE_NEWUSER)
    os.close(userns_fd)
    os.setgroups([0])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)  # uid 0 inside: the host uid the map gives it


def probe(base):
    # type: (str) -> str
    """Whether an overlay with an idmapped lower layer mounts under base (a dir on the data
    root's filesystem): "" when it does, else the reason. Run in a process of its own (it
    unshares its mount namespace)."""
    try:
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        for d in ("lower", "upper", "work", "root", "map"):
            os.mkdir(os.path.join(base, d), 0o755)
        os.close(os.open(base + "/lower/f", os.O_CREAT | os.O_WRONLY, 0o644))
        fd = make([[0, 100000, 65536]], [[0, 100000, 65536]])
        mount_idmapped_overlay([base + "/lower"], base + "/upper", base + "/work", base + "/root",
                               base + "/map", fd)
        uid = os.stat(base + "/root/f").st_uid
        return "" if uid == 100000 else "an idmapped layer's file shows uid %d, not 100000" % uid
    except OSError as e:
        return str(e)
