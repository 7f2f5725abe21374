"""`run --rm` (HostConfig.AutoRemove) done by the API, after attached clients got the output.

Docker clients attach before they start; an engine that can only attach a running container
is attached right after the start (runtime/api/deferred.py), and a PID 1 that exits within a
millisecond can be gone, with its log, before that attach lands if the engine removes the
container as soon as it exits. So the create route keeps AutoRemove from the engine and
records the container here; the start route registers an exit waiter before it starts the
container, and a thread removes it (as `rm -v` does) once it has exited and every deferred
attach of it has sent its output. Inspect still shows AutoRemove true.

Limitation: the set lives in the daemon's memory; an `--rm` container still running when
berthd restarts is not removed when it exits later.
"""

import _thread
import logging
import threading

from runtime.errors import BerthError

try:
    from typing import Any, Dict  # noqa: F401
except ImportError:  # pragma: no cover
    pass

log = logging.getLogger("berthd.api")
DELIVERY_TIMEOUT = 30.0

_lock = threading.Lock()
_ids = set()  # type: set


def claim(config):
    # type: (Dict[str, Any]) -> bool
    """Take AutoRemove out of a create config (the API will do it); True if it was set."""
    host = config.get("HostConfig")
    if isinstance(host, dict) and host.get("AutoRemove"):
        host["AutoRemove"] = False
        return True
    return False


def register(cid):
    # type: (str) -> None
    """The created container is to be removed when it exits."""
    with _lock:
        _ids.add(cid)


def wanted(cid):
    # type: (str) -> bool
    """Whether the API removes this container when it exits."""
    return cid in _ids


def before_start(backend, name):
    # type: (Any, str) -> Any
    """For a container the API removes: (id, exit waiter) registered before the start, else None."""
    if not _ids:
        return None
    try:
        cid = name if name in _ids else backend.container_inspect(name)["Id"]
    except BerthError:
        return None
    if cid not in _ids:
        return None
    return cid, backend.container_wait_begin(cid, "next-exit")


def after_start(backend, token):
    # type: (Any, Any) -> None
    """Remove the container once it has exited and its deferred attaches are done."""
    if token is None:
        return
    cid, waiter = token

    def run():
        # type: () -> None
        try:
            waiter()
        except BerthError:
            pass
        from runtime.api import deferred
        deferred.wait_delivered(cid, DELIVERY_TIMEOUT)
        try:
            backend.container_remove(cid, volumes=True)
        except BerthError as exc:
            log.debug("auto-remove of %s: %s", cid, exc)
        forget(cid)

    # the low-level start does not wait for the thread to be scheduled: the start route
    # answers at once
    _thread.start_new_thread(run, ())


def forget(cid):
    # type: (str) -> None
    """The container is gone."""
    with _lock:
        _ids.discard(cid)
