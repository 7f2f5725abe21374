"""The `local` volume driver: `<data-root>/volumes/<name>/_data` plus `<name>/volume.json`
(CreatedAt, Labels, Options), written temp-then-rename so a volume is either whole or absent."""

import binascii
import os
import re
import shutil
import threading
import time

from runtime.atomicfile import read_json, write_json
from runtime.errors import InvalidParameter, NotFound
from runtime.timefmt import rfc3339

VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class LocalVolumes(object):
    """Named and anonymous volumes under one root directory."""

    def __init__(self, root, owner=None):
        # type: (str, tuple) -> None
        self.root = root
        self.owner = owner  # (uid, gid) of each new volume's _data: a remapped root's (userns-remap)
        self.lock = threading.RLock()
        os.makedirs(root, exist_ok=True)

    def path(self, name):
        # type: (str) -> str
        return os.path.join(self.root, name)

    def exists(self, name):
        # type: (str) -> bool
        return bool(name) and VALID_NAME.match(name) is not None and \
            os.path.exists(os.path.join(self.path(name), "volume.json"))

    def create(self, name=None, labels=None, options=None, anonymous=False):
        # type: (str, dict, dict, bool) -> dict
        """The volume's Docker JSON; an existing name is returned unchanged."""
        if options:
            raise InvalidParameter("local volume options (%s) are not supported yet: create the volume "
                                   "without -o/--opt" % ", ".join(sorted(options)))
        if not name:
            name = binascii.hexlify(os.urandom(32)).decode()
            anonymous = True
        if not VALID_NAME.match(name):
            raise InvalidParameter("invalid volume name %r: use [a-zA-Z0-9][a-zA-Z0-9_.-] (2+ characters)"
                                   % name)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self.lock:
            if self.exists(name):
                return self.inspect(name)
            d = self.path(name)
            os.makedirs(os.path.join(d, "_data"), exist_ok=True)
            os.chmod(os.path.join(d, "_data"), 0o755)
            if self.owner:
                os.chown(os.path.join(d, "_data"), *self.owner)
            write_json(os.path.join(d, "volume.json"),
                       {"CreatedAt": rfc3339(time.time(), nanos=False),
                        "Labels": labels, "Options": options or None}, durable=True)
        return self.inspect(name)

    def inspect(self, name):
        # type: (str) -> dict
        """Docker's Volume object; NotFound when there is none."""
        meta = read_json(os.path.join(self.path(name), "volume.json")) if self.exists(name) else None
        if meta is None:
            raise NotFound("get %s: no such volume" % name)
        return {"Name": name, "Driver": "local", "Mountpoint": os.path.join(self.path(name), "_data"),
                "CreatedAt": meta.get("CreatedAt"), "Labels": meta.get("Labels") or {},
                "Scope": "local", "Options": meta.get("Options")}

    def names(self):
        # type: () -> list
        return sorted(n for n in os.listdir(self.root) if self.exists(n))

    def remove(self, name):
        # type: (str) -> int
        """Delete the volume and its data; returns the bytes freed."""
        with self.lock:
            self.inspect(name)
            d = self.path(name)
            size = disk_usage(os.path.join(d, "_data"))
            os.unlink(os.path.join(d, "volume.json"))  # from here on it no longer exists
            shutil.rmtree(d, ignore_errors=True)
            return size


def disk_usage(path):
    # type: (str) -> int
    """Bytes used by regular files under path."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
