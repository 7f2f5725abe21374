"""The step cache: one small file per step key under `<data-root>/build/cache/`, holding the id
of the image that step made. A key is the sha256 of the parent image id, the step's text
(variables expanded; a RUN's carries the build args in scope, as `|N K=V ...`) and, for
COPY/ADD, the content checksum; a hit is used only while that image still exists on that
parent."""

import hashlib
import json
import os

from runtime import atomicfile
from runtime.errors import NotFound


class StepCache(object):
    """Keys -> image ids; `allowed` (a set of image ids) limits hits to --cache-from images."""

    def __init__(self, root):
        # type: (str) -> None
        self.root = root
        os.makedirs(root, exist_ok=True)

    @staticmethod
    def key(parent, text, checksum=""):
        # type: (str, str, str) -> str
        """The step key."""
        blob = json.dumps([parent, text, checksum], separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8", "surrogateescape")).hexdigest()

    def get(self, key, parent, store, allowed=None):
        # type: (str, str, object, set) -> str
        """The cached image id, or "" when there is none (or it is gone, or not allowed)."""
        try:
            with open(os.path.join(self.root, key)) as f:
                image_id = f.read().strip()
            rec = store.record(image_id)
        except (OSError, NotFound, ValueError):
            return ""
        if (rec.get("parent") or "") != parent:
            return ""
        if allowed is not None and image_id not in allowed:
            return ""
        return image_id

    def put(self, key, image_id):
        # type: (str, str) -> None
        """Remember key -> image_id (temp + rename)."""
        atomicfile.write_text(os.path.join(self.root, key), image_id)

    def prune(self, before=None):
        # type: (float) -> tuple
        """Forget every step (made before `before`, seconds since the epoch, when given);
        returns (the keys, the bytes their records took)."""
        deleted, size = [], 0
        for key in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, key)
            try:
                st = os.stat(path)
                if before is not None and st.st_mtime >= before:
                    continue
                os.unlink(path)
            except OSError:
                continue
            deleted.append(key)
            size += st.st_size
        return deleted, size
