"""The interface the container, exec and commit routes (runtime/api/routes/containers.py,
execs.py) see."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple  # noqa: F401


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
    def container_restart(self, name, timeout=None, signal=None):
        # type: (str, Optional[int], Optional[str]) -> None
        """Stop (if running, with signal or the StopSignal) then start."""

    @abc.abstractmethod
    def container_pause(self, name):
        # type: (str) -> None
        """Freeze every process (cgroup freezer)."""

    @abc.abstractmethod
    def container_unpause(self, name):
        # type: (str) -> None
        """Thaw."""

    @abc.abstractmethod
    def container_stats(self, name, stream=True, one_shot=False):
        # type: (str, bool, bool) -> Any
        """The Docker API's stats objects: a generator of one a second (stream), or of one
        (one_shot: at once, without precpu_stats; else after a second, with them)."""

    @abc.abstractmethod
    def container_top(self, name, ps_args="-ef"):
        # type: (str, str) -> Dict[str, Any]
        """{"Titles", "Processes"}: the host's ps lines of the container's processes."""

    @abc.abstractmethod
    def container_update(self, name, update):
        # type: (str, Dict[str, Any]) -> Dict[str, Any]
        """ContainerUpdate (only RestartPolicy for now; running containers follow it at once):
        {"Warnings": [...]}."""

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
    def container_list(self, all=False, filters=None, limit=-1, encoded=False):
        # type: (bool, Optional[Dict[str, List[str]]], int, bool) -> List[Any]
        """ContainerSummary dicts, newest first; filters: every key dockerd takes (ancestor,
        before, since, exited, health, id, isolation, is-task, label, name, network, publish,
        expose, status, volume); any other key, or a value a filter cannot take, is
        InvalidParameter worded as dockerd's. With encoded, objects carrying only their JSON
        (`json_bytes`), for a reply (runtime/api/server.json_body)."""

    @abc.abstractmethod
    def container_counts(self):
        # type: () -> Dict[str, int]
        """Containers, ContainersRunning, ContainersPaused and ContainersStopped, as /info
        gives them."""

    @abc.abstractmethod
    def labels_containers(self):
        # type: () -> bool
        """Whether containers get SELinux labels (daemon.json selinux-enabled, and the host's
        SELinux and container policy found at start)."""

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
    def container_prune(self, filters=None):
        # type: (Optional[Dict[str, List[str]]]) -> Dict[str, Any]
        """`POST /containers/prune`: remove every stopped container that passes the filters
        (until, label, label!; another key is InvalidParameter): {"ContainersDeleted": [ids]
        or None, "SpaceReclaimed": n}."""

    @abc.abstractmethod
    def container_rename(self, name, new_name):
        # type: (str, str) -> None
        """Conflict when new_name is taken, InvalidParameter when it is invalid or the same."""

    @abc.abstractmethod
    def container_changes(self, name):
        # type: (str) -> List[Dict[str, Any]]
        """[{"Path", "Kind"}] of the writable layer: 0 modified, 1 added, 2 deleted."""

    @abc.abstractmethod
    def container_export(self, name):
        # type: (str) -> Any
        """write(out): writes the container's root filesystem as a tar to out."""

    @abc.abstractmethod
    def container_archive_stat(self, name, path):
        # type: (str, str) -> Dict[str, Any]
        """ContainerPathStat {"name", "size", "mode" (Go FileMode), "mtime", "linkTarget"};
        NotFound when path is missing."""

    @abc.abstractmethod
    def container_archive_get(self, name, path):
        # type: (str, str) -> Tuple[Dict[str, Any], Any]
        """(ContainerPathStat, write(out)): write puts the tar of path (its base name as the
        top entry) to out. Symlinks and `..` never lead outside the container's root."""

    @abc.abstractmethod
    def container_archive_put(self, name, path, stream, no_overwrite_dir_non_dir=False):
        # type: (str, str, BinaryIO, bool) -> None
        """Extract the tar from stream into directory path of the container; nothing lands
        outside its root. Forbidden for a read-only rootfs, NotFound for a missing path,
        InvalidParameter when path is not a directory or (no_overwrite_dir_non_dir) a member
        would replace a directory with a non-directory or the reverse."""

    @abc.abstractmethod
    def container_remove_link(self, name, alias):
        # type: (str, str) -> None
        """Remove the legacy link `alias` from container `name` (NotFound when it has none)."""

    @abc.abstractmethod
    def exec_create(self, name, config):
        # type: (str, Dict[str, Any]) -> str
        """`POST /containers/{id}/exec` (ExecConfig): returns the exec id. Conflict when not running."""

    @abc.abstractmethod
    def exec_start(self, exec_id, detach=False, tty=None):
        # type: (str, bool, Optional[bool]) -> Any
        """Start it: None when detached, else a socket-like object as for container_attach,
        raw when tty (the start's Tty; None: the exec's own), else in frames."""

    @abc.abstractmethod
    def exec_inspect(self, exec_id):
        # type: (str) -> Dict[str, Any]
        """ExecInspectResponse (Running, ExitCode, Pid, ProcessConfig, ...)."""

    @abc.abstractmethod
    def exec_resize(self, exec_id, height, width):
        # type: (str, int, int) -> None
        """Set the exec's TTY size."""

    @abc.abstractmethod
    def image_commit(self, container, repo=None, tag=None, changes=None, message=None, author=None,
                     config=None, pause=True):
        # type: (str, Optional[str], Optional[str], Optional[List[str]], Optional[str], Optional[str], Optional[Dict[str, Any]], bool) -> str
        """`POST /commit`: the container's writable layer as a new layer on its image; returns the
        image id (moby serves it from the container router too)."""
