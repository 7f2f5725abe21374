"""ContainerBackend implementation: see runtime/api/backend.py for the contract."""

from runtime.api.backend import ContainerBackend


class ContainerService(ContainerBackend):
    """Mixin of runtime.engine.Engine."""

    def __init__(self):
        # type: () -> None
        pass
