"""The image store: blobs, layers, image records and references under one root.

    <root>/lock                      lockf: one writer at a time (threads and processes)
    <root>/tmp/                      temp files and dirs, renamed into place when complete
    <root>/blobs/sha256/<hex>        content-addressed blobs: configs, layer tars, manifests
    <root>/layers/<diff hex>/diff/   unpacked layers (runtime/store/layers.py)
    <root>/l/<12 hex>                short links to layer dirs for overlay's lowerdir option
    <root>/images/<id hex>.json      image record: its layer blobs and media types
    <root>/repositories.json         canonical reference -> image id, as of its last rewrite
    <root>/repositories.log          the reference changes since (runtime/store/refs.py)

An image id is the sha256 of its config blob, as in Docker. Reads take no lock: every file
is replaced by rename, never rewritten in place, but for the reference log, which only grows
by whole lines.
"""

import json
import os

from runtime import TYPE_CHECKING, timefmt
from runtime.atomicfile import write_json
from runtime.errors import InvalidParameter, NotFound
from runtime.store import reference, rmi
from runtime.store.blobs import BlobStore
from runtime.store.layers import LayerStore, is_gzip_type, remove_tree
from runtime.store.lock import StoreLock
from runtime.store.refs import ReferenceStore
from runtime.store import manifests

if TYPE_CHECKING:
    from typing import Any, Callable  # noqa: F401


class ImageStore(object):
    """Everything about images on disk; see the module docstring for the layout."""

    def __init__(self, root, driver="overlay2"):
        # type: (str, str) -> None
        self.root = root
        self.driver = driver  # runtime/store/driver.py: "vfs" unpacks whiteouts as markers
        self.tmp = os.path.join(root, "tmp")
        self.images_dir = os.path.join(root, "images")
        os.makedirs(self.images_dir, exist_ok=True)
        self.blobs = BlobStore(os.path.join(root, "blobs"), self.tmp)
        self.layers = LayerStore(root, self.tmp, markers=driver == "vfs")
        self.refs = ReferenceStore(os.path.join(root, "repositories.json"))
        self.lock = StoreLock(os.path.join(root, "lock"))
        self._listed = {}  # type: dict  # image id -> listed(image_id)
        self._record_writes = 0  # records rewritten or removed so far: see listed(), diff_ids()
        self._diff_ids = {}  # type: dict  # image id -> its layers' diff_ids (see diff_ids())

    # ------------------------------------------------------------ blobs (registry client)

    def has_blob(self, digest):
        # type: (str) -> bool
        """True when the blob is stored."""
        return self.blobs.has(digest)

    def put_blob(self, fileobj, expected_digest=None, size=None):
        # type: (object, str, int) -> str
        """Stream a blob in, verifying its sha256 (and size) while writing; returns its digest.
        A mismatch raises InvalidParameter naming both digests and leaves nothing behind."""
        return self.blobs.put(fileobj, expected_digest, size)

    def open_blob(self, digest):
        """The blob opened for binary reading."""
        return self.blobs.open(digest)

    def blob_size(self, digest):
        # type: (str) -> int
        """The blob's size in bytes; NotFound when missing."""
        return self.blobs.size(digest)

    def blob_path(self, digest):
        # type: (str) -> str
        """The blob's file path (it may not exist)."""
        return self.blobs.path(digest)

    # ------------------------------------------------------------ layers

    def has_layer(self, diff_id):
        # type: (str) -> bool
        """True when the layer with this diff_id is unpacked."""
        return self.layers.has(diff_id)

    def unpack_layer(self, blob_digest, media_type, expected_diff_id=None):
        # type: (str, str, str) -> str
        """Unpack a stored layer blob (plain tar or gzip; other media types refused by name)
        and return its diff_id. Idempotent: a blob unpacked once is found again. Takes no
        store lock (a pull unpacks layers in parallel): each unpack works in its own temp dir
        and the first rename wins."""
        gz = is_gzip_type(media_type)
        if not self.blobs.has(blob_digest):
            raise NotFound("blob %s not found in the image store" % blob_digest)
        return self.layers.unpack(self.blobs.path(blob_digest), blob_digest, gz,
                                  expected_diff_id)[0]

    # ------------------------------------------------------------ lookups

    def _record_path(self, image_id):
        # type: (str) -> str
        return os.path.join(self.images_dir, image_id[7:] + ".json")

    def has_image(self, image_id):
        # type: (str) -> bool
        """Whether the image (a full id) has a record."""
        return os.path.exists(self._record_path(image_id))

    def record(self, image_id):
        # type: (str) -> dict
        """The image's record: {"id", "layers": [{"digest", "mediaType", "size", "diffId"}],
        "added", "manifest", "parent"}."""
        try:
            with open(self._record_path(image_id)) as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound("No such image: %s" % image_id) from None

    def ids(self):
        # type: () -> list
        """Every image id."""
        return ["sha256:" + n[:-5] for n in os.listdir(self.images_dir) if n.endswith(".json")]

    def resolve(self, ref):
        # type: (str) -> str
        """The image id for a name (`busybox`, `busybox:1.36`, `host:5000/x/y:tag`,
        `name@sha256:...`), a full id or a unique id prefix. NotFound("No such image: X") when
        missing, InvalidParameter for a malformed reference."""
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("invalid reference format: empty image name")
        if ref.startswith("sha256:") and len(ref) == 71:
            if self.has_image(ref):
                return ref
            raise NotFound("No such image: %s" % ref)
        try:
            name = reference.normalize(ref)
        except InvalidParameter:
            if not reference.looks_like_id(ref):
                raise
            name = None
        if name:
            found = self.refs.get(name)
            if found and self.has_image(found):
                return found
        if reference.looks_like_id(ref):
            prefix = ref[7:] if ref.startswith("sha256:") else ref
            matches = [i for i in self.ids() if i[7:].startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidParameter("image id prefix %r is ambiguous: give more digits" % ref)
        raise NotFound("No such image: %s" % ref)

    def image_config(self, image_id):
        # type: (str) -> dict
        """The image config JSON (architecture, os, config, rootfs, history, created...)."""
        with self.blobs.open(image_id) as f:
            return json.loads(f.read().decode("utf-8"))

    def listed(self, image_id):
        # type: (str) -> tuple
        """(parent id, created as Unix seconds, labels, size): what a listing shows of an image
        besides its names. Read from its record and config once, then kept in memory: the
        config is content-addressed, and the record is rewritten or removed only through this
        store, which forgets the entry then (500 images: 89 -> 6 ms a listing). NotFound when
        the image is gone."""
        def read():
            # type: () -> tuple
            rec = self.record(image_id)
            cfg = self.image_config(image_id)
            return (rec.get("parent") or "", timefmt.unix_time(cfg.get("created")),
                    (cfg.get("config") or {}).get("Labels") or {},
                    self.size(image_id, [layer["diffId"] for layer in rec["layers"]]))
        return self._kept(self._listed, image_id, read)

    def _kept(self, cache, image_id, read):
        # type: (dict, str, Callable[[], Any]) -> Any
        """cache[image_id], else read() kept there: unless a record was rewritten or removed
        meanwhile (what was read may be old then)."""
        got = cache.get(image_id)
        if got is None:
            writes = self._record_writes
            got = read()
            if writes == self._record_writes:
                cache[image_id] = got
        return got

    def _forget_record(self, image_id):
        # type: (str) -> None
        """The record of image_id was rewritten or removed: what is kept from it goes."""
        self._record_writes += 1
        self._listed.pop(image_id, None)
        self._diff_ids.pop(image_id, None)

    def diff_ids(self, image_id):
        # type: (str) -> list
        """The image's layer diff_ids, lowest first. Kept in memory once read: the image id is
        the digest of a config that lists them, so they never change (the entry goes with the
        record); a create and a start each needed a read of the record."""
        return list(self._kept(self._diff_ids, image_id,
                               lambda: [layer["diffId"] for layer in self.record(image_id)["layers"]]))

    def layer_dirs(self, image_id):
        # type: (str) -> list
        """Absolute unpacked layer directories of the image, LOWEST FIRST."""
        return [self.layers.diff_dir(d) for d in self.diff_ids(image_id)]

    def mount_lowerdir_option(self, image_id):
        # type: (str) -> tuple
        """(base_dir, lowerdir): the value for overlay's `lowerdir=` with paths relative to
        base_dir, TOPMOST layer first as overlayfs wants (`l/<top>:...:l/<bottom>`). Each entry
        is 15 bytes, so 250 layers fit in a 4096-byte option page; chdir(base_dir) before
        mount(2) (runtime.store.overlay.mount_overlay does that)."""
        links = [self.layers.link(d) for d in self.diff_ids(image_id)]
        return self.root, ":".join(reversed(links))

    def size(self, image_id, diff_ids=None):
        # type: (str, list) -> int
        """Sum of the uncompressed layer sizes (diff_ids: the image's, when the caller has
        its record already)."""
        return sum(self.layers.size(d) for d in (self.diff_ids(image_id) if diff_ids is None else diff_ids))

    def image_manifest(self, image_id):
        # type: (str) -> tuple
        """(manifest bytes, media type) to push the image: the manifest it was pulled with, else
        one built from its config and layer blobs (Docker schema 2 when every layer has a Docker
        media type, OCI otherwise)."""
        rec = self.record(image_id)
        if rec.get("manifest"):
            with self.blobs.open(rec["manifest"]) as f:
                return f.read(), rec["manifestMediaType"]
        return manifests.build(image_id, self.blobs.size(image_id), rec["layers"])

    # ------------------------------------------------------------ writes

    def create_image(self, config_bytes, layers, refs=(), repo_digest=None, manifest=None,
                     manifest_media_type=None, parent=""):
        # type: (bytes, list, tuple, str, bytes, str, str) -> str
        """Record an image whose layer blobs are stored: layers = [(blob digest, media type,
        size)], lowest first; unpacks any layer not yet unpacked, stores the config, points
        refs (any reference form) and repo_digest (`repo@sha256:...`) at it. Returns the id."""
        try:
            config = json.loads(config_bytes.decode("utf-8"))
            diff_ids = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidParameter("image config is not valid JSON with rootfs.diff_ids") from None
        if len(diff_ids) != len(layers):
            raise InvalidParameter("image config lists %d layers but %d were given"
                                   % (len(diff_ids), len(layers)))
        names = [reference.normalize(r) for r in refs]
        if repo_digest:
            names.append(reference.normalize(repo_digest))
        with self.lock:
            created_layers, created_blobs = [], []
            try:
                records = []
                for (digest, media_type, size), diff_id in zip(layers, diff_ids):
                    gz = is_gzip_type(media_type)
                    if not self.blobs.has(digest):
                        raise NotFound("layer blob %s is not in the image store" % digest)
                    got, made = self.layers.unpack(self.blobs.path(digest), digest, gz, diff_id)
                    if made:
                        created_layers.append((got, digest))
                    records.append({"digest": digest, "mediaType": media_type,
                                    "size": size or self.blobs.size(digest), "diffId": got})
                image_id = manifests.digest(config_bytes)
                if not self.blobs.has(image_id):
                    self.blobs.put_bytes(config_bytes)
                    created_blobs.append(image_id)
                rec = {"id": image_id, "layers": records, "added": timefmt.now(), "parent": parent}
                if self.has_image(image_id):
                    old = self.record(image_id)
                    rec["added"] = old.get("added", rec["added"])
                    rec["manifest"] = old.get("manifest")
                    rec["manifestMediaType"] = old.get("manifestMediaType")
                    rec["parent"] = old.get("parent") or parent
                if manifest is not None:
                    if not self.blobs.has(manifests.digest(manifest)):
                        created_blobs.append(self.blobs.put_bytes(manifest))
                    rec["manifest"] = manifests.digest(manifest)
                    rec["manifestMediaType"] = manifest_media_type or manifests.media_type(manifest)
                if names:
                    rec["lastTagTime"] = timefmt.now()
                self._write_record(rec)
                if names:
                    self.refs.set(names, image_id)
                return image_id
            except BaseException:
                for diff_id, digest in created_layers:
                    self.layers.remove(diff_id, (digest,))
                for digest in created_blobs:
                    self.blobs.remove(digest)
                raise

    def _write_record(self, rec):
        # type: (dict) -> None
        try:
            write_json(self._record_path(rec["id"]), rec, indent=1, sort_keys=True, durable=True)
        finally:
            self._forget_record(rec["id"])

    def tag(self, ref, new_name):
        # type: (str, str) -> str
        """Point new_name (any reference form, tag or digest) at the image ref resolves to."""
        name = reference.normalize(new_name)
        with self.lock:
            image_id = self.resolve(ref)
            self.refs.set([name], image_id)
            rec = self.record(image_id)
            rec["lastTagTime"] = timefmt.now()
            self._write_record(rec)
        return image_id

    def remove(self, ref, force=False, in_use=lambda image_id: [], prune=True):
        # type: (str, bool, object, bool) -> list
        """`docker rmi` (runtime/store/rmi.py): [{"Untagged": name}, {"Deleted": id}, ...];
        prune: untagged parents left unused go too."""
        return rmi.remove(self, ref, force, in_use, prune)

    def named_by_id(self, ref, image_id):
        # type: (str, str) -> bool
        """True when ref named the image by id (or prefix), not by one of its names."""
        try:
            name = reference.normalize(ref)
        except InvalidParameter:
            return True
        return self.refs.get(name) != image_id

    def delete(self, image_id):
        # type: (str) -> None
        """Remove the image record, its config, and every layer/blob no other image uses
        (caller holds the lock; its names are the caller's to untag first)."""
        rmi.delete(self, image_id)

    def delete_record(self, image_id):
        # type: (str) -> None
        """Remove only the image's record (rmi.delete, once it knows what else goes)."""
        try:
            os.unlink(self._record_path(image_id))
        finally:
            self._forget_record(image_id)

    def clean_tmp(self):
        # type: () -> None
        """Remove leftovers of operations interrupted by a crash (call at engine start):
        temp names carry their creator's pid (`kind-<pid>-...`); only dead creators' go."""
        with self.lock:
            for name in os.listdir(self.tmp):
                try:
                    pid = int(name.split("-")[1])
                    os.kill(pid, 0)
                    continue
                except (IndexError, ValueError):
                    pass
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
                remove_tree(os.path.join(self.tmp, name))
