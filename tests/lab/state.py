"""state.json: everything a lab created, recorded before it is created.

`down` (from any process) reads it to remove exactly what `up` made. Writes are atomic (temp
file + rename) and serialised by a lock file, so threads and processes can update it.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import re
import threading

from .paths import RUN_DIR, lab_run_dir

_tlock = threading.RLock()


@contextlib.contextmanager
def global_lock():
    """Serialise subnet allocation and lab creation across processes."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


class State:
    """The recorded state of one lab (a dict persisted as /run/berth-lab/<id>/state.json)."""

    def __init__(self, lab_id: str):
        self.lab_id = lab_id
        self.dir = lab_run_dir(lab_id)
        self.path = self.dir / "state.json"

    def exists(self) -> bool:
        """True if the lab has a state file."""
        return self.path.exists()

    def read(self) -> dict:
        """The current state (empty if none)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    @contextlib.contextmanager
    def update(self):
        """Yield the state dict under the lock; it is written back atomically on exit."""
        with _tlock:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                data = self.read()
                yield data
                tmp = self.dir / f".state.{os.getpid()}.{threading.get_ident()}"
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.rename(tmp, self.path)


def all_labs() -> list:
    """Ids of every lab with a state dir on this machine (even one whose state.json is not
    written yet, so `down` also finds labs whose creation was interrupted)."""
    if not RUN_DIR.is_dir():
        return []
    return sorted(p.name for p in pathlib.Path(RUN_DIR).iterdir()
                  if p.is_dir() and re.fullmatch(r"[a-z0-9]{1,8}", p.name))
