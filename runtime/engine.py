"""The engine: one object that owns the image store, the containers and the volumes under a
data root, and implements runtime.api.backend.Backend for the HTTP routes. It knows nothing of
HTTP itself; tests and the daemon construct it the same way.
"""

import os

from runtime.api.backend import Backend
from runtime.services.containers import ContainerService
from runtime.services.images import ImageService
from runtime.services.registry import RegistryService
from runtime.services.system import SystemService
from runtime.services.volumes import VolumeService

DEFAULT_DATA_ROOT = "/var/lib/berth"


class Engine(ImageService, VolumeService, ContainerService, RegistryService, SystemService, Backend):
    """All the engine's state under `data_root`; `config` is the parsed daemon.json."""

    def __init__(self, data_root=DEFAULT_DATA_ROOT, config=None):
        # type: (str, dict) -> None
        self.data_root = os.path.abspath(data_root)
        self.config = dict(config or {})
        ImageService.__init__(self)
        VolumeService.__init__(self)
        ContainerService.__init__(self)
        RegistryService.__init__(self)
        SystemService.__init__(self)
