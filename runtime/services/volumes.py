"""VolumeBackend implementation: see runtime/api/backend/volumes.py for the contract."""

from runtime import TYPE_CHECKING, filterargs
from runtime.api.backend.volumes import VolumeBackend
from runtime.errors import Conflict, InvalidParameter
from runtime.events import EventLog
from runtime.volumes.local import ANONYMOUS_LABEL, LocalVolumes  # noqa: F401 (type comments)

if TYPE_CHECKING:
    from typing import Any, Callable, List  # noqa: F401


LIST_FILTERS = ("dangling", "name", "driver", "label")
PRUNE_FILTERS = ("label", "label!", "all")  # dockerd's: `until` is refused, not ignored


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
        filters = filterargs.validate(filters, LIST_FILTERS)
        dangling = filterargs.truthy(filters, "dangling")
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
            if not filterargs.labels_match(filters, vol["Labels"]):
                continue
            if dangling is not None and dangling == bool(self._users(name)):
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
        filters = filterargs.validate(filters, PRUNE_FILTERS)
        every = bool(filterargs.truthy(filters, "all"))
        with self.volumes.lock:
            return self._prune(filters, every)

    def _prune(self, filters, every):
        # type: (dict, bool) -> dict
        deleted, space = [], 0
        for vol in self.volume_list():
            if not filterargs.labels_match(filters, vol["Labels"]):
                continue
            if not every and ANONYMOUS_LABEL not in vol["Labels"]:
                continue
            if self._users(vol["Name"]):
                continue
            space += self.volumes.remove(vol["Name"])
            self.events.emit("volume", "destroy", vol["Name"], {"driver": "local"})
            deleted.append(vol["Name"])
        return {"VolumesDeleted": deleted, "SpaceReclaimed": space}
