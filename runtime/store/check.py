"""The image store's checker: walks tmp/, blobs, layers, short links, the blob map, image records
and their configs, and references; returns runtime.findings.Finding objects, each with the fix
it would apply.

`deep` re-hashes every blob (and every gzip layer's uncompressed stream, for its diff_id) and
walks every layer directory for the other storage driver's whiteouts; without it (berthd's
start) only names, JSON files and links are read.

Safe fixes remove only what no image uses (temp entries, unreferenced layers and blobs, stale
links and blob map entries) and drop references to images that do not exist. A damaged part
of a complete image is reported with what to do (pull or load it again, or rmi it): never
deleted here.
"""

import gzip
import json
import os
import re
import stat

from runtime import TYPE_CHECKING
from runtime.findings import MANUAL, SAFE, Finding
from runtime.sha256 import sha256
from runtime.store.blobs import is_digest
from runtime.store.layers import LINK_LEN, remove_tree
from runtime.store.unpack import WHITEOUT

if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set  # noqa: F401

_HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def _pid_alive(name):
    # type: (str) -> bool
    """True when a temp name `kind-<pid>-...` belongs to a live process (work in progress)."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remover(path):
    return lambda: remove_tree(path) if os.path.isdir(path) and not os.path.islink(path) \
        else os.unlink(path)


def _sha256_file(path, gunzip=False):
    # type: (str, bool) -> str
    h = sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            h.update(data)
    return "sha256:" + h.hexdigest()


class _Walk(object):
    """One pass over the store; `found` collects the findings."""

    def __init__(self, store, deep):
        self.store = store
        self.deep = deep
        self.found = []  # type: List[Finding]
        self.records = {}  # type: Dict[str, dict]
        self.used_blobs = set()  # type: Set[str]
        self.used_layers = {}  # type: Dict[str, Set[str]]  # diff_id -> blob digests
        self.bad_blobs = set()  # type: Set[str]

    def add(self, *args, **kw):
        self.found.append(Finding(*args, **kw))

    def run(self):
        # type: () -> List[Finding]
        self.tmp()
        self.images()
        self.blobs()
        self.layers()
        self.links()
        self.blobmap()
        self.references()
        return self.found

    # -------------------------------------------------------------- tmp/

    def tmp(self):
        for name in sorted(os.listdir(self.store.tmp)):
            if _pid_alive(name):
                continue  # a live engine's work in progress
            path = os.path.join(self.store.tmp, name)
            self.add("tmp", path, "left by an interrupted operation", "remove it", SAFE,
                     _remover(path), partial=True)

    # -------------------------------------------------------------- image records

    def images(self):
        d = self.store.images_dir
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not name.endswith(".json") or not _HEX.match(name[:-5]):
                self.add("image", path, "not an image record (an interrupted write's temp file?)",
                         "remove it", SAFE, _remover(path), partial=True)
                continue
            image_id = "sha256:" + name[:-5]
            try:
                with open(path) as f:
                    rec = json.load(f)
                layers = rec["layers"]
                pairs = [(lay["digest"], lay["diffId"]) for lay in layers]
            except (OSError, ValueError, KeyError, TypeError) as e:
                self.add("image", image_id, "record %s is unreadable (%s)" % (path, e),
                         "remove the image with `berth rmi -f %s` and pull or load it again"
                         % image_id[7:19])
                continue
            self.records[image_id] = rec
            self.used_blobs.add(image_id)
            for digest, diff_id in pairs:
                self.used_blobs.add(digest)
                self.used_layers.setdefault(diff_id, set()).add(digest)
            if rec.get("manifest"):
                self.used_blobs.add(rec["manifest"])
        for image_id, rec in sorted(self.records.items()):
            self.image(image_id, rec)

    def image(self, image_id, rec):
        short = image_id[7:19]
        again = "pull or load the image again, or remove it (`berth rmi %s`)" % short
        if rec.get("id") not in (None, image_id):
            self.add("image", image_id, "record names another id %s" % rec.get("id"), again)
        if not self.store.blobs.has(image_id):
            self.add("image", image_id, "config blob is missing", again)
        else:
            try:
                config = self.store.image_config(image_id)
                diff_ids = config["rootfs"]["diff_ids"]
            except (OSError, ValueError, KeyError, TypeError):
                self.add("image", image_id, "config blob is not JSON with rootfs.diff_ids", again)
            else:
                recorded = [lay["diffId"] for lay in rec["layers"]]
                if diff_ids != recorded:
                    self.add("image", image_id, "config's diff_ids %s differ from the record's %s"
                             % (_short_list(diff_ids), _short_list(recorded)), again)
        for lay in rec["layers"]:
            if not self.store.blobs.has(lay["digest"]):
                self.add("image", image_id, "layer blob %s is missing" % lay["digest"], again)
            if not self.store.layers.has(lay["diffId"]):
                self.add("image", image_id, "layer %s is not unpacked" % lay["diffId"], again)
        if rec.get("manifest") and not self.store.blobs.has(rec["manifest"]):
            self.add("image", image_id, "manifest blob %s is missing" % rec["manifest"], again)
        self.parents(image_id, rec)

    def parents(self, image_id, rec):
        seen = {image_id}
        parent = rec.get("parent") or ""
        while parent:
            if parent in seen:
                self.add("image", image_id, "parent chain loops at %s" % parent,
                         "remove the image (`berth rmi -f %s`)" % image_id[7:19])
                return
            if parent not in self.records:
                if rec.get("parent") == parent:  # report at the child of the missing one only
                    self.add("image", image_id, "parent image %s is missing" % parent,
                             "nothing breaks (layers are per image); `berth rmi` it and commit "
                             "again to drop the link")
                return
            seen.add(parent)
            parent = self.records[parent].get("parent") or ""

    # -------------------------------------------------------------- blobs

    def blobs(self):
        root = os.path.join(self.store.blobs.root, "sha256")
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if not _HEX.match(name):
                self.add("blob", path, "not a blob name", "remove it", SAFE, _remover(path))
                continue
            digest = "sha256:" + name
            used = digest in self.used_blobs
            if self.deep:
                try:
                    got = _sha256_file(path)
                except OSError as e:
                    got = "unreadable (%s)" % e
                if got != digest:
                    self.bad_blobs.add(digest)
                    if used:
                        self.add("blob", digest, "content hashes to %s" % got,
                                 "remove the images that use it (`berth rmi`) and pull or load "
                                 "them again")
                    else:
                        self.add("blob", digest, "content hashes to %s and no image uses it" % got,
                                 "remove it", SAFE, _remover(path))
                    continue
            if not used:
                self.add("blob", digest, "no image uses it (an interrupted pull, load, commit or "
                         "rmi)", "remove it", SAFE, _remover(path), reusable=True)

    # -------------------------------------------------------------- layers

    def layers(self):
        layers = self.store.layers
        for name in sorted(os.listdir(layers.layers)):
            path = os.path.join(layers.layers, name)
            if not _HEX.match(name):
                self.add("layer", path, "not a layer directory name", "remove it", SAFE,
                         _remover(path))
                continue
            diff_id = "sha256:" + name
            used = diff_id in self.used_layers
            if not os.path.isdir(os.path.join(path, "diff")):
                if used:
                    self.add("layer", diff_id, "has no diff directory",
                             "remove the images that use it (`berth rmi`) and pull them again")
                else:
                    self.add("layer", diff_id, "incomplete and no image uses it", "remove it",
                             SAFE, _remover(path), partial=True)
                continue
            if not used:
                self.add("layer", diff_id, "no image uses it (an interrupted pull, load, commit, "
                         "import or rmi)", "remove it", SAFE,
                         lambda d=diff_id: layers.remove(d, self.blob_names_for(d)), reusable=True)
                continue
            if not os.path.isfile(os.path.join(path, "size")):
                self.add("layer", diff_id, "size file is missing", "the image's size shows 0; "
                         "pull it again to restore it", MANUAL)
            if self.deep:
                self.layer_content(diff_id, os.path.join(path, "diff"))

    def blob_names_for(self, diff_id):
        # type: (str) -> tuple
        """Blob map names pointing at diff_id (removed with the layer)."""
        out = []
        try:
            names = os.listdir(self.store.layers.blobmap)
        except OSError:
            return ()
        for name in names:
            if _HEX.match(name) and _read(os.path.join(self.store.layers.blobmap, name)) == diff_id:
                out.append("sha256:" + name)
        return tuple(out)

    def layer_content(self, diff_id, diff_dir):
        """Deep: the diff_id re-derived from a gzip blob; whiteouts of the store's driver."""
        for digest in sorted(self.used_layers[diff_id]):
            if digest in self.bad_blobs or not self.store.blobs.has(digest):
                continue
            if digest == diff_id:
                continue  # a plain tar blob: its digest (verified above) is the diff_id
            try:
                got = _sha256_file(self.store.blobs.path(digest), gunzip=True)
            except (OSError, EOFError, ValueError) as e:
                got = "an error (%s)" % e
            if got != diff_id:
                self.add("layer", diff_id, "blob %s uncompresses to %s" % (digest, got),
                         "remove the images that use it (`berth rmi`) and pull them again")
        vfs = self.store.driver == "vfs"
        for dirpath, dirnames, filenames in os.walk(diff_dir):
            for n in filenames + dirnames:
                p = os.path.join(dirpath, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not vfs and n.startswith(WHITEOUT) and stat.S_ISREG(st.st_mode):
                    self.add("layer", diff_id, "holds a vfs whiteout marker %s in an overlay2 store"
                             % os.path.relpath(p, diff_dir), "remove the images that use it and "
                             "pull them again")
                    return
                if vfs and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    self.add("layer", diff_id, "holds an overlay whiteout device %s in a vfs store"
                             % os.path.relpath(p, diff_dir), "remove the images that use it and "
                             "pull them again")
                    return

    def links(self):
        layers = self.store.layers
        wanted = {d[7:7 + LINK_LEN]: d for d in self.used_layers}
        for name in sorted(os.listdir(layers.links)):
            path = os.path.join(layers.links, name)
            target = os.readlink(path) if os.path.islink(path) else None
            diff_id = wanted.get(name)
            if diff_id is None or target != "../layers/%s/diff" % diff_id[7:]:
                if diff_id is None and target and os.path.isdir(path):
                    continue  # an unused layer's link: goes with that layer
                self.add("layer", path, "short link points at %s" % target, "remove it (remade "
                         "on use)", SAFE, _remover(path), partial=diff_id is None)
        for name, diff_id in sorted(wanted.items()):
            path = os.path.join(layers.links, name)
            if self.store.layers.has(diff_id) and not os.path.lexists(path):
                self.add("layer", diff_id, "short link l/%s is missing" % name, "make it", SAFE,
                         lambda d=diff_id: layers.link(d))

    def blobmap(self):
        d = self.store.layers.blobmap
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            value = _read(path)
            if not _HEX.match(name):
                self.add("layer", path, "not a blob map entry (an interrupted write?)", "remove it",
                         SAFE, _remover(path), partial=True)
            elif not is_digest(value) or not self.store.layers.has(value):
                self.add("layer", path, "maps blob sha256:%s to a missing layer %r" % (name, value),
                         "remove the entry", SAFE, _remover(path), partial=True)

    # -------------------------------------------------------------- references

    def references(self):
        path = self.store.refs.path
        try:
            refs = self.store.refs.all()
        except (OSError, ValueError, AttributeError) as e:
            self.add("reference", path, "unreadable (%s)" % e, "restore it from a backup or move "
                     "it aside (the images stay, without names)")
            return
        if self.store.refs.torn():
            self.add("reference", self.store.refs.log_path, "its last change was cut short (a crash "
                     "during the write; that change was never acknowledged)", "rewrite the map "
                     "without it", SAFE, self._compact_refs, partial=True)
        for name, image_id in sorted(refs.items()):
            if image_id not in self.records:
                self.add("reference", name, "points at a missing image %s" % image_id,
                         "drop the name", SAFE, lambda n=name: self._drop_ref(n))
        parent = os.path.dirname(path)
        base = os.path.basename(path)
        for name in os.listdir(parent):
            if name.startswith(base + ".") and name.endswith(".tmp"):
                p = os.path.join(parent, name)
                self.add("reference", p, "an interrupted write's temp file", "remove it", SAFE,
                         _remover(p), partial=True)

    def _compact_refs(self):
        with self.store.lock:
            self.store.refs.compact()

    def _drop_ref(self, name):
        with self.store.lock:
            self.store.refs.delete([name])


def _short_list(ids):
    return "[%s]" % ", ".join(str(i)[7:19] for i in ids)


def _read(path):
    # type: (str) -> str
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def check(store, deep=True):
    # type: (object, bool) -> List[Finding]
    """Every inconsistency of the image store (a runtime.store.images.ImageStore)."""
    return _Walk(store, deep).run()
