"""Reading Docker's json-file log: stream selection, since/until, tail, timestamps, follow."""

import json
import os
import time

from runtime.framing import STDERR, STDOUT
from runtime.timefmt import parse_rfc3339

_STREAMS = {"stdout": STDOUT, "stderr": STDERR}


def _entries(f):
    # type: (object) -> object
    """(stream, time, text, raw time) for each complete line from f's current position."""
    while True:
        pos = f.tell()
        line = f.readline()
        if not line:
            return
        if not line.endswith(b"\n"):  # being written: come back for it
            f.seek(pos)
            return
        try:
            rec = json.loads(line.decode("utf-8"))
        except ValueError:
            continue
        raw = rec.get("time", "")
        yield _STREAMS.get(rec.get("stream"), STDOUT), parse_rfc3339(raw), rec.get("log", ""), raw


def read(path, stdout=True, stderr=True, follow=False, since=0.0, until=0.0, tail="all",
         timestamps=False, running=None):
    # type: (str, bool, bool, bool, float, float, str, bool, object) -> object
    """Yield (stream, bytes) lines; with follow, keep reading while running() is true."""
    wanted = set()
    if stdout:
        wanted.add(STDOUT)
    if stderr:
        wanted.add(STDERR)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        def pick(entries):
            # type: (object) -> object
            for stream, t, text, raw in entries:
                if stream not in wanted or (since and t < since):
                    continue
                if until and t > until:
                    return
                data = text.encode("utf-8")
                yield stream, ((raw + " ").encode() + data) if timestamps else data

        first = list(pick(_entries(f)))
        n = str(tail).strip().lower()
        if n not in ("all", "", "-1"):
            first = first[-int(n):] if int(n) > 0 else []
        for item in first:
            yield item
        if not follow:
            return
        while True:
            alive = running() if running else False
            got = False
            for item in pick(_entries(f)):
                got = True
                yield item
            if not alive:
                return
            if not got:
                time.sleep(0.05)


def log_size(path):
    # type: (str) -> int
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
