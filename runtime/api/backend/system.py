"""The interface the system routes (runtime/api/routes/system.py) see."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple  # noqa: F401


class SystemBackend(abc.ABC):
    """What `/info` reports, `/auth`, and `/events`."""

    @abc.abstractmethod
    def system_info(self):
        # type: () -> Dict[str, Any]
        """SystemInfo: Containers*, Images, Driver "overlay2", DockerRootDir, RegistryConfig
        (with the Mirrors in effect), CgroupDriver, CgroupVersion, KernelVersion, OperatingSystem..."""

    @abc.abstractmethod
    def system_df(self):
        # type: () -> Dict[str, Any]
        """`GET /system/df`: {"LayersSize", "Images" (ImageSummary with Containers), "Containers"
        (ContainerSummary with SizeRw, SizeRootFs), "Volumes" (Volume with UsageData), "BuildCache"}."""

    @abc.abstractmethod
    def registry_auth(self, auth):
        # type: (Dict[str, str]) -> Dict[str, str]
        """`POST /auth`: check credentials; {"Status": "Login Succeeded", "IdentityToken": ""}."""

    @abc.abstractmethod
    def system_check(self, quick=False):
        # type: (bool) -> Dict[str, Any]
        """`GET /berth/check`: the data root's checker, read-only (runtime/datacheck.py):
        {"Findings": [{Area, Subject, Problem, Fix, Repair, Partial, Repaired}], "Problems": n,
        "Partial": n}; quick: no blob re-hashing nor layer walks."""

    @abc.abstractmethod
    def system_events(self, since=None, until=None, filters=None, stop=None):
        # type: (Optional[float], Optional[float], Optional[Dict[str, List[str]]], Any) -> Any
        """The events from `since` (unix time; None: only new ones) to `until` (None: for
        ever, or until the threading.Event stop is set) matching filters, as dockerd's event
        messages; InvalidParameter for an unknown filter key (checked before the first one)."""
