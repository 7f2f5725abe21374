"""runtime.store: the image store (see docs/images.md).

images.ImageStore is the store's surface: blobs (content-addressed files), layers + unpack +
tarstream + tarheader (layer tars to overlay lower dirs), refs + reference (names),
manifests, image records, the lock. The operations over a store are modules that take one:
archive_load / archive_save (docker save and OCI layout), newlayer (import, commit), rmi,
changes (--change lines); overlay mounts many layers. Nothing outside ImageStore touches its
files or its private methods.
"""
