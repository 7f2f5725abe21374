"""Tags and digest references: `repositories.json`, {canonical name: image id}.

Writes happen under the store lock and go through a temp file + rename; reads need no lock.
"""

import json
import os

from runtime import TYPE_CHECKING
from runtime.atomicfile import write_json
from runtime.store import reference

if TYPE_CHECKING:
    from typing import Optional, Tuple  # noqa: F401


class ReferenceStore(object):
    """Canonical names (`docker.io/library/busybox:latest`, `...@sha256:...`) -> image ids."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        # (file identity, the map) of the last read: each create and run resolves its image
        # here, and one stat is cheaper than reading and parsing the file (~0.2 ms)
        self._last = None  # type: Optional[Tuple[tuple, dict]]

    def _kept(self):
        # type: () -> dict
        """The map as the file holds it now: the one kept, which nobody may change."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        last = self._last
        if last is None or last[0] != key:
            try:
                with open(self.path) as f:
                    refs = json.load(f).get("refs", {})
            except FileNotFoundError:
                return {}
            self._last = last = (key, refs)
        return last[1]

    def all(self):
        # type: () -> dict
        """{name: image id} for every reference (a copy the caller may change)."""
        return dict(self._kept())

    def get(self, name):
        # type: (str) -> object
        """The image id a canonical name points at, or None."""
        return self._kept().get(name)

    def of(self, image_id):
        # type: (str) -> list
        """Canonical names pointing at image_id, sorted."""
        return sorted(n for n, i in self._kept().items() if i == image_id)

    def by_image(self):
        # type: () -> dict
        """{image id: its canonical names, sorted}, from one read of the file (a listing of
        every image reads it once, not twice per image)."""
        out = {}  # type: dict
        for name, image_id in sorted(self._kept().items()):
            out.setdefault(image_id, []).append(name)
        return out

    def tags_of(self, image_id, names=None):
        # type: (str, list) -> list
        """Familiar `repo:tag` names of image_id (what docker shows as RepoTags); names: its
        canonical names when the caller has them (by_image), else they are read."""
        return [reference.familiar(n) for n in (self.of(image_id) if names is None else names)
                if "@" not in n]

    def digests_of(self, image_id, names=None):
        # type: (str, list) -> list
        """Familiar `repo@sha256:...` names of image_id (RepoDigests); names as for tags_of."""
        return [reference.familiar(n) for n in (self.of(image_id) if names is None else names)
                if "@" in n]

    def replace(self, refs):
        # type: (dict) -> None
        """Write the whole map (caller holds the store lock)."""
        try:
            # compact, as dockerd writes its own: an indent makes json use its pure-Python
            # encoder (500 names on Python 3.6: 0.40 ms, against 0.17 ms compact)
            write_json(self.path, {"refs": refs}, sort_keys=True, durable=True)
        finally:
            self._last = None  # (a new file may reuse the old one's inode number)

    def set(self, names, image_id):
        # type: (list, str) -> list
        """Point names at image_id (moving them off any other image); returns the ids that lost
        a name."""
        refs = self.all()
        moved = [refs[n] for n in names if refs.get(n) not in (None, image_id)]
        for n in names:
            refs[n] = image_id
        self.replace(refs)
        return moved

    def delete(self, names):
        # type: (list) -> None
        """Remove names."""
        refs = self.all()
        for n in names:
            refs.pop(n, None)
        self.replace(refs)
