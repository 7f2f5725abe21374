"""`docker cp` on berthd's side (`/containers/{id}/archive`, and `/export`): paths inside a
container's root resolved the way a process in it would see them, with symlinks and `..`
kept inside that root (moby's FollowSymlinkInScope), then tarred out or extracted in.

A running container is reached through /proc/PID/root (its mounts and volumes included); a
stopped one through its overlay, mounted for the call (read-only unless written to) while the
container's lock keeps a start out, or its vfs root.
"""

import contextlib
import errno
import os
import posixpath
import shutil
import stat as st
import tarfile
import tempfile

from runtime.errors import Forbidden, InvalidParameter, NotFound, SystemFailure
from runtime.container.proc import syscalls as sc, userns
from runtime.store import overlay
from runtime.timefmt import rfc3339

MAX_LINKS = 255
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET, GO_CHARDEV = \
    1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24, 1 << 21
GO_SETUID, GO_SETGID, GO_STICKY = 1 << 23, 1 << 22, 1 << 20


def container_path(path):
    # type: (str) -> str
    """path as a clean absolute container path (`a/../b` -> `/b`; never POSIX's `//x`)."""
    return posixpath.normpath("/" + path.lstrip("/"))


def in_scope(root, path):
    # type: (str, str) -> str
    """The host path of container path `path` under host dir `root`, every symlink on the
    way followed as the container would (absolute targets from its root) and `..` stopped at
    the root, so the answer never leaves it. The last component is followed too."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done = []  # resolved components, never a symlink
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *(done + [part]))
        try:
            info = os.lstat(host)
        except FileNotFoundError:
            done.append(part)
            continue
        if not st.S_ISLNK(info.st_mode):
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise InvalidParameter("too many links resolving %s" % path)
        target = os.readlink(host)
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *done) if done else root


def resolve(root, path):
    # type: (str, str) -> tuple
    """(host path, container path) for an archive request: the parent resolved in scope,
    the last component kept as it is (a symlink there is the link itself, as docker cp)."""
    absolute = container_path(path)
    parent, base = posixpath.split(absolute)
    if path.endswith("/.") or path == ".":
        parent, base = absolute, "."
    host = in_scope(root, parent)
    return (os.path.join(host, base) if base not in ("", ".") else host), absolute


def _go_mode(mode):
    # type: (int) -> int
    """A stat mode as Go's os.FileMode (what X-Docker-Container-Path-Stat carries)."""
    out = mode & 0o777
    kinds = ((st.S_ISDIR, GO_DIR), (st.S_ISLNK, GO_SYMLINK), (st.S_ISFIFO, GO_PIPE),
             (st.S_ISSOCK, GO_SOCKET), (st.S_ISBLK, GO_DEVICE), (st.S_ISCHR, GO_DEVICE | GO_CHARDEV))
    for test, bit in kinds:
        if test(mode):
            out |= bit
    for flag, bit in ((st.S_ISUID, GO_SETUID), (st.S_ISGID, GO_SETGID), (st.S_ISVTX, GO_STICKY)):
        if mode & flag:
            out |= bit
    return out


def stat(root, path, cid):
    # type: (str, str, str) -> dict
    """ContainerPathStat {"name", "size", "mode", "mtime", "linkTarget"}; NotFound worded as
    dockerd's."""
    host, absolute = resolve(root, path)
    try:
        info = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("Could not find the file %s in container %s" % (path, cid)) from None
    link = ""
    if st.S_ISLNK(info.st_mode):
        link = container_path(os.path.relpath(in_scope(root, absolute), root))
    return {"name": os.path.basename(host) if host != root else "/", "size": info.st_size,
            "mode": _go_mode(info.st_mode), "mtime": rfc3339(info.st_mtime), "linkTarget": link}


def _numeric(info, id_maps=None):
    # type: (tarfile.TarInfo, dict) -> tarfile.TarInfo
    info.uname = info.gname = ""  # the host's user names mean nothing in the container
    if id_maps:  # a remapped container's files as its root sees them
        info.uid = userns.container_id(id_maps["UidMap"], info.uid)
        info.gid = userns.container_id(id_maps["GidMap"], info.gid)
    return info


def write_tar(root, path, out, id_maps=None):
    # type: (str, str, object, dict) -> None
    """The tar stream of `path` (the resource itself as the top entry, named by its base
    name, symlinks as links) to the file-like out; id_maps: a remapped container's maps
    (userns-remap), whose host owners go back to container ids."""
    host, absolute = resolve(root, path)
    if not os.path.lexists(host):
        raise NotFound("Could not find the file %s in container" % path)
    name = posixpath.basename(absolute) if not (path.endswith("/.") or path == ".") else "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(host, arcname=name or ".", recursive=True, filter=lambda i: _numeric(i, id_maps))


def export_tar(root, out, id_maps=None):
    # type: (str, object, dict) -> None
    """The whole root as a tar (entries relative to it), as `docker export` writes it."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(os.path.join(root, entry), arcname=entry, recursive=True,
                    filter=lambda i: _numeric(i, id_maps))


class _Extractor(object):
    """Writes tar members under `dest` (a host dir inside `root`), each path resolved in the
    container's scope, so no member (`../x`, or through a symlink an earlier member made)
    lands outside the root."""

    def __init__(self, root, dest, dest_path, no_overwrite_dir_non_dir, id_maps=None):
        # type: (str, str, str, bool, dict) -> None
        self.root, self.dest, self.dest_path = root, dest, dest_path
        self.id_maps = id_maps  # a remapped container's: its ids go to the host ids they map to
        self.strict = no_overwrite_dir_non_dir
        self.dirs = []  # type: list  # (host path, member): times set last

    def target(self, member):
        # type: (tarfile.TarInfo) -> str
        """The host path member.name goes to (its parent resolved in scope)."""
        if posixpath.normpath(member.name).split("/")[0] == "..":
            raise InvalidParameter("%r is outside of %r: a tar member may not climb out of the "
                                   "extraction point" % (member.name, self.dest_path))
        name = container_path(member.name)
        if name == "/":
            return self.dest
        rel = os.path.relpath(self.dest, self.root)
        inside = container_path(("" if rel == "." else rel) + name)
        parent, base = posixpath.split(inside)
        host_parent = in_scope(self.root, parent)
        os.makedirs(host_parent, exist_ok=True)
        return os.path.join(host_parent, base)

    def _clear(self, path, member):
        # type: (str, tarfile.TarInfo) -> None
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        is_dir = st.S_ISDIR(info.st_mode)
        if member.isdir() and is_dir:
            return
        if self.strict and is_dir and not member.isdir():
            raise InvalidParameter('cannot overwrite directory "%s" with non-directory "%s"'
                                   % (os.path.relpath(path, self.root), member.name))
        if self.strict and not is_dir and member.isdir():
            raise InvalidParameter('cannot overwrite non-directory "%s" with directory "%s"'
                                   % (os.path.relpath(path, self.root), member.name))
        if is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def add(self, tar, member):
        # type: (tarfile.TarFile, tarfile.TarInfo) -> None
        """Write one member."""
        path = self.target(member)
        self._clear(path, member)
        if member.isdir():
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self.dirs.append((path, member))
            return
        if member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            source = in_scope(self.root, container_path(
                os.path.relpath(self.dest, self.root) + "/" + member.linkname))
            os.link(source, path)
        elif member.isfile():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(tar.extractfile(member), f, 1 << 20)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = st.S_IFCHR if member.ischr() else st.S_IFBLK if member.isblk() else st.S_IFIFO
            os.mknod(path, kind | member.mode, os.makedev(member.devmajor, member.devminor))
        else:
            return
        self._own(path, member)

    def _own(self, path, member):
        # type: (str, tarfile.TarInfo) -> None
        uid, gid = member.uid, member.gid
        if self.id_maps:
            maps = self.id_maps
            uid, gid = userns.host_id(maps["UidMap"], uid), userns.host_id(maps["GidMap"], gid)
            if uid < 0 or gid < 0:  # an id beyond the container's: given to its root
                uid, gid = maps["UidMap"][0][1], maps["GidMap"][0][1]
        os.chown(path, uid, gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
            os.utime(path, (member.mtime, member.mtime))

    def finish(self):
        # type: () -> None
        """Directory modes, owners and times, deepest first (writing inside changed them)."""
        for path, member in reversed(self.dirs):
            self._own(path, member)


def extract(root, path, stream, cid, no_overwrite_dir_non_dir=False, id_maps=None):
    # type: (str, str, object, str, bool, dict) -> None
    """`PUT /containers/{id}/archive?path=`: the tar in stream extracted into the directory
    `path` of the container (owners shifted by id_maps for a remapped one)."""
    dest = in_scope(root, path)
    try:
        info = os.stat(dest)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("Could not find the file %s in container %s" % (path, cid)) from None
    if not st.S_ISDIR(info.st_mode):
        raise InvalidParameter("extraction point is not a directory")
    ex = _Extractor(root, dest, path, no_overwrite_dir_non_dir, id_maps)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                ex.add(tar, member)
    except tarfile.TarError as exc:
        raise InvalidParameter("the request body is not a tar archive: %s" % exc) from None
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise Forbidden("container rootfs is marked read-only") from None
        raise SystemFailure("extracting into %s: %s" % (path, exc)) from None
    ex.finish()


def _bind_mounts(root, mounts):
    # type: (str, list) -> None
    """The container's volumes and binds mounted on its root at `root` (mount points made in
    scope, so an image's symlink cannot place one outside), read-only ones read-only."""
    for m in mounts or []:
        source = m.get("Source")
        if m.get("Type") not in ("volume", "bind") or not source or not os.path.exists(source):
            continue
        point = in_scope(root, m["Destination"])
        if os.path.isdir(source):
            os.makedirs(point, exist_ok=True)
        elif not os.path.lexists(point):
            os.makedirs(os.path.dirname(point), exist_ok=True)
            os.close(os.open(point, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        sc.mount(source, point, None, sc.MS_BIND | sc.MS_REC)
        if not m.get("RW", True):
            sc.mount(None, point, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)


@contextlib.contextmanager
def root_of(c, writable=False, live=True):
    """The host dir of container c's root for one call: /proc/PID/root while it runs; else its
    vfs root or its overlay mounted on a private temp dir, with its volumes and binds on it (as
    docker cp sees a stopped container). Not live (export): the layers alone, read-only, also
    while it runs. The caller holds c.lock when the layers are mounted (no start meanwhile)."""
    pid = c.alive_pid()
    if pid and live:
        yield "/proc/%d/root" % pid
        return
    volumes = c.cfg.get("Mounts") if live else None
    lowers = list(reversed(c.cfg.get("LayerDirs") or []))
    target = tempfile.mkdtemp(prefix="cp-", dir=c.path)
    try:
        if c.cfg.get("Driver") == "vfs":
            sc.mount(c.file("rootfs"), target, None, sc.MS_BIND)
        elif pid or not (writable or volumes):
            # the writable layer as one more lower: no workdir, nothing changes, and a running
            # container's own mount of that layer is left alone
            overlay.mount_overlay(target, "/", ":".join([c.file("upper")] + lowers))
        else:
            overlay.mount_overlay(target, "/", ":".join(lowers), c.file("upper"), c.file("work"))
        try:
            _bind_mounts(target, volumes)
            yield target
        finally:
            overlay.umount(target, detach=True)  # the volume mounts on it go too
    finally:
        os.rmdir(target)
