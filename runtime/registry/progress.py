"""Docker's JSON progress messages for pull and push, emitted thread-safely and throttled.

The dicts are what `docker pull` prints from: {"status": "Downloading", "id": "a3ed95caeb02",
"progressDetail": {"current": N, "total": T}, "progress": "[==>   ]  1.2MB/2.3MB"}.
"""

import threading
import time

from runtime.units import human_size

BAR_WIDTH = 50
INTERVAL = 0.1


def short_id(digest):
    # type: (str) -> str
    """The 12-hex id docker shows for a layer."""
    return digest.split(":", 1)[-1][:12]


def bar(current, total):
    # type: (int, int) -> str
    """`[=====>      ]  1.2MB/2.3MB`."""
    if not total:
        return human_size(current, 4)
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = "=" * filled + (">" if filled < BAR_WIDTH else "")
    arrow = ("=" * (BAR_WIDTH - 1) + ">") if filled >= BAR_WIDTH else arrow
    pad = " " * (BAR_WIDTH - len(arrow))
    return "[%s%s] %8s/%s" % (arrow, pad, human_size(current, 4), human_size(total, 4))


class Progress(object):
    """Calls `callback(dict)` under a lock; a None callback makes every call a no-op."""

    def __init__(self, callback=None):
        self._cb = callback
        self._lock = threading.Lock()
        self._last = {}  # type: dict

    def status(self, text, id=None, detail=True):
        # type: (str, str, bool) -> None
        """A plain status line, optionally for one layer."""
        msg = {"status": text}
        if id is not None:
            msg["id"] = id
            if detail:
                msg["progressDetail"] = {}
        self.emit(msg)

    def transfer(self, action, id, current, total, force=False):
        # type: (str, str, int, int, bool) -> None
        """A Downloading/Pushing/Extracting line, at most every INTERVAL per layer."""
        now = time.time()
        key = (action, id)
        if not force and now - self._last.get(key, 0) < INTERVAL and current < total:
            return
        self._last[key] = now
        self.emit({"status": action, "id": id, "progressDetail": {"current": current, "total": total},
                   "progress": bar(current, total)})

    def emit(self, msg):
        # type: (dict) -> None
        """Send one message."""
        if self._cb is not None:
            with self._lock:
                self._cb(msg)
