"""`cachefrom`: images whose steps a build may reuse. A local cache hit counts only when its
image is one of them or one of their ancestors; and, as Docker does for images pulled
without their parents, a step also matches when a source's history continues the image
being built (same history entries, same layers so far) with this very step: its layer (if
any) is taken from the source and a new image is recorded with the config the step makes."""

import json

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from typing import Any, List, Optional  # noqa: F401


def _same(a, b):
    # type: (dict, dict) -> bool
    return (a.get("created_by", ""), bool(a.get("empty_layer")), a.get("comment", "")) == \
        (b.get("created_by", ""), bool(b.get("empty_layer")), b.get("comment", ""))


class CacheSources(object):
    """The resolved cachefrom images (names that do not resolve are ignored, as docker)."""

    def __init__(self, store, refs):
        # type: (Any, List[str]) -> None
        self.store = store
        self.sources = []  # type: List[tuple]  # (config, layer tuples)
        self.allowed = set()  # type: set
        for ref in refs:
            try:
                image_id = store.resolve(ref)
            except (NotFound, InvalidParameter):
                continue
            cfg = store.image_config(image_id)
            layers = [(lay["digest"], lay["mediaType"], lay["size"])
                      for lay in store.record(image_id)["layers"]]
            self.sources.append((cfg, layers))
            while image_id and image_id not in self.allowed:
                self.allowed.add(image_id)
                try:
                    image_id = store.record(image_id).get("parent") or ""
                except NotFound:
                    break

    def match(self, image, parent_id, created_by, config):
        # type: (dict, str, str, dict) -> str
        """The id of an image for this step restored from a source, or ""."""
        history = image.get("history") or []
        diff_ids = (image.get("rootfs") or {}).get("diff_ids") or []
        n, k = len(history), len(diff_ids)
        for cfg, layers in self.sources:
            h = cfg.get("history") or []
            d = (cfg.get("rootfs") or {}).get("diff_ids") or []
            if len(h) <= n or d[:k] != diff_ids:
                continue
            if not all(_same(a, b) for a, b in zip(h[:n], history)):
                continue
            nxt = h[n]
            if nxt.get("created_by") != created_by:
                continue
            kk = k if nxt.get("empty_layer") else k + 1
            if len(d) < kk or len(layers) < kk:
                continue
            new = json.loads(json.dumps(image))
            new["config"] = config
            new["created"] = nxt.get("created", new.get("created"))
            new["history"] = h[:n + 1]
            new["rootfs"] = {"type": "layers", "diff_ids": d[:kk]}
            data = json.dumps(new, separators=(",", ":")).encode()
            return self.store.create_image(data, layers[:kk], (), parent=parent_id)
        return ""
