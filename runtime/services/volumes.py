"""VolumeBackend implementation: see runtime/api/backend.py for the contract."""

import os

from runtime.api.backend import VolumeBackend
from runtime.errors import Conflict, InvalidParameter
from runtime.volumes.local import ANONYMOUS_LABEL, LocalVolumes


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
    """Mixin of runtime.engine.Engine; `self.volumes` is the local driver. Which containers use
    a volume comes from ContainerService.volume_users."""

    def __init__(self):
        # type: () -> None
        self.volumes = LocalVolumes(os.path.join(self.data_root, "volumes"))

    def volume_create(self, name=None, driver="local", driver_opts=None, labels=None):
        if (driver or "local") != "local":
            raise InvalidParameter("volume driver %r is not available: only \"local\" is" % driver)
        return self.volumes.create(name, labels=labels, options=driver_opts)

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
            if "dangling" in filters and _truthy(filters["dangling"]) == bool(self.volume_users(name)):
                continue
            out.append(vol)
        return out

    def volume_remove(self, name, force=False):
        with self.volumes.lock:  # container_create holds it too while it picks volumes
            self.volumes.inspect(name)
            users = self.volume_users(name)
            if users:
                raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(users)))
            self.volumes.remove(name)

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
            if self.volume_users(vol["Name"]):
                continue
            space += self.volumes.remove(vol["Name"])
            deleted.append(vol["Name"])
        return {"VolumesDeleted": deleted, "SpaceReclaimed": space}
