"""A thread per connection, as socketserver.ThreadingMixIn gives, but threads that are kept:
one done with its connection waits a while for the next before it ends.

Why: `Thread.start()` returns only once the new thread runs, ~0.3 ms here, paid by the accept
loop before every connection is read; `berth run` makes four connections one after another
(create, attach, wait, start). As many threads run as connections are open at once (attach,
logs and events streams keep theirs), like ThreadingMixIn; the API server's connection
semaphore bounds them.
"""

import collections
import socketserver
import threading

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Deque, Tuple  # noqa: F401

# how long a thread with no connection waits for one before it ends
IDLE_SECONDS = 60.0


class KeptThreadsMixIn(object):
    """For a socketserver server class: process_request hands the connection to a waiting thread,
    or starts one when none waits. The threads are daemons and never block a shutdown."""

    def setup_kept_threads(self):
        # type: () -> None
        """Call from the server's __init__."""
        self._kept_cond = threading.Condition()
        self._kept_pending = collections.deque()  # type: Deque[Tuple[Any, Any]]
        self._kept_waiting = 0

    def process_request(self, request, client_address):
        # type: (Any, Any) -> None
        with self._kept_cond:
            self._kept_pending.append((request, client_address))
            if self._kept_waiting >= len(self._kept_pending):
                self._kept_cond.notify()  # one waiting thread per pending connection: it takes one
                return
        threading.Thread(target=self._kept_loop, name="api connection", daemon=True).start()

    def _kept_loop(self):
        # type: () -> None
        cond = self._kept_cond
        while True:
            with cond:
                while not self._kept_pending:
                    self._kept_waiting += 1
                    woken = cond.wait(IDLE_SECONDS)
                    self._kept_waiting -= 1
                    if not woken and not self._kept_pending:
                        return
                request, client_address = self._kept_pending.popleft()
            self._kept_serve(request, client_address)

    # what ThreadingMixIn's thread does with its one connection: finish, handle_error, shutdown
    _kept_serve = socketserver.ThreadingMixIn.process_request_thread
