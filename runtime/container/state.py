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
import threading
import time

try:
    from typing import Optional  # noqa: F401
except ImportError:  # pragma: no cover
    pass

from runtime.container.proc import cgroups
from runtime.atomicfile import read_json, write_json
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


class Container(object):
    """One container: `cfg` is config.v2.json (Id, Name, Created, Config, HostConfig, ...)."""

    def __init__(self, path, cfg):
        # type: (str, dict) -> None
        self.path = path
        self.cfg = cfg
        self.id = cfg["Id"]
        self.lock = threading.Lock()  # one start/stop transition at a time
        # attaches made while it is not running: (socket, request) for the next start's monitor
        self.early = []  # type: list
        self.restarting = False  # a restart's stop: AutoRemove leaves the container alone
        self.final_exit_code = 0  # the exit code when it was removed, for waiters on "removed"

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
        write_json(self.file("config.v2.json"), self.cfg)

    def started(self):
        # type: () -> dict
        return read_json(self.file("state.json"), {}) or {}

    def set_started(self, st):
        # type: (dict) -> None
        write_json(self.file("state.json"), st)

    def exited(self):
        # type: () -> dict
        return read_json(self.file("exit.json"), {}) or {}

    def cgroup(self):
        # type: () -> cgroups.CgroupManager
        cg = self.cfg["Cgroup"]
        return cgroups.manager(cg["parent"], cg["name"], cg["version"], tuple(cg.get("extra") or ()))

    def alive_pid(self):
        # type: () -> int
        """PID 1's host pid while it runs (same pid and start time as recorded), else 0."""
        st = self.started()
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

    def state(self):
        # type: () -> dict
        """The State object of ContainerInspectResponse. The files are read again while they
        disagree with a live monitor: PID 1 exited and the exit is not recorded yet, or a
        restart replaced state.json between our two reads (for at most ~0.1 s)."""
        for _ in range(20):
            out = self._state(False)
            if out is not None:
                return out
            time.sleep(0.005)
        return self._state(True)

    def _state(self, final):
        # type: (bool) -> Optional[dict]
        st = self.started()
        out = {"Status": CREATED, "Running": False, "Paused": False, "Restarting": False,
               "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": st.get("ExitCode", 0),
               "Error": st.get("Error", ""), "StartedAt": st.get("StartedAt", ZERO_TIME),
               "FinishedAt": st.get("FinishedAt", ZERO_TIME)}
        if not st.get("Pid"):
            return out  # never started (exit.json is not read: `ps` meets 1,000s of these)
        ex = self.exited()
        pid = self.alive_pid()
        if pid:
            paused = self.cgroup().frozen()
            out.update(Status=PAUSED if paused else RUNNING, Running=True, Paused=paused, Pid=pid)
            return out
        if ex.get("Restarting") and self.monitor_alive(st):
            # its monitor waits out the restart policy's delay: docker counts that as running
            out.update(Status=RESTARTING, Running=True, Restarting=True, ExitCode=ex["ExitCode"],
                       OOMKilled=ex.get("OOMKilled", False),
                       FinishedAt=ex.get("FinishedAt", out["FinishedAt"]))
            return out
        if ex:
            out.update(Status=EXITED, ExitCode=ex["ExitCode"], OOMKilled=ex.get("OOMKilled", False),
                       FinishedAt=ex.get("FinishedAt", out["FinishedAt"]))
        elif not final and self.monitor_alive(st):
            return None
        else:  # the monitor vanished without recording the exit
            out.update(Status=EXITED, ExitCode=255, Error="the container's monitor died")
        return out
