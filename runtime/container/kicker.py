"""The engine's cgroup kicker: one thread that begins the kernel's cgroup-lock grace period
ahead of a start (runtime.container.proc.cgroups.kick_grace_period). Daemon side only: the
forkserver and monitors never import threading."""

import threading

from runtime import TYPE_CHECKING
from runtime.container.proc.cgroups import kick_grace_period

if TYPE_CHECKING:
    from typing import Optional  # noqa: F401


class Kicker(object):
    """One thread that runs kick_grace_period(pid()) when asked: kick() is cheap enough for
    the create path, where `run` announces the start to come (create, attach and wait come
    first: ~3-5 ms of head start)."""

    def __init__(self, pid):
        # type: (object) -> None
        self._pid = pid
        self._wanted = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def kick(self):
        # type: () -> None
        """Ask for a kick (returns at once)."""
        with self._lock:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._loop, args=(self._stop,), name="cgroup-kick")
                self._thread.daemon = True
                self._thread.start()
        self._wanted.set()

    def close(self):
        # type: () -> None
        """End the thread (a later kick starts a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wanted.set()
            thread.join(30)

    def _loop(self, stop):
        # type: (threading.Event) -> None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if stop.is_set():
                return
            kick_grace_period(self._pid())
