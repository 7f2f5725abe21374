"""The interface the image routes (runtime/api/routes/images.py) see."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple  # noqa: F401


class ImageBackend(abc.ABC):
    """Images: the content-addressed store (runtime/store), and pull and push through the
    registry client (runtime/registry)."""

    @abc.abstractmethod
    def image_list(self, all_images=False, filters=None):
        # type: (bool, Optional[Dict[str, List[str]]]) -> List[Dict[str, Any]]
        """`GET /images/json`: ImageSummary dicts."""

    @abc.abstractmethod
    def image_inspect(self, ref):
        # type: (str) -> Dict[str, Any]
        """`GET /images/{name}/json`: ImageInspect for a reference, id or id prefix."""

    @abc.abstractmethod
    def image_history(self, ref):
        # type: (str) -> List[Dict[str, Any]]
        """`GET /images/{name}/history`: HistoryResponseItem dicts, newest first."""

    @abc.abstractmethod
    def image_tag(self, ref, repo, tag=None):
        # type: (str, str, Optional[str]) -> None
        """`POST /images/{name}/tag`."""

    @abc.abstractmethod
    def image_remove(self, ref, force=False, prune=True):
        # type: (str, bool, bool) -> List[Dict[str, str]]
        """`DELETE /images/{name}`: [{"Untagged": ...}, {"Deleted": ...}]. Conflict while in use."""

    @abc.abstractmethod
    def image_prune(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> Dict[str, Any]
        """{"ImagesDeleted": [{"Untagged"}|{"Deleted"}] or None, "SpaceReclaimed": n}: images no
        container uses (untagged ones only unless dangling=false); filters dangling, until,
        label, label!; any other key is InvalidParameter."""

    @abc.abstractmethod
    def image_load(self, stream):
        # type: (BinaryIO) -> List[str]
        """`POST /images/load`: a docker-save or OCI-layout tar; returns loaded refs or ids."""

    @abc.abstractmethod
    def image_save(self, refs, out):
        # type: (List[str], BinaryIO) -> None
        """`GET /images/get`: write a docker-save tar (with OCI index) of the refs to out."""

    @abc.abstractmethod
    def image_import(self, stream, repo=None, tag=None, changes=None, message=None):
        # type: (BinaryIO, Optional[str], Optional[str], Optional[List[str]], Optional[str]) -> str
        """`POST /images/create?fromSrc=-`: a plain rootfs tar as a one-layer image; returns its id."""

    @abc.abstractmethod
    def image_pull(self, name, tag=None, auth=None, platform=None, progress=None):
        # type: (str, Optional[str], Optional[Dict[str, str]], Optional[str], Any) -> str
        """`POST /images/create?fromImage=&tag=`. auth is the decoded X-Registry-Auth
        (username/password/identitytoken/serveraddress). progress(msg) is called with Docker's
        JSON-message dicts ({"status": "Pulling fs layer", "id": "...", "progressDetail": {...}},
        "Digest: ...", "Status: ..."). Raises before the first progress call when the pull
        cannot start (NotFound, Unauthorized, InvalidParameter); returns the image id."""

    @abc.abstractmethod
    def image_push(self, name, tag=None, auth=None, progress=None):
        # type: (str, Optional[str], Optional[Dict[str, str]], Any) -> str
        """`POST /images/{name}/push`: returns the pushed manifest digest."""
