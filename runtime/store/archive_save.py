"""`docker save`: write images as a tar in Docker 25+'s layout, which is at once a `docker save`
tarball (manifest.json, repositories) and an OCI image layout (oci-layout, index.json,
blobs/sha256/...). Layers go in uncompressed, as Docker writes them (a gzip blob is
decompressed on the way and checked against its diff_id); fmt="oci" keeps blobs as stored
and writes only the OCI layout.
"""

import io
import json
import os
import tarfile
import tempfile
import zlib

from runtime.errors import InvalidParameter
from runtime.store import manifests, reference
from runtime.store.layers import is_gzip_type

EPOCH = 0


def _info(name, size=0, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mtime = size, kind, EPOCH
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti


class _Writer(object):
    def __init__(self, store, out):
        self.store = store
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.written = set()
        self.tf.addfile(_info("blobs", kind=tarfile.DIRTYPE))
        self.tf.addfile(_info("blobs/sha256", kind=tarfile.DIRTYPE))

    def add_bytes(self, name, data):
        self.tf.addfile(_info(name, len(data)), io.BytesIO(data))

    def add_blob_bytes(self, data):
        digest = manifests.digest(data)
        if digest not in self.written:
            self.written.add(digest)
            self.add_bytes("blobs/sha256/" + digest[7:], data)
        return digest

    def add_layer(self, lay, keep_compressed):
        # type: (dict, bool) -> dict
        """Write one layer blob; returns its descriptor in the archive."""
        gz = is_gzip_type(lay["mediaType"])
        if gz and not keep_compressed:
            digest = lay["diffId"]
            if digest not in self.written:
                self.written.add(digest)
                with tempfile.TemporaryFile(dir=self.store.tmp) as tmp:
                    got, size = _gunzip(self.store.blobs.path(lay["digest"]), tmp)
                    if got != digest:
                        raise InvalidParameter("stored layer %s decompresses to %s, not %s: the "
                                               "store is damaged" % (lay["digest"], got, digest))
                    tmp.seek(0)
                    self.tf.addfile(_info("blobs/sha256/" + digest[7:], size), tmp)
            else:
                size = self.store.layers.size(digest)
            return {"mediaType": manifests.OCI_LAYER_TAR, "digest": digest, "size": size}
        digest = lay["digest"]
        if digest not in self.written:
            self.written.add(digest)
            path = self.store.blobs.path(digest)
            with open(path, "rb") as f:
                self.tf.addfile(_info("blobs/sha256/" + digest[7:], os.fstat(f.fileno()).st_size), f)
        media = manifests.OCI_LAYER_GZIP if gz else manifests.OCI_LAYER_TAR
        return {"mediaType": media, "digest": digest, "size": self.store.blobs.size(digest)}


def _gunzip(path, out):
    from runtime.sha256 import sha256
    h, n = sha256(), 0
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as f:
        while True:
            raw = f.read(1 << 20)
            data = z.decompress(raw) if raw else z.flush()
            while z.eof and z.unused_data:
                rest = z.unused_data
                z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data += z.decompress(rest)
            h.update(data)
            out.write(data)
            n += len(data)
            if not raw:
                break
    return "sha256:" + h.hexdigest(), n


def _expand(store, ref):
    """A bare repository name (`busybox`) means all its tags, as `docker save` does."""
    try:
        repo, tag, digest = reference.split(ref)
    except InvalidParameter:
        return [ref]
    if tag or digest:
        return [ref]
    tags = sorted(n for n in store.refs.all() if "@" not in n and reference.repository(n) == repo)
    return tags or [ref]


def _targets(store, refs):
    """[(image id, [canonical names to record])] in request order, one entry per image."""
    order, names = [], {}
    for ref in [r for given in refs for r in _expand(store, given)]:
        image_id = store.resolve(ref)
        if image_id not in names:
            order.append(image_id)
            names[image_id] = []
        by_id = store.named_by_id(ref, image_id)
        if not by_id:
            name = reference.normalize(ref)
            if "@" not in name and name not in names[image_id]:
                names[image_id].append(name)
    return [(i, names[i]) for i in order]


def save(store, refs, out, fmt="docker"):
    # type: (object, list, object, str) -> None
    """Write the images named by refs (names, ids) to the binary stream out."""
    if fmt not in ("docker", "oci"):
        raise InvalidParameter("unknown archive format %r: use docker or oci" % fmt)
    if not refs:
        raise InvalidParameter("nothing to save: name at least one image")
    targets = _targets(store, refs)
    w = _Writer(store, out)
    index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": []}
    entries, repos = [], {}
    for image_id, names in targets:
        rec = store.record(image_id)
        with store.blobs.open(image_id) as f:
            config = f.read()
        w.add_blob_bytes(config)
        descs = [w.add_layer(lay, fmt == "oci") for lay in rec["layers"]]
        man = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST,
                          "config": {"mediaType": manifests.OCI_CONFIG, "digest": image_id,
                                     "size": len(config)},
                          "layers": descs}, indent=3).encode()
        man_digest = w.add_blob_bytes(man)
        desc = {"mediaType": manifests.OCI_MANIFEST, "digest": man_digest, "size": len(man)}
        if not names:
            index["manifests"].append(desc)
        for name in names:
            one = dict(desc)
            one["annotations"] = {"io.containerd.image.name": name,
                                  "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
            index["manifests"].append(one)
            repo, tag = name.rsplit(":", 1)
            repos.setdefault(reference.familiar(repo + ":x")[:-2], {})[tag] = descs[-1]["digest"][7:] \
                if descs else image_id[7:]
        entries.append({"Config": "blobs/sha256/" + image_id[7:],
                        "RepoTags": [reference.familiar(n) for n in names] or None,
                        "Layers": ["blobs/sha256/" + d["digest"][7:] for d in descs]})
    w.add_bytes("index.json", json.dumps(index).encode())
    if fmt == "docker":
        w.add_bytes("manifest.json", json.dumps(entries).encode())
        if repos:
            w.add_bytes("repositories", json.dumps(repos).encode())
    w.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    w.tf.close()
