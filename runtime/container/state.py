"""A container's record on disk and its state, checked against the kernel (runc's
refreshState: trust pid + start time and the freezer over the file).

Files in `<data-root>/containers/<id>/`: `config.v2.json` (what create decided), `state.json`
(written by the engine at start: Pid, MonitorPid, PidStart, StartedAt, or a start Error),
`exit.json` (written by the monitor when PID 1 exits; `Restarting` while a restart policy's
restart is due, and then the monitor rewrites state.json), `manual-stop` (stopped or killed
through the API: runtime/container/proc/restart.py), `<id>-json.log`, `upper/`, `work/`,
`exec/`. Roots are mounted on the shared `containers/.rootfs`, each in its own namespace.
"""

import os
import sys
import threading
import time

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Optional, Tuple  # noqa: F401

from runtime.atomicfile import read_json, write_json
from runtime.container.proc import cgroups
from runtime.timefmt import ZERO_TIME

CREATED, RUNNING, PAUSED, RESTARTING, EXITED = "created", "running", "paused", "restarting", "exited"


def proc_start_time(pid):
    # type: (int) -> int
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or -1 when pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (OSError, ValueError):
        return -1
    fields = data[data.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return -1
    return int(fields[19])


def compact(obj):
    # type: (Any) -> Any
    """A copy of obj (JSON data) whose keys and strings of up to 256 characters are interned.
    The engine holds every container's config in memory, and most of their strings are the same
    few (keys, "json-file", "/bin/sh", PATH=..., the image's id and layer paths): 1,000 configs
    took 7.3 MB, 3.6 MB so (tracemalloc); 1,200 on Python 3.6: 6.6 MB with strings of up to
    64 characters interned, 6.1 MB with up to 256."""
    kind = type(obj)
    if kind is dict:
        return {(sys.intern(k) if type(k) is str else k): compact(v) for k, v in obj.items()}
    if kind is list:
        return [compact(v) for v in obj]
    if kind is str and len(obj) <= 256:
        return sys.intern(obj)
    return obj


# The state of a container never started, kept once for all of them (a kept state is never
# changed: 1,000 created containers held 0.65 MB of copies of it on Python 3.6).
NEVER_STARTED = {"Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
                 "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                 "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


class Container(object):
    """One container: `cfg` is config.v2.json (Id, Name, Created, Config, HostConfig, ...)."""

    def __init__(self, path, cfg):
        # type: (str, dict) -> None
        self.path = path
        self.cfg = compact(cfg)
        self.id = cfg["Id"]
        self.lock = threading.Lock()  # one start/stop transition at a time
        # attaches made while it is not running: (socket, request) for the next start's monitor
        self.early = []  # type: list
        self.restarting = False  # a restart's stop: AutoRemove leaves the container alone
        self.final_exit_code = 0  # the exit code when it was removed, for waiters on "removed"
        # the last state read from the files, while it still holds (see state()); `ps` over
        # 1,000s of containers then reads no file for those that are not running
        self._cached = None  # type: Optional[tuple]
        self._view = None  # type: Optional[tuple]  # (state, ContainerSummary) of a stopped one
        self._generation = 0
        # the engine's watcher holds a connection to this run's monitor, and calls
        # forget_state() when it ends (at PID 1's exit, or the monitor's death)
        self.watched = False
        self._cache_lock = threading.Lock()

    @classmethod
    def load(cls, path):
        # type: (str) -> Container
        cfg = read_json(os.path.join(path, "config.v2.json"))
        if not cfg:
            raise ValueError("no config.v2.json in %s" % path)
        return cls(path, cfg)

    @property
    def name(self):
        # type: () -> str
        return self.cfg["Name"]

    def file(self, name):
        # type: (str) -> str
        return os.path.join(self.path, name)

    def save(self):
        # type: () -> None
        try:
            write_json(self.file("config.v2.json"), self.cfg)
        finally:
            self.forget_state()

    def started(self):
        # type: () -> dict
        return read_json(self.file("state.json"), {}) or {}

    def set_started(self, st):
        # type: (dict) -> None
        try:
            write_json(self.file("state.json"), st)
        finally:
            self.forget_state()

    def forget_state(self):
        # type: () -> None
        """Drop the cached state: the engine changed the container's files or its freezer (a
        state being read meanwhile is not cached either)."""
        with self._cache_lock:
            self._generation += 1
            self._cached = self._view = None

    def generation(self):
        # type: () -> int
        """How many times forget_state() was called: read before a view is computed and given
        to keep_view()."""
        with self._cache_lock:
            return self._generation

    def cached_view(self, state):
        # type: (dict) -> Optional[object]
        """The view kept by keep_view() for this same state, or None."""
        view = self._view
        return view[1] if view is not None and view[0] == state else None

    def frozen_state(self, state):
        # type: (dict) -> dict
        """A copy of state that nobody changes, for keep_view(): the state kept by state() when
        it is equal (no second dict per container: 1,200 of them are 0.5 MB), else a new copy."""
        cached = self._cached
        if cached is not None and cached[0] == state:
            return cached[0]
        return dict(state)

    def keep_view(self, state, view, generation):
        # type: (dict, object, int) -> None
        """Keep a view computed from state and cfg, unless forget_state() was called since
        generation was read. state is kept as it is: a copy that nobody changes."""
        with self._cache_lock:
            if self._generation == generation:
                self._view = (state, view)

    def exited(self):
        # type: () -> dict
        return read_json(self.file("exit.json"), {}) or {}

    def cgroup(self):
        # type: () -> cgroups.CgroupManager
        cg = self.cfg["Cgroup"]
        return cgroups.manager(cg["parent"], cg["name"], cg["version"], tuple(cg.get("extra") or ()))

    def alive_pid(self, st=None):
        # type: (Optional[dict]) -> int
        """PID 1's host pid while it runs (same pid and start time as recorded in state.json,
        or st read from it), else 0."""
        st = self.started() if st is None else st
        pid = st.get("Pid") or 0
        if pid and not os.path.exists(self.file("exit.json")) and proc_start_time(pid) == st.get("PidStart"):
            return pid
        return 0

    def output_open(self):
        # type: () -> bool
        """True while the run's log may still grow: PID 1 runs, or it has exited and its
        monitor is still draining the output into the log (exit.json comes after that)."""
        if self.alive_pid():
            return True
        st = self.started()
        mon = st.get("MonitorPid") or 0
        return bool(mon) and not os.path.exists(self.file("exit.json")) \
            and proc_start_time(mon) == st.get("MonitorStart")

    def monitor_alive(self, st=None):
        # type: (dict) -> bool
        """Whether the monitor recorded in state.json (or st) still runs."""
        st = self.started() if st is None else st
        return bool(st.get("MonitorPid")) and proc_start_time(st["MonitorPid"]) == st.get("MonitorStart")

    def state(self, listing=False):
        # type: (bool) -> dict
        """The State object of ContainerInspectResponse. The files are read again while they
        disagree with a live monitor: PID 1 exited and the exit is not recorded yet, or a
        restart replaced state.json between our two reads (for at most ~0.1 s).

        A state read from the files is kept while it must still hold, so that reading it again
        costs no file: one that is settled (never started, or exited for good: only an engine's
        start or removal changes those, and they call forget_state()) until forget_state();
        a running one while its PID 1 lives with the same start time (its exit, a restart and
        the monitor's death all end that PID 1 first; pause and unpause call forget_state()).
        A restarting one is read from the files each time: its monitor rewrites them.

        listing (`ps`): a running one is also taken as it was kept, without looking at its PID 1,
        while the watcher is connected to its monitor (as dockerd's list shows what its event
        stream last said: an exit shows once the watcher has seen it, milliseconds later).
        Lifecycle decisions (start, stop, remove, wait) and inspect always look."""
        cached = self._cached
        if cached is not None:
            st, pid, pid_start = cached
            if not pid or (listing and self.watched) or proc_start_time(pid) == pid_start:
                return dict(st)
        with self._cache_lock:
            generation = self._generation
        read = self._state(False)
        waited, pause = 0.0, 0.0005
        while read is None:
            # the monitor records an exit within a millisecond or two of PID 1's: poll quickly
            # at first (a flat 5 ms was the whole of a quick `true`'s run), at most ~0.1 s
            time.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.005)
            read = self._state(waited >= 0.1)
        out, pid_start = read
        if pid_start is not None:
            with self._cache_lock:
                if self._generation == generation:
                    kept = NEVER_STARTED if out == NEVER_STARTED else dict(out)
                    self._cached = (kept, out["Pid"], pid_start)
        return out

    def _state(self, final):
        # type: (bool) -> Optional[Tuple[dict, Optional[int]]]
        """(state, how long it holds: PID 1's start time while it runs, 0 when settled, None
        when it may change any time), or None while the files disagree with a live monitor
        (unless final)."""
        st = self.started()
        out = {"Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
               "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": st.get("ExitCode", 0),
               "Error": st.get("Error", ""), "StartedAt": st.get("StartedAt", ZERO_TIME),
               "FinishedAt": st.get("FinishedAt", ZERO_TIME)}
        if not st.get("Pid"):
            return out, 0  # never started (exit.json is not read: `ps` meets 1,000s of these)
        ex = self.exited()
        pid = self.alive_pid(st)
        if pid:
            paused = self.cgroup().frozen()
            out.update(Status=PAUSED if paused else RUNNING, Running=True, Paused=paused, Pid=pid)
            return out, st.get("PidStart")
        alive = self.monitor_alive(st) if not ex or ex.get("Restarting") else False
        if not ex and not alive:
            # read again: the monitor may have recorded the exit and gone since the first read
            # (a `run` of a quick command under load: taken for a dead monitor, and kept)
            ex = self.exited()
        if ex.get("Restarting") and alive:
            # its monitor waits out the restart policy's delay: docker counts that as running
            out.update(Status=RESTARTING, Running=True, Restarting=True, ExitCode=ex["ExitCode"],
                       OOMKilled=ex.get("OOMKilled", False),
                       FinishedAt=ex.get("FinishedAt", out["FinishedAt"]))
            return out, None
        if ex:
            out.update(Status=EXITED, ExitCode=ex["ExitCode"], OOMKilled=ex.get("OOMKilled", False),
                       FinishedAt=ex.get("FinishedAt", out["FinishedAt"]),
                       Error=ex.get("Error") or out["Error"])  # (a failed restart, a monitor's failure)
        elif alive:
            if not final:
                return None
            out.update(Status=EXITED, ExitCode=255, Error="the container's monitor died")
            return out, None  # (or is slow to record the exit: read again next time)
        else:  # the monitor vanished without recording the exit
            out.update(Status=EXITED, ExitCode=255, Error="the container's monitor died")
        return out, 0
