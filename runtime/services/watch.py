"""A container's events as they happen outside any request: `die` (and `oom`) at each exit of a
running container, and `start` again when its monitor's restart policy brought it back
(runtime/container/proc/restart.py).

One thread per engine (Watcher) holds a `wait` connection to the monitor of every running
container and sleeps in poll() on them (no CPU while nothing happens). A start appends the
container to its list and writes a byte to its wake-up pipe: no thread is made on the start
path (that cost ~4 ms of a start under load). Whoever needs a `die` first (the watcher, a
stop, a removal, the next start) emits it through `Watcher.exited(c)`: once per run either
way."""

import os

import select
import threading
import time

from runtime.container import monitor_client as client
from runtime.events import container_event

FAST = 0.02  # how often a restart due is polled


def emit(events, c, action, **extra):
    # type: (object, object, str, object) -> None
    container_event(events, c, action, **extra)


class _Entry(object):
    """One watched container: its wait socket, or the PID 1 of the run whose restart it
    waits for."""

    def __init__(self, c):
        # type: (object) -> None
        self.c = c
        self.sock = None  # type: object
        self.restart_of = None  # type: object


class Watcher(object):
    """The engine's watcher thread; on_exit(c) runs after each `die` (network disconnect and
    volume unmount events), on_restart(c) before the `start` of a policy's restart (connect,
    mount)."""

    def __init__(self, events, on_exit=None, on_restart=None):
        # type: (object, object, object) -> None
        self.events, self.on_exit, self.on_restart = events, on_exit, on_restart
        self.lock = threading.Lock()  # the new list and each container's died mark
        self.emitting = threading.RLock()  # held while a die and what follows it are emitted
        self.new = []  # type: list
        self.entries = {}  # type: dict
        self.waiting = {}  # type: dict  # the entries whose restart is due: polled every FAST
        self.by_fd = {}  # type: dict  # wait socket's fd -> its entry
        self.poller = select.poll()
        self.closed = False
        self.thread = None  # type: threading.Thread
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)

    def add(self, c):
        # type: (object) -> None
        """Watch c from the next tick on (a start, or a running container at engine start)."""
        with self.lock:
            self.new.append(c)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="watcher")
                self.thread.daemon = True
                self.thread.start()
        try:
            os.write(self.wake_w, b"w")
        except OSError:  # (full: it has wake-ups pending anyway)
            pass

    def close(self):
        # type: () -> None
        self.closed = True
        try:
            os.write(self.wake_w, b"c")
        except OSError:
            pass

    def exited(self, c):
        # type: (object) -> dict
        """Emit the current run's `die` (and `oom`, and on_exit's) if it has exited and it was
        not emitted yet; returns its exit record ({} while it runs). A caller that finds them
        being emitted waits for the end (a stop's `stop` comes after the die's disconnect)."""
        with self.emitting:
            with self.lock:
                started = c.started()
                ex = c.exited()
                if not ex:
                    st = c.state()
                    if st["Running"] or not started.get("Pid"):
                        return {}
                    ex = {"ExitCode": st["ExitCode"]}  # the monitor died without a record
                run = started.get("StartedAt")
                if run == getattr(c, "died", None):
                    return ex
                c.died = run
            if ex.get("OOMKilled"):
                emit(self.events, c, "oom")
            emit(self.events, c, "die", exitCode=ex.get("ExitCode", 255))
            if self.on_exit is not None:
                self.on_exit(c)
        return ex

    def _loop(self):
        # type: () -> None
        # one poll set for the thread's life, changed as sockets come and go: built again at
        # each wake-up, it cost O(running containers) per start and exit. poll, not select:
        # select() fails on descriptors above 1023, which a berthd with some 500 running
        # containers holds
        self.poller.register(self.wake_r, select.POLLIN)
        while not self.closed:
            with self.lock:
                fresh, self.new = self.new, []
            for c in fresh:
                old = self.entries.pop(c.id, None)
                if old is not None:
                    self.waiting.pop(c.id, None)
                    self._close(old)
                e = self.entries[c.id] = _Entry(c)
                self._connect(e)
            for e in list(self.waiting.values()):
                self._check_restart(e)
                if e.restart_of is None or self.entries.get(e.c.id) is not e:
                    self.waiting.pop(e.c.id, None)
            timeout = FAST if self.waiting else None
            try:
                ready = [fd for fd, _ in self.poller.poll(None if timeout is None else timeout * 1000)]
            except OSError:
                ready = []
                time.sleep(FAST)
            if self.wake_r in ready:
                os.read(self.wake_r, 4096)
                ready.remove(self.wake_r)
            for fd in ready:
                e = self.by_fd.get(fd)
                if e is None:  # (closed while an earlier one in this batch was handled)
                    continue
                try:
                    data = e.sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self._ended(e)

    def _connect(self, e, again=True):
        # type: (_Entry, bool) -> None
        try:
            e.sock = client.connect(e.c, {"op": "wait"})
            e.c.watched = True  # (its end calls forget_state(): `ps` may trust the kept state)
        except ConnectionError:  # no monitor any more: it has exited (or was removed)
            e.sock = None
            if again:
                self._ended(e)
            else:
                self.entries.pop(e.c.id, None)
            return
        fd = e.sock.fileno()
        self.by_fd[fd] = e
        self.poller.register(fd, select.POLLIN)

    def _close(self, e):
        # type: (_Entry) -> None
        """Close e's wait socket, out of the poll set first (its number may be reused at once)."""
        if e.sock is not None:
            fd = e.sock.fileno()
            self.poller.unregister(fd)
            del self.by_fd[fd]
            e.sock.close()
            e.sock = None

    def _ended(self, e):
        # type: (_Entry) -> None
        e.c.watched = False
        e.c.forget_state()  # the run ended, or its monitor died: read its state again
        self._close(e)
        pid = e.c.started().get("Pid")
        ex = self.exited(e.c)
        if ex.get("Restarting"):
            e.restart_of = pid
            self.waiting[e.c.id] = e
        elif not ex and e.c.state()["Running"]:  # a wake-up before the exit was recorded
            self._connect(e, again=False)
        else:
            self.entries.pop(e.c.id, None)

    def _check_restart(self, e):
        # type: (_Entry) -> None
        c = e.c
        # exit.json before state.json: the monitor writes the new state.json before it removes
        # the old exit.json, and a later final exit.json after both
        restarting = c.exited().get("Restarting")
        if c.started().get("Pid") != e.restart_of:
            e.restart_of = None
            if self.on_restart is not None:
                self.on_restart(c)
            emit(self.events, c, "start")
            self._connect(e)
        elif not restarting or not c.monitor_alive():
            self.entries.pop(c.id, None)  # it gave up, or was stopped
