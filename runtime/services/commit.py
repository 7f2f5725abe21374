"""`POST /commit`: a container's writable layer as a new image (moby's
CreateImageFromContainer, which its container router serves)."""

from runtime import TYPE_CHECKING
from runtime.errors import Conflict
from runtime.services import containerfs
from runtime.store import newlayer, reference

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional  # noqa: F401

IMAGE_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
                     "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal",
                     "StopTimeout", "Shell")


def commit(containers, store, container, repo=None, tag=None, changes=None, message=None, author=None,
           config=None, pause=True):
    # type: (Any, Any, str, Optional[str], Optional[str], Optional[List[str]], Optional[str], Optional[str], Optional[Dict[str, Any]], bool) -> str
    """The writable layer of `container` (in `containers`, a ContainerService) becomes a new
    layer in `store` on the container's image, with the container's config (overridden by
    config, then changes) as the image config; a running container is paused around the copy
    when pause is true. Returns the new image id."""
    info = containers.container_inspect(container)
    upper = containers.container_upper_dir(container)
    refs = [reference.normalize_repo(repo, tag)] if repo else []
    base = {k: v for k, v in (info.get("Config") or {}).items() if k in IMAGE_CONFIG_KEYS}
    base.update(config or {})
    own = "HOSTNAME=%s" % (info.get("Config") or {}).get("Hostname")
    if base.get("Env"):
        base["Env"] = [e for e in base["Env"] if e != own]
    state = info.get("State") or {}
    paused = False
    if pause and state.get("Running") and not state.get("Paused"):
        try:
            containers.container_pause(container)
            paused = True
        except Conflict:  # it exited since: nothing to pause (a quick `run` then commit)
            pass
    try:
        return newlayer.commit(store, upper, info["Image"], refs, changes, message, author, base,
                               info.get("Id", ""), containerfs.mount_points(upper),
                               containers.container_id_maps(container))
    finally:
        if paused:
            try:
                containers.container_unpause(container)
            except Conflict:  # killed while frozen (rm -f meanwhile)
                pass
