"""The interface of the network routes (`/networks/...`): runtime/services/networks.py."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional  # noqa: F401


class NetworkBackend(abc.ABC):
    """Networks (runtime/network): the default bridge, user bridges, host and none."""

    @abc.abstractmethod
    def network_list(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> List[Dict[str, Any]]
        """Network dicts (filters: name, id, driver, label, type=custom|builtin)."""

    @abc.abstractmethod
    def network_inspect(self, name):
        # type: (str) -> Dict[str, Any]
        """Network dict with Containers; NotFound "network X not found"."""

    @abc.abstractmethod
    def network_create(self, body):
        # type: (Dict[str, Any]) -> Dict[str, Any]
        """`POST /networks/create`'s body -> {"Id", "Warning"}; Conflict for a name taken or an
        overlapping subnet, InvalidParameter for what is not supported (IPv6, swarm, drivers)."""

    @abc.abstractmethod
    def network_remove(self, name):
        # type: (str) -> None
        """Conflict while containers are attached, Forbidden for bridge/host/none."""

    @abc.abstractmethod
    def network_connect(self, name, container, endpoint_config=None):
        # type: (str, str, Optional[Dict[str, Any]]) -> None
        """Connect a container (now if running, else from its next start)."""

    @abc.abstractmethod
    def network_disconnect(self, name, container, force=False):
        # type: (str, str, bool) -> None
        """Disconnect a container."""

    @abc.abstractmethod
    def network_prune(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> List[str]
        """Names of the user networks removed (those no container names)."""
