"""RegistryBackend implementation: see runtime/api/backend.py for the contract."""

from runtime.api.backend import RegistryBackend


class RegistryService(RegistryBackend):
    """Mixin of runtime.engine.Engine."""

    def __init__(self):
        # type: () -> None
        pass
