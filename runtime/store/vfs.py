"""The vfs storage driver's filesystem work: a container's root as a full copy of its image's
layers, and the container's changes back as a layer tar (for commit). No overlay mount is
needed, so it works on any data root (overlayfs, NFS, ...); it costs a full copy per container.

Layers are unpacked with their whiteouts as marker files (runtime/store/unpack.py,
markers=True): `dir/.wh.NAME` deletes NAME of the layers below, `dir/.wh..wh..opq` hides
everything the layers below have in dir. Copying the layers bottom to top applies them: for
each layer, a Python walk first removes what the layer deletes or replaces (whiteouts, opaque
dirs, a file replacing a dir and the reverse, a file it rewrites), then `cp -a` copies the layer
in (owners, modes, times, xattrs and the layer's own hardlinks kept; reflinks where the
filesystem has them), then the markers it copied are removed.
"""

import os
import shutil
import stat
import subprocess
import tarfile

from runtime import TYPE_CHECKING
from runtime.store.unpack import OPAQUE, WHITEOUT

if TYPE_CHECKING:
    from typing import Dict, List  # noqa: F401


def _remove(path):
    # type: (str) -> None
    """rm -rf path (nothing there is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _is_dir(path):
    # type: (str) -> bool
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _prepare(layer, dest):
    # type: (str, str) -> List[str]
    """Make dest ready for `cp -a layer/. dest/`: apply the layer's whiteouts and opaque
    markers, and remove every dest entry the layer replaces (so cp never writes through a
    symlink, into a dir that became a file, or into a file hardlinked to another). Returns the
    markers' paths relative to the layer, for removal after the copy."""
    markers = []
    for dirpath, dirnames, filenames in os.walk(layer):
        rel_dir = os.path.relpath(dirpath, layer)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        target_dir = os.path.join(dest, rel_dir.rstrip("/")) if rel_dir else dest
        if not _is_dir(target_dir):
            _remove(target_dir)  # a non-dir below is replaced by this dir; cp copies it all
            markers.extend(rel_dir + n for n in filenames if n.startswith(WHITEOUT))
            continue
        names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        if OPAQUE in filenames:
            for name in os.listdir(target_dir):
                _remove(os.path.join(target_dir, name))
        for name in names:
            if name.startswith(WHITEOUT):
                markers.append(rel_dir + name)
                if not name.startswith(OPAQUE[:8]):
                    _remove(os.path.join(target_dir, name[len(WHITEOUT):]))
            else:
                _remove(os.path.join(target_dir, name))
    return markers


def materialize(layer_dirs, dest):
    # type: (List[str], str) -> None
    """Build dest (a new directory) as the merged view of layer_dirs (lowest first), markers
    applied. Raises OSError naming what failed; the caller removes dest then."""
    os.mkdir(dest, 0o755)
    for layer in layer_dirs:
        markers = _prepare(layer, dest)
        proc = subprocess.Popen(["cp", "-a", "--reflink=auto", layer + "/.", dest + "/"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise OSError("cannot copy layer %s into %s: %s"
                          % (layer, dest, err.decode("utf-8", "replace").strip()))
        for rel in markers:
            try:
                os.unlink(os.path.join(dest, rel))
            except FileNotFoundError:
                pass


def image_index(layer_dirs):
    # type: (List[str]) -> Dict[str, str]
    """{relative path: the layer path that provides it} of the merged view of layer_dirs
    (lowest first), markers applied: what the container's root looked like at create."""
    index = {}  # type: Dict[str, str]

    def drop_below(rel):
        # type: (str) -> None
        prefix = rel + "/" if rel else ""
        for k in [k for k in index if k.startswith(prefix)]:
            del index[k]

    def was_dir(rel):
        # type: (str) -> bool
        return rel in index and _is_dir(index[rel])

    for layer in layer_dirs:
        for dirpath, dirnames, filenames in os.walk(layer):
            rel_dir = os.path.relpath(dirpath, layer)
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir:
                index[rel_dir] = dirpath
            if OPAQUE in filenames:
                drop_below(rel_dir)
            prefix = rel_dir + "/" if rel_dir else ""
            for name in filenames + [d for d in dirnames
                                     if os.path.islink(os.path.join(dirpath, d))]:
                if name.startswith(WHITEOUT):
                    if not name.startswith(OPAQUE[:8]):
                        gone = prefix + name[len(WHITEOUT):]
                        if was_dir(gone):
                            drop_below(gone)
                        index.pop(gone, None)
                    continue
                rel = prefix + name
                if was_dir(rel):
                    drop_below(rel)
                index[rel] = os.path.join(dirpath, name)
    return index


def _xattrs(path):
    # type: (str) -> dict
    try:
        return {k: os.getxattr(path, k, follow_symlinks=False)
                for k in os.listxattr(path, follow_symlinks=False)}
    except OSError:
        return {}


def _changed(old, new, old_path, new_path):
    # type: (os.stat_result, os.stat_result, str, str) -> bool
    """Docker's change test (pkg/archive/changes.go): type, mode, owner, device, and for
    non-dirs size and mtime; symlink targets and xattrs too."""
    if (old.st_mode != new.st_mode or old.st_uid != new.st_uid or old.st_gid != new.st_gid
            or old.st_rdev != new.st_rdev):
        return True
    if not stat.S_ISDIR(new.st_mode) and (old.st_size != new.st_size
                                          or old.st_mtime_ns != new.st_mtime_ns):
        return True
    if stat.S_ISLNK(new.st_mode) and os.readlink(old_path) != os.readlink(new_path):
        return True
    return _xattrs(old_path) != _xattrs(new_path)


def diff_tar(rootfs, layer_dirs, out, exclude=()):
    # type: (str, List[str], object, tuple) -> None
    """Write the container's changes (rootfs against its image's layers) to out as a layer
    tar: added and changed entries (with their parent dirs, as Docker does, so modes and
    owners survive), `.wh.NAME` for deleted ones, so the layer means the same on overlay2
    hosts; `exclude` lists relative paths to leave out."""
    index = image_index(layer_dirs)
    children = {}  # type: Dict[str, set]
    for rel in index:
        parent, _, name = rel.rpartition("/")
        children.setdefault(parent, set()).add(name)
    skip = {p.strip("/") for p in exclude}
    changes = _changes(rootfs, "", index, children, skip)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for kind, rel, path in changes:
            if kind == "whiteout":
                ti = tarfile.TarInfo(rel)
                ti.mtime = int(os.lstat(path).st_mtime)
                tf.addfile(ti)
                continue
            ti = tf.gettarinfo(path, arcname=rel)
            if ti is None:
                continue  # a socket: tar has no type for it (Docker leaves them out too)
            ti.uname = ti.gname = ""
            if ti.isreg():
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)


def _changes(rootfs, rel_dir, index, children, skip):
    # type: (str, str, dict, dict, set) -> list
    """[(kind "whiteout"|"add", tar name, path)] for the dir rel_dir of rootfs, depth first."""
    full_dir = os.path.join(rootfs, rel_dir) if rel_dir else rootfs
    prefix = rel_dir + "/" if rel_dir else ""
    names = set(os.listdir(full_dir))
    out = []
    for name in sorted(children.get(rel_dir, set()) - names):
        if prefix + name not in skip:
            out.append(("whiteout", prefix + WHITEOUT + name, full_dir))
    for name in sorted(names):
        rel = prefix + name
        if rel in skip:
            continue
        path = os.path.join(full_dir, name)
        st = os.lstat(path)
        old = index.get(rel)
        was = os.lstat(old) if old is not None else None
        changed = was is None or _changed(was, st, old, path)
        if stat.S_ISDIR(st.st_mode):
            inside = _changes(rootfs, rel, index, children, skip)
            if changed or inside:
                out.append(("add", rel, path))
                out.extend(inside)
        elif changed:
            out.append(("add", rel, path))
    return out
