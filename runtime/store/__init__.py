"""runtime.store: the image store (see docs/images.md).

images.ImageStore is the facade; blobs (content-addressed files), layers + unpack + tarstream +
tarheader (layer tars to overlay lower dirs), refs + reference (names), manifests,
archive_load / archive_save (docker save and OCI layout), newlayer (import, commit),
changes (--change lines), rmi, lock, overlay (mounting many layers).
"""
