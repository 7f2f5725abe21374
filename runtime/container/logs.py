"""Reading a container's log (json-file or local format, runtime/container/proc/logfile.py) across
its rotated files: stream selection, since/until, tail, timestamps, follow (through rotations:
a follower finishes the renamed file, then opens the new one)."""

import collections
import os
import time

from runtime.container.proc import logfile
from runtime.framing import STDERR, STDOUT


def read(current, stdout=True, stderr=True, follow=False, since=0.0, until=0.0, tail="all",
         timestamps=False, running=None, driver="json-file", max_file=1):
    # type: (str, bool, bool, bool, float, float, str, bool, object, str, int) -> object
    """Yield (stream, bytes) lines from the log whose current file is `current` and its
    rotated ones; with follow, keep reading while running() is true."""
    entries = logfile.entries_of(driver)
    wanted = set()
    if stdout:
        wanted.add(STDOUT)
    if stderr:
        wanted.add(STDERR)

    def pick(items):
        # type: (object) -> object
        for stream, t, text, raw in items:
            if stream not in wanted or (since and t < since):
                continue
            if until and t > until:
                return
            data = text.encode("utf-8")
            yield stream, ((raw + " ").encode() + data) if timestamps else data

    n = str(tail).strip().lower()
    last = None if n in ("all", "", "-1") else max(int(n), 0)
    first = collections.deque(maxlen=last)  # (only the last `tail` lines are held)
    f = None
    for path in logfile.files(current, max_file):
        try:
            g = logfile.open_log(path)
        except FileNotFoundError:  # rotated away meanwhile
            continue
        if path == current:
            f = g
            first.extend(pick(entries(f)))
        else:
            with g:
                first.extend(pick(entries(g)))
    for item in first:
        yield item
    if not follow:
        if f is not None:
            f.close()
        return
    try:
        while f is None:  # no file yet (the container has not started)
            if not (running() if running else False):
                return
            try:
                f = open(current, "rb")
            except FileNotFoundError:
                time.sleep(0.05)
        while True:
            alive = running() if running else False  # before the read: nothing written after is missed
            got = False
            for item in pick(entries(f)):
                got = True
                yield item
            if got:
                continue
            if _rotated(f, current):
                nxt = _next_file(f, current, max_file)
                f.close()
                f = nxt  # the rest of the old file was read above
                continue
            if not alive:
                return
            time.sleep(0.05)
    finally:
        if f is not None:
            f.close()


def _rotated(f, current):
    # type: (object, str) -> bool
    """Whether `current` is a new file, not the one f reads (a rotation happened)."""
    try:
        return os.stat(current).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _next_file(f, current, max_file):
    # type: (object, str, int) -> object
    """The file written after the one f reads, which was rotated: found by its inode among
    the rotated files when the follower fell more than one rotation behind, else the current
    one. (A gzipped file has a new inode: a follower more than one rotation behind a
    compressing log skips what was compressed meanwhile.)"""
    ino = os.fstat(f.fileno()).st_ino
    for _ in range(10):
        chain = [p for p in logfile.files(current, max_file) if not p.endswith(".gz")]
        try:
            inodes = [os.stat(p).st_ino for p in chain]
            at = inodes.index(ino) if ino in inodes else -1
            path = chain[at + 1] if 0 <= at < len(chain) - 1 else current
            g = open(path, "rb")
        except FileNotFoundError:  # rotated again meanwhile
            continue
        if path == current or os.fstat(g.fileno()).st_ino == inodes[at + 1]:
            return g
        g.close()
    return open(current, "rb")


def log_size(path):
    # type: (str) -> int
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
