"""The interfaces the HTTP routes see. The engine (runtime/engine.py) implements them; the routes
know nothing else of it (moby's Backend over small interfaces).

Shapes: where a method returns a dict, it is the JSON object of the Docker Engine API
(moby api/swagger.yaml) for that call, e.g. `ContainerInspectResponse`, `ImageInspect`, `Volume`,
so the routes only serialise. Errors are raised as runtime.errors kinds (NotFound, Conflict,
InvalidParameter, NotModified...), never as HTTP codes.
"""

import abc

try:  # typing is for comments only; keep imports cheap
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple  # noqa: F401
except ImportError:  # pragma: no cover
    pass


class ImageBackend(abc.ABC):
    """Images: the content-addressed store (runtime/store)."""

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
    def image_commit(self, container, repo=None, tag=None, changes=None, message=None, author=None,
                     config=None, pause=True):
        # type: (str, Optional[str], Optional[str], Optional[List[str]], Optional[str], Optional[str], Optional[Dict[str, Any]], bool) -> str
        """`POST /commit`: the container's writable layer as a new layer; returns the image id."""


class ContainerBackend(abc.ABC):
    """Containers: processes in their own namespaces (runtime/container)."""

    @abc.abstractmethod
    def container_create(self, config, name=None):
        # type: (Dict[str, Any], Optional[str]) -> Dict[str, Any]
        """`POST /containers/create`: config is ContainerConfig with "HostConfig" inside.
        Returns {"Id": ..., "Warnings": [...]}. NotFound("No such image: X") when the image is missing."""

    @abc.abstractmethod
    def container_start(self, name):
        # type: (str) -> None
        """NotModified when already running."""

    @abc.abstractmethod
    def container_stop(self, name, timeout=None, signal=None):
        # type: (str, Optional[int], Optional[str]) -> None
        """SIGTERM (or the image's StopSignal), SIGKILL after timeout (default 10 s).
        NotModified when not running."""

    @abc.abstractmethod
    def container_kill(self, name, signal="SIGKILL"):
        # type: (str, str) -> None
        """Any signal, by name ("SIGHUP", "HUP") or number. Conflict when not running."""

    @abc.abstractmethod
    def container_restart(self, name, timeout=None):
        # type: (str, Optional[int]) -> None
        """Stop (if running) then start."""

    @abc.abstractmethod
    def container_pause(self, name):
        # type: (str) -> None
        """Freeze every process (cgroup freezer)."""

    @abc.abstractmethod
    def container_unpause(self, name):
        # type: (str) -> None
        """Thaw."""

    @abc.abstractmethod
    def container_wait(self, name, condition="not-running", timeout=None):
        # type: (str, str, Optional[float]) -> Dict[str, Any]
        """Block until the condition ("not-running", "next-exit", "removed") holds:
        {"StatusCode": int, "Error": None}."""

    def container_wait_begin(self, name, condition="not-running"):
        # type: (str, str) -> Any
        """Register a wait now, block later: returns `wait(timeout=None)` giving what
        container_wait gives. The API calls this before it flushes the 200 headers of
        `POST /containers/{id}/wait`, because clients (docker run) then start the container: an
        engine should override it so a `next-exit`/`removed` waiter registered here cannot miss
        a fast exit. This default only checks the container exists (NotFound) and waits lazily."""
        self.container_inspect(name)
        return lambda timeout=None: self.container_wait(name, condition, timeout)

    @abc.abstractmethod
    def container_remove(self, name, force=False, volumes=False):
        # type: (str, bool, bool) -> None
        """Conflict when running and not forced. Removes the writable layer (and anonymous
        volumes when volumes=True)."""

    @abc.abstractmethod
    def container_inspect(self, name):
        # type: (str) -> Dict[str, Any]
        """ContainerInspectResponse."""

    @abc.abstractmethod
    def container_list(self, all=False, filters=None, limit=-1):
        # type: (bool, Optional[Dict[str, List[str]]], int) -> List[Dict[str, Any]]
        """ContainerSummary dicts; filters: status, name, label, id."""

    @abc.abstractmethod
    def container_logs(self, name, stdout=True, stderr=True, follow=False, since=0.0, until=0.0,
                       tail="all", timestamps=False):
        # type: (str, bool, bool, bool, float, float, str, bool) -> Iterator[Tuple[int, bytes]]
        """Yields (stream, line) with stream 1 = stdout, 2 = stderr; the line keeps its newline
        and is prefixed with an RFC 3339 nano timestamp and a space when timestamps=True."""

    @abc.abstractmethod
    def container_attach(self, name, stdin=False, stdout=True, stderr=True, logs=False, stream=True):
        # type: (str, bool, bool, bool, bool, bool) -> Any
        """A connected socket-like object to the container's stdio (held by its monitor).
        Reading it gives the output: raw bytes when the container has a TTY, else Docker's
        multiplexed frames (8-byte header: stream, 0, 0, 0, big-endian uint32 size). Writing
        it feeds stdin; shutdown(SHUT_WR) closes stdin. A container that is not running is
        attached from its next start's first byte on (attach, then start, as `docker run` does);
        the stream ends when its PID 1 exits or it is removed. Conflict for stream=False on a
        container that is not running."""

    @abc.abstractmethod
    def container_resize(self, name, height, width):
        # type: (str, int, int) -> None
        """Set the TTY size."""

    @abc.abstractmethod
    def exec_create(self, name, config):
        # type: (str, Dict[str, Any]) -> str
        """`POST /containers/{id}/exec` (ExecConfig): returns the exec id. Conflict when not running."""

    @abc.abstractmethod
    def exec_start(self, exec_id, detach=False, tty=False):
        # type: (str, bool, bool) -> Any
        """Start it: None when detached, else a socket-like object as for container_attach."""

    @abc.abstractmethod
    def exec_inspect(self, exec_id):
        # type: (str) -> Dict[str, Any]
        """ExecInspectResponse (Running, ExitCode, Pid, ProcessConfig, ...)."""

    @abc.abstractmethod
    def exec_resize(self, exec_id, height, width):
        # type: (str, int, int) -> None
        """Set the exec's TTY size."""


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


class RegistryBackend(abc.ABC):
    """Pull, push and login against registries (runtime/registry)."""

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

    @abc.abstractmethod
    def registry_auth(self, auth):
        # type: (Dict[str, str]) -> Dict[str, str]
        """`POST /auth`: check credentials; {"Status": "Login Succeeded", "IdentityToken": ""}."""


class SystemBackend(abc.ABC):
    """What `/info` and `/version` report."""

    @abc.abstractmethod
    def system_info(self):
        # type: () -> Dict[str, Any]
        """SystemInfo: Containers*, Images, Driver "overlay2", DockerRootDir, RegistryConfig
        (with the Mirrors in effect), CgroupDriver, CgroupVersion, KernelVersion, OperatingSystem..."""


class Backend(ImageBackend, ContainerBackend, VolumeBackend, RegistryBackend, SystemBackend):
    """Everything the routes may call; runtime.engine.Engine implements it."""
