"""`docker load`: read a `docker save` tarball (old or Docker 25+ layout) or an OCI image layout
tar into the store.

The archive is first staged: each member file goes to tmp/load-<pid>-*/ while it is hashed
(member names are only dictionary keys, never paths). Then every manifest, config and digest
is checked, and only then, under the store lock, layers are unpacked and images recorded.
Any failure removes what this load added, so the store is exactly as before.
"""

import gzip
import json
import os
import posixpath
import tempfile
import zlib

from runtime.errors import InvalidParameter
from runtime.goarch import goarch
from runtime.sha256 import sha256
from runtime.store import manifests, reference, tarstream
from runtime.store.layers import is_gzip_type, remove_tree, sniff_compression

SMALL = 4 << 20  # members up to this size (json) are kept in memory too


class _Member(object):
    __slots__ = ("path", "digest", "size", "data")


class _Staged(object):
    """The archive's files: name -> _Member, symlinks resolved."""

    def __init__(self, tmp_dir):
        self.dir = tempfile.mkdtemp(prefix="load-%d-" % os.getpid(), dir=tmp_dir)
        self.files = {}  # type: dict
        self.links = {}  # type: dict

    def read(self, stream):
        src = tarstream.StreamSource(_maybe_gunzip(stream), hash_it=False)
        pax = {}  # type: dict
        n = 0
        while True:
            try:
                h = tarstream.next_header(src, pax)
            except tarstream.TruncatedError:
                raise InvalidParameter("image archive is truncated") from None
            if h is None:
                break
            name = posixpath.normpath(h.name.lstrip("/")) if h.name.strip("/.") else "."
            if h.type == tarstream.REG:
                n += 1
                self.files[name] = self._stage(src, h.size, n)
            elif h.type in (tarstream.SYM, tarstream.HARD):
                target = h.linkname
                if h.type == tarstream.SYM:
                    target = posixpath.join(posixpath.dirname(name), target)
                self.links[name] = posixpath.normpath(target.lstrip("/"))
                src.skip(h.size + (-h.size % 512))
            else:
                src.skip(h.size + (-h.size % 512))
        src.finish()
        if not self.files:
            raise InvalidParameter("image archive is empty or not a tar file")

    def _stage(self, src, size, n):
        m = _Member()
        m.path = os.path.join(self.dir, str(n))
        h = sha256()
        small = []
        try:
            with open(m.path, "wb") as out:
                left = size
                while left:
                    chunk = src.read(min(left, tarstream.CHUNK))
                    h.update(chunk)
                    out.write(chunk)
                    if size <= SMALL:
                        small.append(chunk)
                    left -= len(chunk)
        except tarstream.TruncatedError:
            raise InvalidParameter("image archive is truncated") from None
        src.skip(-size % 512)
        m.digest = "sha256:" + h.hexdigest()
        m.size = size
        m.data = b"".join(small) if size <= SMALL else None
        return m

    def get(self, name, what):
        # type: (str, str) -> _Member
        name = posixpath.normpath(name.lstrip("/"))
        for _ in range(8):
            if name in self.files:
                return self.files[name]
            if name not in self.links:
                break
            name = self.links[name]
        raise InvalidParameter("image archive has no %s %r" % (what, name))

    def json(self, name, what, kind=None):
        m = self.get(name, what)
        try:
            value = json.loads(m.data.decode("utf-8"))
        except (ValueError, AttributeError):
            raise InvalidParameter("image archive %s %r is not valid JSON" % (what, name)) from None
        if kind is not None and not isinstance(value, kind):
            raise InvalidParameter("image archive %s %r is not a JSON %s"
                                   % (what, name, "object" if kind is dict else "list"))
        return value

    def blob(self, digest, what, size=None):
        # type: (str, str, object) -> _Member
        """The blob digest names, checked against it (and against size when given)."""
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise InvalidParameter("image archive %s has an unsupported digest %r" % (what, digest))
        m = self.get("blobs/sha256/" + digest[7:], what)
        if m.digest != digest:
            raise InvalidParameter("image archive %s digest mismatch: expected %s, got %s"
                                   % (what, digest, m.digest))
        if size is not None and size != m.size:
            raise InvalidParameter("image archive %s %s size mismatch: its descriptor says %r "
                                   "bytes, the archive holds %d" % (what, digest, size, m.size))
        return m


class _Prefixed(object):
    def __init__(self, head, f):
        self.head, self.f = head, f

    def read(self, n):
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.f.read(n)


def _maybe_gunzip(stream, what="image archive"):
    """stream, decompressed when it starts as gzip does; a truncated or corrupt gzip stream is
    an InvalidParameter naming what."""
    head = stream.read(6)
    if head[:2] == b"\x1f\x8b":
        return _Gunzip(gzip.GzipFile(fileobj=_Prefixed(head, stream), mode="rb"), what)
    return _Prefixed(head, stream)


# gzip.BadGzipFile (3.8+; an OSError before) is a bad header
_GZIP_ERRORS = (EOFError, zlib.error, getattr(gzip, "BadGzipFile", zlib.error))


class _Gunzip(object):
    """A GzipFile whose decoding errors are one clear line."""

    def __init__(self, f, what):
        self.f, self.what = f, what

    def read(self, n=-1):
        try:
            return self.f.read(n)
        except EOFError:
            raise InvalidParameter("%s is truncated (its gzip stream ends early)"
                                   % self.what) from None
        except _GZIP_ERRORS as e:
            raise InvalidParameter("%s is not valid gzip: %s" % (self.what, e)) from None


class _Plan(object):
    """One image to record: config bytes, [(member, media type)], refs."""

    def __init__(self, config, layers, refs):
        self.config, self.layers, self.refs = config, layers, refs


def _layer_type(member):
    # type: (_Member) -> str
    with open(member.path, "rb") as f:
        kind = sniff_compression(f.read(6))
    return manifests.OCI_LAYER_GZIP if kind == "gzip" else manifests.OCI_LAYER_TAR


def _config_bytes(member, what):
    data = member.data
    try:
        cfg = json.loads(data.decode("utf-8"))
        ids = cfg["rootfs"]["diff_ids"]
        assert isinstance(ids, list)
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError):
        raise InvalidParameter("image archive config %s is not an image config "
                               "(no rootfs.diff_ids)" % what) from None
    return data, ids


def _plan_docker(st):
    entries = st.json("manifest.json", "manifest.json")
    if not isinstance(entries, list):
        raise InvalidParameter("image archive manifest.json is not a list")
    plans = []
    for e in entries:
        try:
            cfg_name, layer_names = e["Config"], list(e["Layers"])
        except (KeyError, TypeError):
            raise InvalidParameter("image archive manifest.json entry lacks Config or Layers") from None
        config, diff_ids = _config_bytes(st.get(cfg_name, "config"), cfg_name)
        if len(diff_ids) != len(layer_names):
            raise InvalidParameter("image archive config %s lists %d layers, manifest.json %d"
                                   % (cfg_name, len(diff_ids), len(layer_names)))
        layers = []
        for name in layer_names:
            m = st.get(name, "layer")
            layers.append((m, _layer_type(m)))
        refs = [reference.normalize(r) for r in (e.get("RepoTags") or [])]
        plans.append(_Plan(config, layers, refs))
    return plans


def _pick_platform(st, index, what):
    """The manifests of an index that fit this host (every one when none names a platform)."""
    out = []
    for desc in index.get("manifests") or []:
        if not isinstance(desc, dict):
            raise InvalidParameter("image archive %s index lists %r, not a descriptor"
                                   % (what, desc))
        mt = desc.get("mediaType")
        if mt in (manifests.OCI_INDEX, manifests.DOCKER_LIST):
            nested = st.json(_blob_name(st, desc, what), what, dict)
            for d in _pick_platform(st, nested, what):
                d.setdefault("annotations", desc.get("annotations") or {})
                out.append(d)
            continue
        plat = desc.get("platform")
        if plat and (plat.get("os") != "linux" or plat.get("architecture") != goarch()):
            continue
        out.append(desc)
    return out


def _blob_name(st, desc, what):
    st.blob(desc.get("digest"), what, desc.get("size"))
    return "blobs/sha256/" + desc["digest"][7:]


def _oci_ref(annotations):
    name = annotations.get("io.containerd.image.name")
    if not name:
        ref = annotations.get("org.opencontainers.image.ref.name", "")
        name = ref if ("/" in ref or ":" in ref) else None
    if not name:
        return []
    try:
        return [reference.normalize(name)]
    except InvalidParameter:
        return []


def _plan_oci(st):
    index = st.json("index.json", "index.json", dict)
    descs = _pick_platform(st, index, "manifest")
    if not descs:
        raise InvalidParameter("image archive has no image for linux/%s" % goarch())
    plans = []
    for desc in descs:
        man = st.json(_blob_name(st, desc, "manifest"), "manifest", dict)
        cfg_desc = man.get("config") or {}
        lays = man.get("layers") or []
        if not isinstance(cfg_desc, dict) or not isinstance(lays, list) or \
                not all(isinstance(d, dict) for d in lays):
            raise InvalidParameter("image archive manifest %s has a malformed config or layers "
                                   "list" % desc["digest"])
        config, diff_ids = _config_bytes(st.blob(cfg_desc.get("digest"), "config",
                                                 cfg_desc.get("size")), cfg_desc.get("digest"))
        if len(lays) != len(diff_ids):
            raise InvalidParameter("image archive manifest %s lists %d layers, its config %d"
                                   % (desc["digest"], len(lays), len(diff_ids)))
        layers = []
        for d in lays:
            is_gzip_type(d.get("mediaType"))  # refuses zstd, foreign, unknown by name
            layers.append((st.blob(d.get("digest"), "layer", d.get("size")), d["mediaType"]))
        plans.append(_Plan(config, layers, _oci_ref(desc.get("annotations") or {})))
    return plans


def load(store, stream):
    # type: (object, object) -> list
    """Load every image of a docker-save or OCI-layout tar from stream; returns the loaded
    references (familiar, e.g. busybox:latest), or image ids for untagged images."""
    st = _Staged(store.tmp)
    try:
        st.read(stream)
        if "manifest.json" in st.files:
            plans = _plan_docker(st)
        elif "index.json" in st.files:
            plans = _plan_oci(st)
        else:
            raise InvalidParameter("not an image archive: it has neither manifest.json "
                                   "(docker save) nor index.json (OCI image layout)")
        return _commit(store, plans)
    finally:
        remove_tree(st.dir)


def _commit(store, plans):
    loaded = []
    with store.lock:
        added = []
        old_refs = store.refs.all()
        old_ids = set(store.ids())
        try:
            for plan in plans:
                layers = []
                for member, mt in plan.layers:
                    if not store.blobs.has(member.digest):
                        store.blobs.adopt(member.path, member.digest)
                        added.append(member.digest)
                    layers.append((member.digest, mt, member.size))
                image_id = store.create_image(plan.config, layers, plan.refs)
                loaded.extend([reference.familiar(r) for r in plan.refs] or [image_id])
        except BaseException:
            for image_id in set(store.ids()) - old_ids:
                store.delete(image_id)
            if store.refs.all() != old_refs:
                store.refs.replace(old_refs)
            for digest in added:
                store.blobs.remove(digest)
            raise
    return loaded
