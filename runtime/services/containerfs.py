"""The container service's file-level operations: archive (docker cp), export, changes (docker
diff), and the size of a writable layer (prune, system df). A helper of ContainerService
(runtime/services/containers.py), like commit.py."""

import contextlib
import os
import stat

from runtime import TYPE_CHECKING
from runtime.container import archive
from runtime.errors import Forbidden, InvalidParameter

if TYPE_CHECKING:
    from typing import Any, Callable, List  # noqa: F401

MODIFIED, ADDED, DELETED = 0, 1, 2


@contextlib.contextmanager
def _locked_root(c, writable=False, live=True):
    """archive.root_of, under c.lock unless the container runs (then it is reached through
    /proc and a start cannot race a mount of its layers)."""
    if live and c.alive_pid():
        with archive.root_of(c, writable, live) as root:
            yield root
        return
    with c.lock, archive.root_of(c, writable, live) as root:
        yield root


def path_stat(c, path):
    # type: (Any, str) -> dict
    """ContainerPathStat of path in container c."""
    if not path:
        raise InvalidParameter("path is required: pass path=")
    with _locked_root(c) as root:
        return archive.stat(root, path, c.id)


def get(c, path):
    # type: (Any, str) -> tuple
    """(ContainerPathStat, write(out)) for `GET /archive`: the stat is checked now, the tar is
    written when the route has sent its headers."""
    info = path_stat(c, path)

    def write(out):
        with _locked_root(c) as root:
            archive.write_tar(root, path, out, c.cfg.get("Userns"))
    return info, write


def put(c, path, stream, no_overwrite_dir_non_dir=False):
    # type: (Any, str, Any, bool) -> None
    """`PUT /archive`: extract the tar stream into directory path."""
    if not path:
        raise InvalidParameter("path is required: pass path=")
    target = archive.container_path(path)
    for m in c.cfg.get("Mounts") or []:
        dest = m.get("Destination") or ""
        if not m.get("RW", True) and (target == dest or target.startswith(dest.rstrip("/") + "/")):
            raise Forbidden("mounted volume is marked read-only")
    if c.cfg["HostConfig"].get("ReadonlyRootfs"):
        raise Forbidden("container rootfs is marked read-only")
    with _locked_root(c, writable=True) as root:
        archive.extract(root, path, stream, c.id, no_overwrite_dir_non_dir, c.cfg.get("Userns"))


def export(c):
    # type: (Any) -> Callable
    """write(out) for `GET /export`: the container's own root (no volumes: the overlay, read
    only, also while it runs, as dockerd exports the rootfs layer stack)."""
    def write(out):
        with _locked_root(c, live=False) as root:
            archive.export_tar(root, out, c.cfg.get("Userns"))
    return write


def _is_whiteout(info):
    # type: (os.stat_result) -> bool
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def mount_points(upper):
    # type: (str) -> tuple
    """Paths the runtime created in the upper dir only as mount points (empty files for the
    /etc/hosts-style bind mounts, empty dirs for /proc, /sys, /dev): left out of a commit and
    of `changes`, as Docker keeps them in its init layer, below the container's own."""
    out = []
    for rel in ("etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "sys", "dev", ".dockerenv"):
        p = os.path.join(upper, rel)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if (stat.S_ISREG(st.st_mode) and st.st_size == 0) or (stat.S_ISDIR(st.st_mode)
                                                               and not os.listdir(p)):
            out.append(rel)
    return tuple(out)


def changes(c):
    # type: (Any) -> List[dict]
    """`GET /changes`: [{"Path", "Kind"}] of the writable layer, Kind 0 modified, 1 added,
    2 deleted, sorted by path (dockerd's order)."""
    if c.cfg.get("Driver") == "vfs":
        raise InvalidParameter("docker diff needs the overlay2 driver: the vfs driver keeps no "
                               "separate writable layer")
    upper = c.file("upper")
    lowers = list(reversed(c.cfg.get("LayerDirs") or []))
    skip = {"/" + rel for rel in mount_points(upper)}
    out = []
    for top, dirs, files in os.walk(upper):
        rel_dir = os.path.relpath(top, upper)
        for name in sorted(dirs + files):
            host = os.path.join(top, name)
            rel = "/" + os.path.normpath(os.path.join(rel_dir, name))
            try:
                info = os.lstat(host)
            except OSError:
                continue
            if rel in skip:
                continue
            if _is_whiteout(info):
                out.append({"Path": rel, "Kind": DELETED})
                continue
            below = any(os.path.lexists(os.path.join(d, rel[1:])) for d in lowers)
            out.append({"Path": rel, "Kind": MODIFIED if below else ADDED})
    out.sort(key=lambda ch: ch["Path"])
    # a directory copied up only to hold those mount points (/etc for /etc/hosts) is no change
    kept = [ch for ch in out if not (ch["Kind"] == MODIFIED and _holds_only(ch["Path"], skip, out, upper))]
    return kept


def _holds_only(path, skip, changes, upper):
    # type: (str, set, List[dict], str) -> bool
    """Whether the upper dir's `path` is a directory with nothing but mount points under it."""
    if not any(s.startswith(path + "/") for s in skip):
        return False
    if not os.path.isdir(os.path.join(upper, path[1:])) or os.path.islink(os.path.join(upper, path[1:])):
        return False
    return not any(ch["Path"].startswith(path + "/") for ch in changes)


def layer_size(c):
    # type: (Any) -> int
    """Bytes in the writable layer (SizeRw)."""
    top = c.file("rootfs" if c.cfg.get("Driver") == "vfs" else "upper")
    total = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
