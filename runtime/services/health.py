"""Running health checks (rules in runtime/container/healthcheck.py): one sleeping thread per
running container that has a check; each probe is run by the container's monitor (one fork
into the container's namespaces and cgroup, runtime/container/proc/probe.py), which answers
with the exit code and 4 KiB of output, and kills it at the timeout. A status change is a
`health_status: STATUS` event."""

import os
import threading
import time

from runtime.container import healthcheck
from runtime.container.execs import run_spec
from runtime.container import monitor_client as client
from runtime.container.proc.wire import recv_msg
from runtime.timefmt import parse_rfc3339, rfc3339
from runtime.services import watch
from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Optional  # noqa: F401


def probe(c, check, pid, security=None):
    # type: (object, dict, int, object) -> dict
    """Run the check once in c (PID 1 = pid) through its monitor (runtime/container/proc/
    probe.py): {"Start", "End", "ExitCode", "Output"}."""
    start = time.time()
    timeout = healthcheck.setting(check, "Timeout") / 1e9
    run = run_spec(c, pid, "", "", healthcheck.command(check), {})
    if security is not None:  # the container's seccomp and no_new_privs, as an exec's
        run["process"].update(security(c))
    code, output = -1, ""
    try:
        sock = client.connect(c, {"op": "probe", "process": run["process"],
                                  "cgroup_procs": run["cgroup_procs"], "timeout": timeout})
    except ConnectionError as e:
        output = "cannot reach the container's monitor: %s" % e
    else:
        with sock:
            sock.settimeout(timeout + 5)
            try:
                reply = recv_msg(sock)
                code, output = reply["code"], reply["output"]
                if reply.get("timeout"):
                    output = "Health check exceeded timeout (%gs)" % timeout
            except (EOFError, OSError, ValueError, KeyError):
                output = "the container stopped during the health check"
    return {"Start": rfc3339(start), "End": rfc3339(time.time()), "ExitCode": code,
            "Output": output[:healthcheck.MAX_OUTPUT]}


class Checker(object):
    """The health thread of one container (c.health)."""

    def __init__(self, engine, c):
        # type: (object, object) -> None
        self.engine, self.c = engine, c
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="health-" + c.id[:12])
        self.thread.daemon = True

    def _run(self):
        # type: () -> None
        c, eng = self.c, self.engine
        check = c.cfg["Config"].get("Healthcheck") or {}
        pid = c.started().get("Pid")
        started = parse_rfc3339(c.started().get("StartedAt") or "") or time.time()
        while True:
            status = healthcheck.read(c.path).get("Status", healthcheck.STARTING)
            period = int(check.get("StartPeriod") or 0) / 1e9
            key = "Interval"
            if status == healthcheck.STARTING and period and time.time() - started < period:
                key = "StartInterval"
            if self.stop.wait(healthcheck.setting(check, key) / 1e9):
                return
            st = c.state()
            if not st["Running"]:
                return
            if st["Restarting"] or st["Paused"]:
                continue
            if c.started().get("Pid") != pid:  # its restart policy started it again
                pid = c.started().get("Pid")
                started = parse_rfc3339(c.started().get("StartedAt") or "") or time.time()
                healthcheck.reset(c.path)
            try:
                result = probe(c, check, st["Pid"], getattr(eng, "_security", None))
                if self.stop.is_set() or c.started().get("Pid") != pid:
                    continue  # stopped or restarted meanwhile: the result is of no run
                old, new = healthcheck.record(c.path, check, result, parse_rfc3339(result["Start"]) - started)
            except OSError:  # removed meanwhile
                if not os.path.isdir(c.path):
                    return
                raise
            if old != new:
                watch.emit(eng.events, c, "health_status: " + new)


def check(engine, c, fresh):
    # type: (object, object, bool) -> Optional[Checker]
    """Start c's health thread if it has a check (fresh: a start, the status begins again);
    any previous one is told to stop."""
    old = getattr(c, "health", None)
    if old is not None:
        old.stop.set()
    if not healthcheck.active(c.cfg["Config"].get("Healthcheck")):
        return None
    if fresh:
        healthcheck.reset(c.path)
    ch = c.health = Checker(engine, c)
    ch.thread.start()
    return ch
