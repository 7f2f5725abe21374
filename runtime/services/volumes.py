"""VolumeBackend implementation: see runtime/api/backend/volumes.py for the contract."""

from runtime.api.backend.volumes import VolumeBackend
from runtime.errors import Conflict, InvalidParameter
from runtime.events import EventLog
from runtime.volumes.local import ANONYMOUS_LABEL, LocalVolumes  # noqa: F401 (type comments)

try:
    from typing import Any, Callable, List  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def _truthy(values):
    # type: (list) -> bool
    return any(str(v).lower() in ("1", "true") for v in values)


def _label_match(labels, wanted):
    # type: (dict, list) -> bool
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


class VolumeService(VolumeBackend):
    """The volumes of `volumes` (the local driver, LocalVolumes); `users(name)` gives the ids
    of the containers that mount one."""

    def __init__(self, volumes, users, events=None):
        # type: (LocalVolumes, Callable[[str], List[str]], Any) -> None
        self.events = events if events is not None else EventLog()  # create, destroy
        self.volumes = volumes
        self._users = users

    def volume_create(self, name=None, driver="local", driver_opts=None, labels=None):
        if (driver or "local") != "local":
            raise InvalidParameter("volume driver %r is not available: only \"local\" is" % driver)
        vol = self.volumes.create(name, labels=labels, options=driver_opts)
        self.events.emit("volume", "create", vol["Name"], {"driver": "local"})
        return vol

    def volume_inspect(self, name):
        return self.volumes.inspect(name)

    def volume_list(self, filters=None):
        filters = filters or {}
        out = []
        for name in self.volumes.names():
            try:
                vol = self.volumes.inspect(name)
            except Exception:  # noqa: BLE001 - removed meanwhile
                continue
            if "name" in filters and not any(f in name for f in filters["name"]):
                continue
            if "driver" in filters and "local" not in filters["driver"]:
                continue
            if "label" in filters and not _label_match(vol["Labels"], filters["label"]):
                continue
            if "dangling" in filters and _truthy(filters["dangling"]) == bool(self._users(name)):
                continue
            out.append(vol)
        return out

    def volume_remove(self, name, force=False):
        with self.volumes.lock:  # container_create holds it too while it picks volumes
            self.volumes.inspect(name)
            users = self._users(name)
            if users:
                raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(users)))
            self.volumes.remove(name)
        self.events.emit("volume", "destroy", name, {"driver": "local"})

    def volume_prune(self, filters=None):
        filters = dict(filters or {})
        every = _truthy(filters.pop("all", []))
        with self.volumes.lock:
            return self._prune(filters, every)

    def _prune(self, filters, every):
        # type: (dict, bool) -> dict
        deleted, space = [], 0
        for vol in self.volume_list({k: v for k, v in filters.items() if k == "label"}):
            if not every and ANONYMOUS_LABEL not in vol["Labels"]:
                continue
            if self._users(vol["Name"]):
                continue
            space += self.volumes.remove(vol["Name"])
            self.events.emit("volume", "destroy", vol["Name"], {"driver": "local"})
            deleted.append(vol["Name"])
        return {"VolumesDeleted": deleted, "SpaceReclaimed": space}
