"""A few threads running calls handed to them: what the registry client needs of
concurrent.futures.ThreadPoolExecutor (submit, map, and `with` waiting for the work).

Why not concurrent.futures: on Python 3.6 importing it imports its process pool too, and with
it multiprocessing: 1.3 MB of berthd's memory for ever after the first pull or push
(tracemalloc), where this module is a few kB.
"""

import collections
import threading

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Iterable, List, Optional  # noqa: F401


class Job(object):
    """One submitted call: `result()` waits for it and returns its value or raises its error."""

    __slots__ = ("fn", "args", "_done", "_value", "_error")

    def __init__(self, fn, args):
        # type: (Callable, tuple) -> None
        self.fn, self.args = fn, args
        self._done = threading.Event()
        self._value = None  # type: Any
        self._error = None  # type: Optional[BaseException]

    def run(self):
        # type: () -> None
        try:
            self._value = self.fn(*self.args)
        except BaseException as e:  # handed to whoever asks for the result
            self._error = e
        finally:
            self._done.set()

    def result(self):
        # type: () -> Any
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Workers(object):
    """At most `count` threads, started as work comes and ended when the pool is closed
    (leaving the `with` block waits for every job handed in, as an executor's does)."""

    def __init__(self, count, name="worker"):
        # type: (int, str) -> None
        if count < 1:
            raise ValueError("a pool needs at least one thread, not %d" % count)
        self.count = count
        self.name = name
        self._queue = collections.deque()  # type: Deque[Job]
        self._cond = threading.Condition()
        self._threads = []  # type: List[threading.Thread]
        self._idle = 0
        self._closed = False

    def submit(self, fn, *args):
        # type: (Callable, Any) -> Job
        """Run fn(*args) on one of the threads; its Job."""
        job = Job(fn, args)
        with self._cond:
            if self._closed:
                raise RuntimeError("%s pool is closed: no more work can be handed in" % self.name)
            self._queue.append(job)
            if self._idle:  # a waiting thread takes it (and is no longer counted as waiting)
                self._idle -= 1
                self._cond.notify()
            elif len(self._threads) < self.count:
                t = threading.Thread(target=self._work, name="%s-%d" % (self.name, len(self._threads)),
                                     daemon=True)
                self._threads.append(t)
                t.start()
            # else the first thread done with its job takes it
        return job

    def map(self, fn, items):
        # type: (Callable, Iterable) -> List[Any]
        """fn of each item on the threads; their values in order (the first error raised)."""
        return [job.result() for job in [self.submit(fn, item) for item in items]]

    def _work(self):
        # type: () -> None
        while True:
            with self._cond:
                while not self._queue:
                    if self._closed:
                        return
                    self._idle += 1
                    self._cond.wait()  # (submit() or close() takes it off the idle count)
                job = self._queue.popleft()
            job.run()

    def close(self):
        # type: () -> None
        """Let the threads finish what was handed in, then end them; returns when they have."""
        with self._cond:
            self._closed = True
            self._idle = 0
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def __enter__(self):
        # type: () -> Workers
        return self

    def __exit__(self, *exc):
        # type: (Any) -> None
        self.close()
