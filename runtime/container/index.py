"""The engine's index of containers on disk: lookup by id, id prefix or name; recovery after a
restart is just re-reading every `config.v2.json` (the state lives in files and /proc)."""

import os
import shutil
import threading
import time
import types

from runtime import TYPE_CHECKING
from runtime.container.state import Container
from runtime.errors import InvalidParameter, NotFound

DELETER_LINGER = 2.0  # seconds the deleting thread waits for more work before it ends

if TYPE_CHECKING:
    from typing import Callable, Optional  # noqa: F401


class ContainerIndex(object):
    """Containers under `root`, loaded once and kept in memory."""

    def __init__(self, root):
        # type: (str) -> None
        self.root = root
        self.lock = threading.RLock()
        self.gone = threading.Condition(self.lock)  # notify_gone(): a removal is complete
        self.by_id = {}  # type: dict
        # name -> id, kept with by_id: a create checks its name and a lookup by name finds
        # its container without walking every container (1,200 of them: ~2.5 ms a create)
        self._names = {}  # type: dict
        self.removing = set()  # type: set  # discarded, removal not complete yet
        # every container mounts its root here, each in its own mount namespace: a shared,
        # never-deleted mount point spares a mkdir + rmdir per container
        self.rootfs_mount = os.path.join(root, ".rootfs")
        os.makedirs(self.rootfs_mount, exist_ok=True)
        # a removed container's directory is renamed into .trash/ (it is gone at once) and
        # deleted there by a background thread: ~10 unlinks and rmdirs on a journal that may be
        # busy cost 5-25 ms, which `run --rm` (waiting for condition=removed) would wait for
        self.trash = os.path.join(root, ".trash")
        os.makedirs(self.trash, exist_ok=True)
        self._doomed = []  # type: list
        self._deleter = None  # type: Optional[threading.Thread]
        self._deleting = threading.Condition(threading.Lock())
        for entry in os.listdir(self.trash):  # removals the last engine did not finish
            self._delete_later(os.path.join(self.trash, entry))
        for entry in os.listdir(root):
            path = os.path.join(root, entry)
            if entry.startswith(".removing-"):  # left by an older engine
                self._delete_later(path)
                continue
            if entry.startswith("."):
                continue
            try:
                c = Container.load(path)
            except (OSError, ValueError):
                continue
            self.by_id[c.id] = c
            self._names[c.name] = c.id

    def all(self):
        # type: () -> list
        with self.lock:
            return sorted(self.by_id.values(), key=lambda c: c.cfg["Created"], reverse=True)

    def using_image(self, image_id):
        # type: (str) -> list
        """Ids of the containers (any state) created from image_id."""
        return [c.id for c in self.all() if c.cfg["ImageID"] == image_id]

    def using_volume(self, name):
        # type: (str) -> list
        """Ids of the containers (any state) that mount the named volume."""
        return [c.id for c in self.all()
                if any(m["Type"] == "volume" and m.get("Name") == name for m in c.cfg["Mounts"])]

    def names(self):
        # type: () -> types.MappingProxyType
        """{name: id} of every container, read-only and live (it changes with the index)."""
        return types.MappingProxyType(self._names)

    def rename(self, c, new_name):
        # type: (Container, str) -> None
        """Give c new_name (the caller holds the lock, has checked that the name is free, and
        saves c)."""
        with self.lock:
            if self._names.get(c.name) == c.id:
                del self._names[c.name]
            c.cfg["Name"] = new_name
            self._names[new_name] = c.id

    def get(self, ref):
        # type: (str) -> Container
        """By full id, name ("/name" too) or unique id prefix; NotFound otherwise."""
        if not ref:
            raise InvalidParameter("a container name or id is required")
        with self.lock:
            if ref in self.by_id:
                return self.by_id[ref]
            cid = self._names.get(ref.lstrip("/"))
            if cid is not None:
                return self.by_id[cid]
            hits = [c for c in self.by_id.values() if c.id.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidParameter("multiple containers match the id prefix %s: give more characters" % ref)
        raise NotFound("No such container: %s" % ref)

    def add(self, c):
        # type: (Container) -> None
        with self.lock:
            self.by_id[c.id] = c
            self._names[c.name] = c.id

    def claim_removal(self, c):
        # type: (Container) -> bool
        """Mark c as being removed; False when another removal has it already or it is gone
        (a `rm -f` and the AutoRemove its kill set off must not both remove it)."""
        with self.gone:
            if c.id in self.removing or self.by_id.get(c.id) is not c:
                return False
            self.removing.add(c.id)
            return True

    def notify_gone(self, cid):
        # type: (str) -> None
        """Wake wait_gone(): the removal (directory, cgroup, volumes) of cid is complete."""
        with self.gone:
            self.removing.discard(cid)
            self.gone.notify_all()

    def wait_gone(self, cid, timeout=None):
        # type: (str, float) -> bool
        """Block until the container is discarded and notify_gone() was called; False on timeout."""
        deadline = None if timeout is None else time.time() + timeout
        with self.gone:
            while cid in self.by_id or cid in self.removing:
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    return False
                self.gone.wait(left)
        return True

    def discard(self, c, before_delete=None):
        # type: (Container, Optional[Callable[[], object]]) -> None
        """Forget c and delete its directory (renamed into the trash at once, deleted in the
        background, after before_delete() returns: e.g. once its monitor is gone, which may
        still hold the overlay mounted on it)."""
        with self.lock:
            if self.by_id.pop(c.id, None) is not None:
                self.removing.add(c.id)
            if self._names.get(c.name) == c.id:
                del self._names[c.name]
        trash = os.path.join(self.trash, c.id)
        try:
            os.rename(c.path, trash)
        except FileNotFoundError:
            return
        self._delete_later(trash, before_delete)

    def _delete_later(self, path, before_delete=None):
        # type: (str, Optional[Callable[[], object]]) -> None
        with self._deleting:
            self._doomed.append((path, before_delete))
            if self._deleter is None:
                self._deleter = threading.Thread(target=self._delete_loop, name="container-rm")
                self._deleter.daemon = True
                self._deleter.start()
            else:
                self._deleting.notify_all()  # it may be lingering

    def _delete_loop(self):
        # type: () -> None
        while True:
            with self._deleting:
                if not self._doomed:
                    self._deleting.notify_all()  # flush() waiters
                    # linger a while: a thread started per removal is ~0.3 ms of each `rm`
                    # in a loop of them
                    self._deleting.wait(DELETER_LINGER)
                    if not self._doomed:
                        self._deleter = None
                        return
                item = self._doomed[0]
            path, before_delete = item
            if before_delete is not None:
                try:
                    before_delete()
                except Exception:  # noqa: BLE001 - the directory goes anyway
                    pass
            shutil.rmtree(path, ignore_errors=True)
            with self._deleting:
                self._doomed.remove(item)

    def flush(self, timeout=None):
        # type: (float) -> bool
        """Wait until the directories of removed containers are deleted; False on timeout."""
        deadline = None if timeout is None else time.time() + timeout
        with self._deleting:
            while self._doomed:
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    return False
                self._deleting.wait(left)
        return True
