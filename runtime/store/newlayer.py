"""New layers from outside a registry: `commit` (a container's overlay upper dir) and `import`
(a plain rootfs tar, gzip allowed). Both store a plain tar blob (so the image can be saved and
pushed), unpack it like any other layer, and record a new image config.
"""

import json
import os
import stat
import tarfile
import tempfile

from runtime import timefmt
from runtime.errors import InvalidParameter
from runtime.goarch import goarch
from runtime.sha256 import sha256
from runtime.store import changes as changes_mod
from runtime.store import vfs
from runtime.store.archive_load import _maybe_gunzip
from runtime.store.manifests import OCI_LAYER_TAR
from runtime.store.unpack import OPAQUE, OPAQUE_XATTR, WHITEOUT


class _HashingFile(object):
    """A write-only file that hashes what passes through."""

    def __init__(self, f):
        self.f, self.h, self.n = f, sha256(), 0

    def write(self, data):
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def tell(self):
        return self.n


def _is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path):
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def unshift(ti, id_maps):
    # type: (tarfile.TarInfo, dict) -> tarfile.TarInfo
    """A remapped container's file as its root saw it: host owners back to the container's ids
    (id_maps: {"UidMap", "GidMap"} of [container id, host id, count])."""
    for attr, key in (("uid", "UidMap"), ("gid", "GidMap")):
        host = getattr(ti, attr)
        for inside, outside, count in id_maps[key]:
            if outside <= host < outside + count:
                setattr(ti, attr, inside + host - outside)
                break
    return ti


def diff_tar(upper, out, exclude=(), id_maps=None):
    # type: (str, object, tuple, dict) -> None
    """Write the overlay upper dir as a layer tar to out: whiteout devices (0/0) become
    `.wh.NAME`, opaque dirs get `.wh..wh..opq`; `exclude` lists relative paths to leave out;
    id_maps: a remapped container's maps, whose host owners go back to container ids."""
    skip = {p.strip("/") for p in exclude}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if id_maps:
            add = tf.addfile
            tf.addfile = lambda ti, f=None: add(unshift(ti, id_maps), f)  # type: ignore
        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, upper)
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir and _opaque(dirpath):
                ti = tarfile.TarInfo(rel_dir + "/" + OPAQUE)
                ti.mtime = int(os.lstat(dirpath).st_mtime)
                tf.addfile(ti)
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(
                    os.path.join(dirpath, d))]:
                _add(tf, upper, rel_dir, name, skip)
            for d in list(dirnames):
                rel = (rel_dir + "/" + d) if rel_dir else d
                full = os.path.join(dirpath, d)
                if os.path.islink(full) or rel in skip:
                    dirnames.remove(d)
                    continue
                tf.addfile(_clean(tf.gettarinfo(full, arcname=rel)))


def _clean(ti):
    ti.uname = ti.gname = ""
    return ti


def _add(tf, upper, rel_dir, name, skip):
    rel = (rel_dir + "/" + name) if rel_dir else name
    if rel in skip:
        return
    full = os.path.join(upper, rel)
    st = os.lstat(full)
    if _is_whiteout(st):
        ti = tarfile.TarInfo((rel_dir + "/" if rel_dir else "") + WHITEOUT + name)
        ti.mtime = int(st.st_mtime)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        tf.addfile(ti)
        return
    ti = _clean(tf.gettarinfo(full, arcname=rel))
    if ti.isreg():
        with open(full, "rb") as f:
            tf.addfile(ti, f)
    else:
        tf.addfile(ti)


def store_tar(store, write):
    """Run write(fileobj) into a temp file, keep it as a blob; returns (digest, size)."""
    fd, tmp = tempfile.mkstemp(prefix="newlayer-%d-" % os.getpid(), dir=store.tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            hf = _HashingFile(f)
            write(hf)
        digest = "sha256:" + hf.h.hexdigest()
        with store.lock:
            if store.blobs.has(digest):
                os.unlink(tmp)
            else:
                store.blobs.adopt(tmp, digest)
        return digest, hf.n
    except BaseException:
        try:
            os.unlink(tmp)  # a file: remove_tree would chmod tmp/ on its way to failing
        except FileNotFoundError:
            pass
        raise


def _copy_stream(src, dst):
    while True:
        data = src.read(1 << 20)
        if not data:
            break
        dst.write(data)


def import_rootfs(store, stream, refs=(), changes=None, message=None):
    # type: (object, object, tuple, list, str) -> str
    """`docker import`: a plain rootfs tar (gzip allowed) as a one-layer image; returns its id."""
    cfg = changes_mod.apply({}, changes)
    digest, size = store_tar(store, lambda f: _copy_stream(_maybe_gunzip(stream, "rootfs archive"), f))
    now = timefmt.now()
    config = {"architecture": goarch(), "os": "linux", "created": now, "config": cfg,
              "rootfs": {"type": "layers", "diff_ids": [digest]},
              "history": [{"created": now, "comment": message or "Imported from -"}]}
    return _create(store, config, [(digest, OCI_LAYER_TAR, size)], refs)


def _create(store, config, layers, refs, parent=""):
    data = json.dumps(config, separators=(",", ":")).encode()
    with store.lock:
        try:
            return store.create_image(data, layers, refs, parent=parent)
        except BaseException:
            if not any(lay["digest"] == layers[-1][0]
                       for i in store.ids() for lay in store.record(i)["layers"]):
                store.blobs.remove(layers[-1][0])
            raise


def diff_writer(store, upper_dir, parent_image_id, exclude=(), id_maps=None):
    # type: (object, str, str, tuple, dict) -> object
    """write(fileobj) of a container's writable layer as a layer tar: the overlay upper dir
    as it is or, with the vfs driver, the container's full root compared with the image's
    layers. id_maps: the container's uid/gid maps when it runs remapped (userns-remap)."""
    if id_maps and store.driver == "vfs":
        raise InvalidParameter("a container with remapped ids cannot be committed with the vfs storage "
                               "driver: use overlay2, or run it with --userns=host")
    if store.driver == "vfs":
        lower = store.layer_dirs(parent_image_id) if parent_image_id else []
        return lambda f: vfs.diff_tar(upper_dir, lower, f, exclude)
    return lambda f: diff_tar(upper_dir, f, exclude, id_maps)


def commit(store, upper_dir, parent_image_id, refs=(), changes=None, comment=None, author=None,
           config=None, container_id="", exclude=(), id_maps=None):
    # type: (object, str, str, tuple, list, str, str, dict, str, tuple, dict) -> str
    """A container's writable layer (overlay upper dir; with the vfs driver, the container's
    full root, compared with the image's layers) as a new layer on top of its image.
    config (a ContainerConfig: Env, Cmd, ...) overrides the image's, then changes apply."""
    if not os.path.isdir(upper_dir):
        raise InvalidParameter("cannot commit: %s is not a directory" % upper_dir)
    parent_cfg = store.image_config(parent_image_id) if parent_image_id else {}
    base = dict(parent_cfg.get("config") or {})
    base.update({k: v for k, v in (config or {}).items() if v is not None})
    cfg = changes_mod.apply(base, changes)
    digest, size = store_tar(store, diff_writer(store, upper_dir, parent_image_id, exclude, id_maps))
    now = timefmt.now()
    history = list(parent_cfg.get("history") or [])
    entry = {"created": now}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    history.append(entry)
    layers = [(lay["digest"], lay["mediaType"], lay["size"])
              for lay in store.record(parent_image_id)["layers"]] if parent_image_id else []
    new = {"architecture": parent_cfg.get("architecture") or goarch(),
           "os": parent_cfg.get("os") or "linux", "created": now, "config": cfg,
           "rootfs": {"type": "layers",
                      "diff_ids": list((parent_cfg.get("rootfs") or {}).get("diff_ids") or [])
                      + [digest]},
           "history": history}
    if author:
        new["author"] = author
    if comment:
        new["comment"] = comment
    if container_id:
        new["container"] = container_id
    return _create(store, new, layers + [(digest, OCI_LAYER_TAR, size)], refs,
                   parent=parent_image_id or "")
