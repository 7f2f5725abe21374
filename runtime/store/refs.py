"""Tags and digest references: {canonical name: image id}, kept in two files beside each other:

- `repositories.json`: the map as of its last rewrite, `{"refs": {...}}` (dockerd's format);
- `repositories.log`: the changes since, one JSON line each (`{"set": {name: id}}` or
  `{"delete": [names]}`), appended and fsynced.

A change is one short append whatever the number of names: a pull into a store of 500 images
used to rewrite ~50 KB and read it back. The map is rewritten whole (compacted) when the log
grows as long as the map, when the map does not exist yet, and when the log's last change was
cut short, so a read never replays more than the map's own size and a later change never lands
on a torn line. A change counts once its newline is in: a last line without one was never
acknowledged and is left out.

Writes happen under the store lock; reads need no lock. A read takes the map, then the log,
then checks that the map was not replaced meanwhile (a compaction renames the new map in before
it removes the log), so it never mixes a new map with an old log's part.
"""

import json
import os

from runtime import TYPE_CHECKING
from runtime.atomicfile import fsync_dir, write_all, write_json
from runtime.store import reference

if TYPE_CHECKING:
    from typing import List, Optional, Tuple  # noqa: F401

LOG_MIN = 8192  # the log may grow to this even beside a smaller map (a compaction is cheap there)


class ReferenceStore(object):
    """Canonical names (`docker.io/library/busybox:latest`, `...@sha256:...`) -> image ids."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        self.log_path = os.path.splitext(path)[0] + ".log"
        # the last read: (files' identity, the map, map bytes, log bytes, log ends torn). Each
        # create and run resolves its image here, and two stats are cheaper than reading and
        # parsing the files; a change made here updates it without reading them back.
        self._last = None  # type: Optional[Tuple[tuple, dict, int, int, bool]]

    # ------------------------------------------------------------------ reading

    def _identity(self):
        # type: () -> tuple
        return (_stat_key(self.path), _stat_key(self.log_path, log=True))

    def _kept(self):
        # type: () -> dict
        """The map as the files hold it now: the one kept, which nobody may change."""
        return self._read()[1]

    def _read(self):
        # type: () -> Tuple[tuple, dict, int, int, bool]
        last = self._last
        if last is not None and last[0] == self._identity():
            return last
        for _ in range(100):
            base_key, refs, base_len = _read_map(self.path)
            log_key, changes, log_len, torn = _read_log(self.log_path)
            if _stat_key(self.path) == base_key:
                break
            # compacted meanwhile: the log read may belong to the new map; read both again
        for change in changes:
            _apply(refs, change)
        self._last = last = ((base_key, log_key), refs, base_len, log_len, torn)
        return last

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
        """{image id: its canonical names, sorted}, from one read of the files (a listing of
        every image reads them once, not twice per image)."""
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

    def torn(self):
        # type: () -> bool
        """True when the log's last change was cut short (a crash during its write)."""
        return self._read()[4]

    # ------------------------------------------------------------------ writing (store lock held)

    def replace(self, refs):
        # type: (dict) -> None
        """Write the whole map and drop the log."""
        try:
            # compact, as dockerd writes its own: an indent makes json use its pure-Python
            # encoder (500 names on Python 3.6: 0.40 ms, against 0.17 ms compact)
            write_json(self.path, {"refs": refs}, sort_keys=True, durable=True)
            try:
                # not made durable: replaying the whole old log over the new map changes
                # nothing, and the next log's creation fsyncs the directory
                os.unlink(self.log_path)
            except FileNotFoundError:
                pass
            st = os.stat(self.path)
            self._last = ((_map_key(st), None), dict(refs), st.st_size, 0, False)
        except BaseException:
            self._last = None
            raise

    def compact(self):
        # type: () -> None
        """Rewrite the map with the log's changes in (and without a torn last line), when there
        is a log."""
        if os.path.exists(self.log_path):
            self.replace(self.all())

    def set(self, names, image_id):
        # type: (list, str) -> list
        """Point names at image_id (moving them off any other image); returns the ids that lost
        a name."""
        refs = self.all()
        moved = [refs[n] for n in names if refs.get(n) not in (None, image_id)]
        if all(refs.get(n) == image_id for n in names):
            return moved  # (nothing to write: a load or pull of what is there already)
        for n in names:
            refs[n] = image_id
        self._change({"set": dict((n, image_id) for n in names)}, refs)
        return moved

    def delete(self, names):
        # type: (list) -> None
        """Remove names."""
        refs = self.all()
        if not any(n in refs for n in names):
            return
        for n in names:
            refs.pop(n, None)
        self._change({"delete": sorted(names)}, refs)

    def _change(self, change, refs):
        # type: (dict, dict) -> None
        """Append change to the log (refs: the map with it applied), or compact into refs."""
        (base_key, log_key), _, base_len, log_len, torn = self._read()
        line = (json.dumps(change, sort_keys=True) + "\n").encode("utf-8")
        if base_key is None or torn or log_len + len(line) > max(base_len, LOG_MIN):
            self.replace(refs)
            return
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o666)
            try:
                write_all(fd, line)
                os.fsync(fd)
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if log_key is None:
                fsync_dir(os.path.dirname(self.path) or ".")
            self._last = ((base_key, (st.st_ino, st.st_size)), dict(refs), base_len, st.st_size,
                          False)
        except BaseException:
            self._last = None  # (a part of the line may be in: the next read finds it torn)
            raise


def _stat_key(path, log=False):
    # type: (str, bool) -> Optional[tuple]
    """A file's identity for the cache: the map's (inode, mtime, size), the log's (inode, size)
    (it only grows, or is replaced); None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size) if log else _map_key(st)


def _map_key(st):
    # type: (os.stat_result) -> tuple
    """The map's identity: a rewrite is a new file (a rename), and an inode number may be reused."""
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_map(path):
    # type: (str) -> Tuple[Optional[tuple], dict, int]
    """(identity, the map, its size in bytes) of repositories.json; ({}, 0) when absent."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None, {}, 0
    with f:
        st = os.fstat(f.fileno())
        data = f.read()
    refs = json.loads(data.decode("utf-8")).get("refs", {})
    return _map_key(st), refs, len(data)


def _read_log(path):
    # type: (str) -> Tuple[Optional[tuple], List[dict], int, bool]
    """(identity, the changes, bytes read, whether the last line is cut short) of the log."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None, [], 0, False
    with f:
        st = os.fstat(f.fileno())
        data = f.read()
    whole, _, tail = data.rpartition(b"\n")
    text = whole.decode("utf-8")
    try:
        # one parse for all the lines (json's C scanner), not one per line
        changes = json.loads("[" + text.replace("\n", ",") + "]") if text else []
    except ValueError:
        changes = []
        for n, line in enumerate(text.split("\n"), 1):
            try:
                changes.append(json.loads(line))
            except ValueError:
                raise ValueError("%s: line %d is not a reference change" % (path, n)) from None
    for n, change in enumerate(changes, 1):
        if not _valid(change):
            raise ValueError("%s: line %d is not a reference change" % (path, n))
    return (st.st_ino, len(data)), changes, len(data), bool(tail)


def _valid(change):
    # type: (object) -> bool
    if not isinstance(change, dict) or len(change) != 1:
        return False
    if "set" in change:
        return isinstance(change["set"], dict)
    return isinstance(change.get("delete"), list)


def _apply(refs, change):
    # type: (dict, dict) -> None
    if "set" in change:
        refs.update(change["set"])
    else:
        for n in change["delete"]:
            refs.pop(n, None)
