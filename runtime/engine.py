"""The engine: the image store, the containers and the volumes under one data root, and the
services over them that the HTTP routes see (runtime/api/backend). It knows nothing of HTTP;
tests and the daemon construct it the same way.

The services get what they depend on here and nowhere else:

    storage driver (overlay2 or vfs) ── ImageStore, SystemService
    ImageStore ─┬─ RegistryService ─┬─ ImageService      (images.users: the container index)
                │                   └─ SystemService     (counts from the image and container services)
                └─ ContainerService ── ContainerIndex, LocalVolumes, Spawner (forkserver), Kicker
    LocalVolumes ── VolumeService                        (volumes.users: the container index)
    ImageStore, ContainerService, ContainerIndex, RegistryService ── BuildService (runtime/build)
"""

import os

from runtime import TYPE_CHECKING, datacheck
from runtime.api.backend.build import BuildBackend
from runtime.api.backend.containers import ContainerBackend
from runtime.api.backend.images import ImageBackend
from runtime.api.backend.networks import NetworkBackend
from runtime.api.backend.system import SystemBackend
from runtime.api.backend.volumes import VolumeBackend
from runtime.build.service import BuildService
from runtime.container import remap
from runtime.container.index import ContainerIndex
from runtime.events import EventLog
from runtime.services.containers import ContainerService
from runtime.services.images import ImageService
from runtime.services.networks import NetworkFront
from runtime.services.registry import RegistryService
from runtime.services.system import SystemService
from runtime.services.volumes import VolumeService
from runtime.store import driver
from runtime.store.images import ImageStore
from runtime.volumes.local import LocalVolumes

if TYPE_CHECKING:
    from typing import Any, Dict, List  # noqa: F401

DEFAULT_DATA_ROOT = "/var/lib/berth"


def _interface_methods(interface):
    # type: (type) -> List[str]
    """The public methods an interface declares (and its defaults)."""
    return [n for n, v in vars(interface).items() if not n.startswith("_") and callable(v)]


class Engine(object):
    """All the engine's state under `data_root`; `config` is the parsed daemon.json (the daemon
    updates this dict in place on SIGHUP; the services read it on use).

    The services are `image_service`, `container_service`, `volume_service`,
    `system_service` and `build_service` (one per route table); every method of their interfaces is also an
    attribute of the engine (`engine.container_create(...)`), for tests and embedding."""

    def __init__(self, data_root=DEFAULT_DATA_ROOT, config=None):
        # type: (str, Dict[str, Any]) -> None
        self.data_root = os.path.abspath(data_root)
        self.config = dict(config or {})
        image_root = os.path.join(self.data_root, "image")
        self.storage = driver.choose(self.data_root, image_root, self.config.get("storage-driver"))
        self.store = ImageStore(image_root, self.storage.name)
        self.store.clean_tmp()
        # the cheap check; what was never complete goes, interrupted downloads stay for reuse
        self.start_findings = datacheck.at_start(self.data_root, self.store)
        # daemon.json userns-remap: the ids of remapped containers (their volumes belong to its root)
        self.remap = remap.resolve(self.config.get("userns-remap") or "")
        self.store.layers.on_remove.append(lambda layer: remap.drop_copies(self.data_root, layer))
        self.volumes = LocalVolumes(os.path.join(self.data_root, "volumes"),
                                    owner=(self.remap.uid, self.remap.gid) if self.remap else None)
        self.containers = ContainerIndex(os.path.join(self.data_root, "containers"))
        self.events = EventLog()  # every service's events, for GET /events
        self.registry = RegistryService(self.data_root, self.config, self.store, self.events)
        # looked up on the engine at each call, so that a stand-in user can be put in its place
        self.image_service = ImageService(self.store, self.registry,
                                          users=lambda image_id: self.containers_using_image(image_id),
                                          events=self.events)
        self.volume_service = VolumeService(self.volumes, users=self.containers.using_volume,
                                            events=self.events)
        self.network_service = NetworkFront(self.data_root, self.config, self.containers, self.events)
        self.container_service = ContainerService(self.config, self.store, self.volumes, self.containers,
                                                  self.network_service, self.events, userns=self.remap,
                                                  data_root=self.data_root)
        self.network_service.start()  # after a restart: keep running containers' endpoints
        self.system_service = SystemService(self.data_root, self.config, self.storage, self.image_service,
                                            self.container_service, self.registry,
                                            check=self._check, events=self.events,
                                            volumes=self.volume_service)
        self.build_service = BuildService(self.data_root, self.store, self.container_service,
                                          self.containers, self.registry)
        self.spawner = self.container_service.spawner
        self.kicker = self.container_service.kicker
        for service, interface in ((self.image_service, ImageBackend),
                                   (self.container_service, ContainerBackend),
                                   (self.volume_service, VolumeBackend),
                                   (self.network_service, NetworkBackend),
                                   (self.system_service, SystemBackend),
                                   (self.build_service, BuildBackend)):
            for name in _interface_methods(interface):
                setattr(self, name, getattr(service, name))

    def backends(self):
        # type: () -> Dict[str, Any]
        """The backend of each route table (runtime.api.server.default_router)."""
        return {"images": self.image_service, "containers": self.container_service,
                "volumes": self.volume_service, "networks": self.network_service,
                "system": self.system_service, "build": self.build_service}

    def containers_using_image(self, image_id):
        # type: (str) -> List[str]
        """Ids of the containers (any state) created from image_id."""
        return self.containers.using_image(image_id)

    def container_upper_dir(self, name):
        # type: (str) -> str
        """The container's writable layer."""
        return self.container_service.container_upper_dir(name)

    def _check(self, deep):
        # type: (bool) -> Dict[str, Any]
        """The data root's checker, read-only (GET /berth/check)."""
        return datacheck.report(datacheck.check(self.data_root, self.store, deep=deep))

    def start_by_policy(self):
        # type: () -> List[Any]
        """Start the stopped containers whose restart policy says so (berthd coming up);
        returns their threads."""
        return self.container_service.start_by_policy()

    def _blob_sources(self):
        # type: () -> Any
        return self.registry.blob_sources()

    def close(self):
        # type: () -> None
        """Stop the forkserver (containers and their monitors keep running), finish deleting
        the directories of removed containers, and fold the reference log into
        repositories.json."""
        self.container_service.close()
        self.network_service.close()
        # after a clean stop repositories.json holds every name, as dockerd's does (for a
        # backup, or a berthd from before the log); not when that means waiting for a writer
        # (a pull unpacking), or the data root is read-only: the log is read next time
        try:
            if self.store.lock.take(wait=False):
                try:
                    self.store.refs.compact()
                finally:
                    self.store.lock.release()
        except OSError:
            pass
