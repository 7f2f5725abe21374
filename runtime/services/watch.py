"""A container's events as they happen outside any request: a thread per running container
waits on its monitor (no CPU while it waits) and emits `die` (and `oom`) at each exit, then
`start` when the monitor's restart policy brought it back (runtime/container/proc/restart.py)."""

import threading
import time

from runtime.container import monitor_client as client
from runtime.events import container_event

try:
    from typing import Optional  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def emit(events, c, action, **extra):
    # type: (object, object, str, object) -> None
    container_event(events, c, action, **extra)


class Watch(object):
    """The watcher of one container (c.watch): `dies` counts the `die` events it emitted."""

    def __init__(self, events, c, on_exit=None):
        # type: (object, object, object) -> None
        self.events, self.c, self.on_exit = events, c, on_exit
        self.dies = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="watch-" + c.id[:12])
        self.thread.daemon = True

    def _run(self):
        # type: () -> None
        c = self.c
        while True:
            client.wait_exit(c)
            pid = c.started().get("Pid")
            ex = c.exited()
            if not ex:  # removed meanwhile, or the monitor died without a record
                ex = {"ExitCode": c.state()["ExitCode"]}
            if ex.get("OOMKilled"):
                emit(self.events, c, "oom")
            emit(self.events, c, "die", exitCode=ex.get("ExitCode", 255))
            if self.on_exit is not None:
                self.on_exit(c)
            with self.cond:
                self.dies += 1
                self.cond.notify_all()
            if not ex.get("Restarting") or not self._restarted(pid):
                return

    def _restarted(self, pid):
        # type: (int) -> bool
        """Wait for the monitor's restart (a new PID 1 recorded: True, `start` emitted) or
        its giving up."""
        c = self.c
        while True:
            if c.started().get("Pid") != pid:
                emit(self.events, c, "start")
                return True
            if not c.exited().get("Restarting") or not c.monitor_alive():
                return False
            time.sleep(0.02)

    def wait_die(self, seen, timeout=5.0):
        # type: (int, float) -> None
        """Until more than `seen` die events were emitted (bounded)."""
        deadline = time.time() + timeout
        with self.cond:
            while self.dies <= seen and self.thread.is_alive():
                left = deadline - time.time()
                if left <= 0:
                    return
                self.cond.wait(left)


def watch(events, c, on_exit=None):
    # type: (object, object, object) -> Watch
    """c's watcher, started unless one runs already."""
    w = getattr(c, "watch", None)
    if w is not None and w.thread.is_alive():
        return w
    w = c.watch = Watch(events, c, on_exit)
    w.thread.start()
    return w


def dies(c):
    # type: (object) -> int
    w = getattr(c, "watch", None)
    return w.dies if w is not None else 0


def wait_die(c, seen, timeout=5.0):
    # type: (object, int, float) -> None
    """Until c's watcher emitted its die after `seen` (so a stop's or removal's own event
    comes after it, as dockerd orders them)."""
    w = getattr(c, "watch", None)
    if w is not None:
        w.wait_die(seen, timeout)
