"""The interface the volume routes (runtime/api/routes/volumes.py) see."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple  # noqa: F401


class VolumeBackend(abc.ABC):
    """Named volumes (runtime/volumes)."""

    @abc.abstractmethod
    def volume_create(self, name=None, driver="local", driver_opts=None, labels=None):
        # type: (Optional[str], str, Optional[Dict[str, str]], Optional[Dict[str, str]]) -> Dict[str, Any]
        """Volume dict; creating an existing name returns it unchanged."""

    @abc.abstractmethod
    def volume_list(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> List[Dict[str, Any]]
        """Volume dicts."""

    @abc.abstractmethod
    def volume_inspect(self, name):
        # type: (str) -> Dict[str, Any]
        """Volume dict."""

    @abc.abstractmethod
    def volume_remove(self, name, force=False):
        # type: (str, bool) -> None
        """Conflict while a container uses it."""

    @abc.abstractmethod
    def volume_prune(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> Dict[str, Any]
        """{"VolumesDeleted": [...], "SpaceReclaimed": n}: unused volumes (anonymous ones only unless
        the filter all=true, as Docker 23+ does)."""
