"""The container's filesystem, built inside its new mount namespace (child side, runc's
prepareRootfs/pivotRoot/maskPaths): overlay root (or the vfs driver's bound copy), /proc,
read-only /sys, a minimal /dev, volumes and bind mounts, masked and read-only kernel paths,
then pivot_root.

Nothing here is visible on the host: every mount lives in the container's namespace and goes
away with it.
"""

import os
import shutil
import stat

from runtime.container.proc import devices, userns
from runtime.container.proc import syscalls as sc

MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
            ("tty", 5, 0))
_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
          ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"))

_NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def secure_join(root, path):
    # type: (str, str) -> str
    """root + path with every symlink on the way resolved as if root were /, so an image's
    symlink can never send a mount outside the container's root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved = []  # type: list
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        cur = root + "/" + "/".join(resolved + [part])
        if os.path.islink(cur):
            hops += 1
            if hops > 40:
                raise OSError(40, "too many symlinks resolving %s" % path)
            target = os.readlink(cur)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root + "/" + "/".join(resolved)


def _mkdir_p(path):
    # type: (str) -> None
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)


def touch(path):
    # type: (str) -> None
    """Create path as an empty file (and its parent dirs) unless it exists: a bind target."""
    if not os.path.exists(path):
        _mkdir_p(os.path.dirname(path))
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


def copy_tree(src, dst):
    # type: (str, str) -> None
    """Copy src's content into the existing dir dst keeping modes, owners and symlinks
    (Docker's copy-up of image content into a new empty volume)."""
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        st = os.lstat(s)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(d, stat.S_IMODE(st.st_mode))
            copy_tree(s, d)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(s, d)
        else:
            continue
        os.lchown(d, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(d, stat.S_IMODE(st.st_mode))
    dst_st = os.stat(src)
    os.chown(dst, dst_st.st_uid, dst_st.st_gid)
    os.chmod(dst, stat.S_IMODE(dst_st.st_mode))


def mount_overlay(spec, rootfs, userns_fd=-1):
    # type: (dict, str, int) -> None
    """The root: overlay of the image layers and the container's upper dir, on rootfs; with
    the vfs storage driver, a bind of the container's full copy instead; for a remapped root
    whose layers are shown through idmapped mounts, those (userns_fd: its user namespace)."""
    remap = spec.get("userns") or {}
    if remap.get("idmap_layers"):
        userns.mount_idmapped_overlay(remap["idmap_layers"], remap["upper"], remap["work"], rootfs,
                                      remap["idmap_base"], userns_fd, _labelled("", spec.get("mount_label")))
        return
    if spec.get("vfs_root"):
        sc.mount(spec["vfs_root"], rootfs, None, sc.MS_BIND | sc.MS_REC)
        return
    cwd = spec.get("overlay_cwd")
    if cwd:  # layer paths in the options are relative to this dir (page-size limit)
        os.chdir(cwd)
    sc.mount("overlay", rootfs, "overlay", 0, _labelled(spec["overlay_opts"], spec.get("mount_label")))
    if cwd:
        os.chdir("/")


def _labelled(options, label):
    # type: (str, str) -> str
    """Mount options with SELinux's context="label" added when there is a label (quoted: its
    level holds a comma)."""
    return options + ',context="%s"' % label if label else options


def mount_dev(rootfs, shm_size=0, owner=None, label=None):
    # type: (str, int, tuple, str) -> None
    """tmpfs /dev with the usual nodes, devpts (newinstance), shm, mqueue and the /proc links.
    owner: the host (uid, gid, tty gid) of a remapped root, who then owns /dev; label: the
    container's SELinux mount label."""
    dev = rootfs + "/dev"
    _mkdir_p(dev)
    ids = ",uid=%d,gid=%d" % owner[:2] if owner else ""
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
             _labelled("mode=755,size=65536k" + ids, label))
    old = os.umask(0)
    try:
        for name, major, minor in _DEVICES:
            os.mknod(dev + "/" + name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for name, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)):
            os.mkdir(dev + "/" + name, mode)
    finally:
        os.umask(old)
    sc.mount("devpts", dev + "/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             _labelled("newinstance,ptmxmode=0666,mode=0620,gid=%d" % (owner[2] if owner else 5), label))
    sc.mount("shm", dev + "/shm", "tmpfs", _NOSUID_NODEV_NOEXEC,
             _labelled("mode=1777,size=%d" % (shm_size or 64 << 20), label))
    sc.mount("mqueue", dev + "/mqueue", "mqueue", _NOSUID_NODEV_NOEXEC)
    for name, target in _LINKS:
        os.symlink(target, dev + "/" + name)


def mount_proc_sys(rootfs, own_netns):
    # type: (str, bool) -> None
    """/proc for the new PID namespace and a read-only /sys."""
    _mkdir_p(rootfs + "/proc")
    sc.mount("proc", rootfs + "/proc", "proc", _NOSUID_NODEV_NOEXEC)
    mount_sys(rootfs, own_netns)


def mount_sys(rootfs, own_netns):
    # type: (str, bool) -> None
    """A read-only /sys: the sysfs of this network namespace, or the host's bound."""
    _mkdir_p(rootfs + "/sys")
    flags = _NOSUID_NODEV_NOEXEC | sc.MS_RDONLY
    try:
        sc.mount("sysfs", rootfs + "/sys", "sysfs", flags)
    except OSError:
        if own_netns:
            raise
        # sysfs of a shared network namespace may be refused: bind the host's, read-only
        sc.mount("/sys", rootfs + "/sys", None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, rootfs + "/sys", None, sc.MS_BIND | sc.MS_REMOUNT | flags)


def mount_user(rootfs, mounts, label=None):
    # type: (str, list, str) -> None
    """Volumes, bind and tmpfs mounts: {"type", "source", "target", "ro", "copy_up"} in order;
    label: the SELinux mount label tmpfs mounts get."""
    for m in mounts:
        target = secure_join(rootfs, m["target"])
        src = m["source"]
        if m.get("type") == "tmpfs":
            _mkdir_p(target)
            flags = sc.MS_NOSUID | sc.MS_NODEV | (sc.MS_RDONLY if m.get("ro") else 0)
            sc.mount("tmpfs", target, "tmpfs", flags, _labelled(m.get("options") or "mode=1777", label))
            continue
        if m.get("copy_up") and os.path.isdir(target) and not os.listdir(src):
            copy_tree(target, src)
        if os.path.isdir(src):
            _mkdir_p(target)
        else:
            touch(target)
        rec = 0 if m.get("non_recursive") else sc.MS_REC
        sc.mount(src, target, None, sc.MS_BIND | rec)
        if m.get("ro"):
            ro_rec = 0 if m.get("ro_non_recursive") else rec
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | ro_rec)
        prop = _PROPAGATION.get(m.get("propagation") or "")
        if prop:
            sc.mount(None, target, None, prop)


_PROPAGATION = {"private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC, "slave": sc.MS_SLAVE,
                "rslave": sc.MS_SLAVE | sc.MS_REC}


def mask_paths(rootfs, only="/", masked=None, readonly=None):
    # type: (str, str, list, list) -> None
    """Hide kernel paths behind /dev/null or an empty read-only tmpfs; make others read-only
    (only those under `only`). masked, readonly: HostConfig.MaskedPaths and ReadonlyPaths
    (None: Docker's defaults)."""
    for p in MASKED_PATHS if masked is None else masked:
        if not p.startswith(only):
            continue
        path = rootfs + p
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(path):
            sc.mount(rootfs + "/dev/null", path, None, sc.MS_BIND)
    for p in READONLY_PATHS if readonly is None else readonly:
        if not p.startswith(only):
            continue
        path = rootfs + p
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def pivot(rootfs):
    # type: (str) -> None
    """Make rootfs the root and detach the old one (the pivot_root(".", ".") idiom)."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


STAGED = ("proc", "sys", "dev")
DEFAULT_SHM = 64 << 20


def stage(base):
    # type: (str) -> None
    """In a PID 1 waiting for its spec (init.prepared_main), in its own mount, PID and network
    namespaces: a private tmpfs on base holding the parts of a root that do not depend on the
    container, `proc/` (masked), `sys/` (masked), `dev/`, and an empty `root/` for the overlay.
    build(spec, staged=base) then moves them into the root: ~25 mounts off the start path."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("tmpfs", base, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=755,size=64k")
    try:
        os.mkdir(base + "/root", 0o755)
        mount_proc_sys(base, True)
        mount_dev(base)
        mask_paths(base)
    except BaseException:
        sc.umount2(base, sc.MNT_DETACH)
        raise


def _move_staged(staged, rootfs, spec):
    # type: (str, str, dict) -> None
    """The staged /proc, /sys and /dev into the container's root, adjusted to its spec."""
    for name in STAGED:
        _mkdir_p(rootfs + "/" + name)
        sc.mount(staged + "/" + name, rootfs + "/" + name, None, sc.MS_MOVE)
    if not spec.get("own_netns", True):  # that sysfs shows the new network namespace
        sc.umount2(rootfs + "/sys", sc.MNT_DETACH)
        mount_sys(rootfs, False)
        mask_paths(rootfs, "/sys")
    shm = spec.get("shm_size") or 0
    if shm and shm != DEFAULT_SHM:
        sc.mount(None, rootfs + "/dev/shm", None, sc.MS_REMOUNT | _NOSUID_NODEV_NOEXEC,
                 "mode=1777,size=%d" % shm)


def remap_owner(spec):
    # type: (dict) -> tuple
    """(uid, gid, tty gid) on the host of a remapped root's 0, 0 and 5; None without a remap."""
    remap = spec.get("userns")
    if not remap:
        return None
    return (userns.host_id(remap["uid_map"], 0), userns.host_id(remap["gid_map"], 0),
            userns.host_id(remap["gid_map"], 5))


def build(spec, staged=None, userns_fd=-1):
    # type: (dict, str, int) -> None
    """The whole filesystem setup, in the new mount namespace, ending at the new root. staged:
    where stage() left /proc, /sys and /dev (the root is then mounted on staged/root);
    userns_fd: the user namespace of a remapped root (never with staged)."""
    if staged:
        rootfs = staged + "/root"
        mount_overlay(spec, rootfs)
        _move_staged(staged, rootfs, spec)
    else:  # rslave when a bind asks for slave propagation from the host
        sc.mount(None, "/", None, sc.MS_REC | (sc.MS_SLAVE if spec.get("root_slave") else sc.MS_PRIVATE))
        rootfs = spec["rootfs"]
        mount_overlay(spec, rootfs, userns_fd)
        mount_proc_sys(rootfs, spec.get("own_netns", True))
        mount_dev(rootfs, spec.get("shm_size") or 0, remap_owner(spec), spec.get("mount_label"))
    for name, path in (("hostname", "/etc/hostname"), ("hosts", "/etc/hosts"),
                       ("resolv.conf", "/etc/resolv.conf")):
        src = os.path.join(spec["state_dir"], name)
        if os.path.exists(src) and os.path.isdir(rootfs + "/etc"):
            target = secure_join(rootfs, path)
            touch(target)
            sc.mount(src, target, None, sc.MS_BIND)
    if (spec.get("devices") or {}).get("nodes"):
        devices.make_nodes(rootfs, spec["devices"]["nodes"], secure_join)
    mount_user(rootfs, spec.get("mounts") or [], spec.get("mount_label"))
    if not staged:
        mask_paths(rootfs, "/", spec.get("masked_paths"), spec.get("readonly_paths"))
    pivot(rootfs)
    if spec.get("readonly_rootfs"):
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
