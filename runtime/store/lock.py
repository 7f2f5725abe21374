"""One lock for the whole store: a threading.RLock inside the process and a POSIX record lock
(lockf) on a lock file between processes, so two engines (or a daemon and a test) on one data
root are safe. Re-entrant: a load that unpacks layers may call other locked operations.

lockf rather than flock: a record lock belongs to the process and is not inherited by fork(),
so a container monitor forked while the store is locked cannot keep it locked."""

import fcntl
import os
import threading


class StoreLock(object):
    """`with lock:` holds the store exclusively."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd = -1

    def __enter__(self):
        self.take(wait=True)
        return self

    def take(self, wait):
        # type: (bool) -> bool
        """Hold the lock (leave with release()); wait=False: only when that needs no wait, and
        False when someone holds it."""
        if not self._rlock.acquire(blocking=wait):
            return False
        try:
            if self._depth == 0:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.lockf(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException as e:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._rlock.release()
            if not wait and isinstance(e, (BlockingIOError, PermissionError)):
                return False  # (lockf's EAGAIN / EACCES: another process holds it)
            raise
        self._depth += 1
        return True

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        # type: () -> None
        """Leave the lock once (what take() or `with` entered)."""
        self._depth -= 1
        if self._depth == 0:
            os.close(self._fd)  # closing drops the record lock
            self._fd = -1
        self._rlock.release()
