"""Back-pressure: how many requests berthd works on at once, and which it drops.

berthd runs in one Python process: its handlers share one interpreter lock, and each file or
socket call a handler makes gives that lock up and waits for it again behind every other
runnable handler. Work on 200 requests at once is then far slower than the same work done a
few at a time, and holds 200 answers in memory. So:

- A request is worked on while it holds one of `count` slots (daemon.json
  `max-concurrent-requests`; 0, the default, is 4 per CPU and at least 8). Requests beyond
  wait for a slot in arrival order; `/_ping` never waits.
- A handler that goes on to wait for something other than the CPU (a container's exit, a log
  to follow, an attached or exec'd process, a registry, a build) gives its slot up first
  (`Request.free_slot()`), so that such waits never hold the others up.
- A request whose client has gone (its socket hung up) while it waited is dropped: neither
  served nor answered. The same check runs once it has its slot, before its handler.
- A request that waited `queue_seconds` (20) without getting a slot is answered 503 with a
  message saying that berthd is busy and to retry; nothing of it was done.
- Connections beyond `MAX_CONNECTIONS` (each has a thread) wait in the listen backlog, which
  is as deep as the kernel allows (net.core.somaxconn, as Go's listen and so dockerd use).
"""

import collections
import os
import select
import threading
import time

from runtime import TYPE_CHECKING
from runtime.errors import Unavailable

if TYPE_CHECKING:
    from typing import Callable, Optional  # noqa: F401

MAX_CONNECTIONS = 1024
QUEUE_SECONDS = 20.0  # under the clients' usual timeouts (docker-py 60 s), so they read why
CHECK_SECONDS = 0.25  # how often a waiting request's client is looked at


def default_count(cpus=None):
    # type: (Optional[int]) -> int
    """Slots when daemon.json does not say: 4 per CPU, at least 8."""
    return max(8, 4 * (cpus or os.cpu_count() or 1))


def listen_backlog():
    # type: () -> int
    """The deepest listen backlog the kernel grants (net.core.somaxconn; 4096 on current
    kernels, 128 on older ones); listen() with more is cut to it anyway."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return max(128, min(int(f.read().split()[0]), 65535))
    except (OSError, ValueError, IndexError):
        return 4096


def client_gone(sock):
    # type: (object) -> bool
    """Whether the client of sock has closed its end (hung up, or reset), without reading."""
    try:
        poller = select.poll()
        poller.register(sock, 0)  # POLLHUP and POLLERR are reported whatever the mask
        return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return True


class ClientGone(Exception):
    """The request's client hung up while the request waited: it is dropped."""


class Slots(object):
    """`count` request slots, handed out in arrival order."""

    def __init__(self, count, queue_seconds=QUEUE_SECONDS, on_idle=None):
        # type: (int, float, Optional[Callable[[], None]]) -> None
        self.count = count
        self.queue_seconds = queue_seconds
        self.on_idle = on_idle  # called when a release leaves every slot free
        self._lock = threading.Lock()
        self._free = count
        self._queue = collections.deque()  # type: collections.deque  # Events, oldest first
        self.dropped = 0  # requests dropped because their client had gone
        self.refused = 0  # requests answered 503 after queue_seconds

    def waiting(self):
        # type: () -> int
        with self._lock:
            return len(self._queue)

    def acquire(self, gone):
        # type: (Callable[[], bool]) -> None
        """Take a slot; ClientGone when gone() says the client left meanwhile (or at once),
        Unavailable after queue_seconds."""
        with self._lock:
            if self._free > 0 and not self._queue:
                self._free -= 1
                ticket = None
            else:
                ticket = threading.Event()
                self._queue.append(ticket)
        if ticket is not None:
            deadline = time.time() + self.queue_seconds
            while not ticket.wait(CHECK_SECONDS):
                left = gone()
                if left or time.time() >= deadline:
                    with self._lock:
                        handed = ticket.is_set()
                        if not handed:
                            self._queue.remove(ticket)
                    if handed:  # a slot arrived meanwhile: it is ours
                        break
                    self._count(left)
                    if left:
                        raise ClientGone()
                    raise Unavailable("berthd is busy: this request waited %g s behind the %d "
                                      "being served and is refused undone; retry later (daemon.json "
                                      "max-concurrent-requests sets how many are served at once)"
                                      % (self.queue_seconds, self.count))
        if gone():
            self.release()
            self._count(True)
            raise ClientGone()

    def _count(self, gone):
        # type: (bool) -> None
        with self._lock:
            if gone:
                self.dropped += 1
            else:
                self.refused += 1

    def release(self):
        # type: () -> None
        """Give a slot back: to the oldest waiting request, if any."""
        with self._lock:
            if self._queue:
                self._queue.popleft().set()
                return
            self._free += 1
            idle = self._free == self.count
        if idle and self.on_idle is not None:
            self.on_idle()
