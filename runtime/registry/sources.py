"""Where blobs came from or went to (`registry host` -> repositories), so a push can ask the
registry for a cross-repository mount instead of uploading. Kept in one small JSON file,
rewritten temp-then-rename; losing it only costs an upload."""

import json
import os
import threading

from runtime.atomicfile import write_json

MAX_PER_BLOB = 5


class BlobSources(object):
    """digest -> ["host/repo/path", ...] in the file at `path`."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        self._lock = threading.Lock()

    def _load(self):
        try:
            with open(self.path) as f:
                doc = json.load(f)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def candidates(self, digest, host, exclude=None):
        # type: (str, str, str) -> list
        """Repository paths on `host` known to hold `digest` (not `exclude`)."""
        prefix = host + "/"
        return [r[len(prefix):] for r in self._load().get(digest, [])
                if r.startswith(prefix) and r[len(prefix):] != exclude]

    def record(self, digests, host, repo_path):
        # type: (list, str, str) -> None
        """Remember that `host/repo_path` holds each of `digests`."""
        name = "%s/%s" % (host, repo_path)
        with self._lock:
            doc = self._load()
            changed = False
            for d in digests:
                repos = doc.setdefault(d, [])
                if name not in repos:
                    repos.insert(0, name)
                    del repos[MAX_PER_BLOB:]
                    changed = True
            if not changed:
                return
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_json(self.path, doc)


def record_image(sources, repo, m):
    # type: (BlobSources, object, object) -> None
    """Remember that `repo` holds manifest `m`'s config and layers, when `sources` is kept at all.
    A write that fails is ignored: losing the record only costs an upload later."""
    if sources is None:
        return
    try:
        sources.record([m.config.digest] + [d.digest for d in m.layers], repo.endpoint.host, repo.path)
    except OSError:
        pass
