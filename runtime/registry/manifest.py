"""Manifests: the four media types (Docker v2 manifest and manifest list, OCI manifest and
index), parsing into config + layers, and platform selection in an index for this host.
"""

import json
import os

from runtime.errors import InvalidParameter, NotFound
from runtime.goarch import arch_variant

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEXES = (DOCKER_LIST, OCI_INDEX)
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

class Descriptor(object):
    """A content descriptor: media type, digest, size (and platform in an index)."""

    def __init__(self, doc):
        # type: (dict) -> None
        try:
            self.media_type = doc.get("mediaType", "")
            self.digest = doc["digest"]
            self.size = int(doc["size"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InvalidParameter("manifest has a malformed descriptor: %r" % (doc,)) from None
        self.platform = doc.get("platform") or {}
        self.urls = doc.get("urls") or []


class Manifest(object):
    """A parsed manifest: `media_type`, and either `config` + `layers` or `manifests`."""

    def __init__(self, raw, media_type=None):
        # type: (bytes, str) -> None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidParameter("registry sent a manifest that is not JSON") from None
        if not isinstance(doc, dict):
            raise InvalidParameter("registry sent a manifest that is not a JSON object")
        mt = doc.get("mediaType") or media_type or ""
        if mt in SCHEMA1 or doc.get("schemaVersion") == 1:
            raise InvalidParameter("image uses the deprecated schema 1 manifest format, which berth "
                                   "does not support: push it again with a current client")
        if not mt or mt == "application/json":
            mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
        if mt not in INDEXES + MANIFESTS:
            raise InvalidParameter("unsupported manifest media type %r" % mt)
        self.raw = raw
        self.media_type = mt
        self.is_index = mt in INDEXES
        if self.is_index:
            self.manifests = [Descriptor(d) for d in doc.get("manifests") or []]
        else:
            if "config" not in doc:
                raise InvalidParameter("manifest has no config")
            self.config = Descriptor(doc["config"])
            self.layers = [Descriptor(d) for d in doc.get("layers") or []]


def host_platform():
    # type: () -> tuple
    """(os, architecture, variant) of this host in OCI terms, e.g. ("linux", "amd64", "")."""
    arch, variant = arch_variant(os.uname().machine)
    return ("linux", arch, variant or ("v8" if arch == "arm64" else ""))


def parse_platform(spec):
    # type: (str) -> tuple
    """"linux/arm64/v8" -> ("linux", "arm64", "v8"); None or "" -> this host."""
    if not spec:
        return host_platform()
    parts = spec.lower().split("/")
    if len(parts) == 1:
        parts = ["linux"] + parts
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidParameter("invalid platform %r: use os/arch[/variant], e.g. linux/amd64" % spec)
    arch, variant = arch_variant(parts[1])
    return (parts[0], arch, variant or (parts[2] if len(parts) == 3 else ""))


def select(index, want, name):
    # type: (Manifest, tuple, str) -> Descriptor
    """The descriptor in `index` for platform `want` (os, arch, variant); a missing variant on
    either side matches. NotFound names the platforms the index has."""
    os_, arch, variant = want
    best = None
    for d in index.manifests:
        p = d.platform
        if p.get("os", "linux") != os_ or p.get("architecture") != arch:
            continue
        v = p.get("variant", "")
        if v == variant:
            return d
        if best is None and (not v or not variant or (arch == "arm64" and {v, variant} <= {"", "v8"})):
            best = d
    if best is not None:
        return best
    have = sorted("/".join(x for x in (d.platform.get("os"), d.platform.get("architecture"),
                                       d.platform.get("variant")) if x) for d in index.manifests)
    raise NotFound("no matching manifest for %s in the manifest list entries of %s (it has: %s)"
                   % ("/".join(x for x in want if x), name, ", ".join(have) or "none"))
