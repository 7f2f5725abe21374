"""Image manifests and their media types (Docker schema 2 and OCI)."""

import json

from runtime.sha256 import sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

_TO_OCI = {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP, DOCKER_LAYER_TAR: OCI_LAYER_TAR,
           "application/x-tar": OCI_LAYER_TAR}


def digest(data):
    # type: (bytes) -> str
    """`sha256:<hex>` of bytes."""
    return "sha256:" + sha256(data).hexdigest()


def media_type(manifest):
    # type: (bytes) -> str
    """The mediaType a manifest declares (OCI when it declares none)."""
    try:
        return json.loads(manifest.decode("utf-8")).get("mediaType") or OCI_MANIFEST
    except (ValueError, AttributeError):
        return OCI_MANIFEST


def build(config_digest, config_size, layers, oci=None):
    # type: (str, int, list, bool) -> tuple
    """(manifest bytes, media type) for a config and layer records ({"digest", "mediaType",
    "size"}): Docker schema 2 when every layer has a Docker media type (and oci is not True),
    else OCI with Docker layer types mapped to their OCI twins."""
    if oci is None:
        oci = not all(lay["mediaType"].startswith("application/vnd.docker.") for lay in layers)
    if oci:
        mt, cfg = OCI_MANIFEST, OCI_CONFIG
        descs = [{"mediaType": _TO_OCI.get(lay["mediaType"], lay["mediaType"]),
                  "digest": lay["digest"], "size": lay["size"]} for lay in layers]
    else:
        mt, cfg = DOCKER_MANIFEST, DOCKER_CONFIG
        descs = [{"mediaType": lay["mediaType"], "digest": lay["digest"], "size": lay["size"]}
                 for lay in layers]
    body = {"schemaVersion": 2, "mediaType": mt,
            "config": {"mediaType": cfg, "digest": config_digest, "size": config_size},
            "layers": descs}
    return json.dumps(body, indent=3).encode(), mt
