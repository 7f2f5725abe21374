"""berthd and glibc's allocator: fewer arenas, and the freed heap given back once the API is idle.

berthd serves each request on a thread and builds each reply in memory. glibc keeps what a
request freed for the next allocation instead of returning it to the system, so berthd's
resident size is the high-water mark of the busiest moment it has had (a `ps -a` over 1,200
containers, a burst of creates). Two things bring it down, both glibc-only and both left
alone on a libc without them:

- at start, at most two malloc arenas rather than up to eight per core (`arenas_capped`);
- once no request has been worked on for `quiet` seconds, `malloc_trim(0)`: every arena's
  free pages go back to the system (`IdleTrimmer`). It runs on a thread of its own, so no
  request waits for it, and at most once per idle moment.
"""

import ctypes
import logging
import os
import threading
import time

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Callable, Optional  # noqa: F401

log = logging.getLogger("berthd.memory")

M_ARENA_MAX = -8  # malloc.h
QUIET_SECONDS = 0.5


def resident_kb():
    # type: () -> int
    """This process's resident size in kB (/proc/self/statm), 0 when unreadable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _libc():
    # type: () -> Optional[ctypes.CDLL]
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def arenas_capped(count=2):
    # type: (int) -> bool
    """Cap glibc's malloc arenas at count, before any thread starts: each thread that allocates
    got an arena of its own, and what is freed in one stays resident. berthd at scale
    (bench/scale.py, 1,200 containers and 500 images): 51.4 MB with glibc's default, 47.8 MB
    with two (one: 45.1 MB, but `ps -a` took twice as long). An administrator's
    MALLOC_ARENA_MAX is left as it is. Whether the cap was set."""
    libc = _libc()
    if "MALLOC_ARENA_MAX" in os.environ or libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim():
    # type: () -> bool
    """Give the allocator's free pages back to the system now (glibc's malloc_trim(0), which
    since glibc 2.8 releases free pages inside every arena, not only at the heap's top).
    Whether memory was released; False where the libc has no malloc_trim."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    return bool(libc.malloc_trim(0))


class IdleTrimmer(object):
    """Calls trim_fn once the daemon has been idle for `quiet` seconds after some work.

    `poke()` says that the last request in work has just ended (runtime/api/admission.Slots
    calls it); the thread then waits until `quiet` seconds have passed since the latest poke
    and trims once. Pokes while it waits only move the moment on."""

    def __init__(self, quiet=QUIET_SECONDS, trim_fn=trim):
        # type: (float, Callable[[], bool]) -> None
        self.quiet = quiet
        self.trim_fn = trim_fn
        self.trims = 0
        self._last = 0.0
        self._poked = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="memory trim", daemon=True)
        self._thread.start()

    def poke(self):
        # type: () -> None
        """The daemon has just gone idle."""
        self._last = time.monotonic()
        self._poked.set()

    def stop(self):
        # type: () -> None
        """End the thread (at its next wake-up)."""
        self._stopped = True
        self._poked.set()

    def _run(self):
        # type: () -> None
        while True:
            self._poked.wait()
            while not self._stopped:
                self._poked.clear()  # (pokes while it waits only move the moment on)
                left = self._last + self.quiet - time.monotonic()
                if left <= 0:
                    break
                time.sleep(left)
            if self._stopped:
                return
            before = resident_kb()
            self.trim_fn()
            self.trims += 1
            log.debug("idle: free heap given back, resident %d -> %d kB", before, resident_kb())
