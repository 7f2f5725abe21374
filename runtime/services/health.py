"""Running health checks (rules in runtime/container/healthcheck.py): one sleeping thread per
running container that has a check; each probe is an exec (the forkserver forks its helper,
as for `docker exec`), its output (4 KiB kept) read from the helper's socket, killed at the
timeout. A status change is a `health_status: STATUS` event."""

import binascii
import os
import signal
import struct
import threading
import time

from runtime.container import healthcheck
from runtime.container.execs import run_spec
from runtime.atomicfile import read_json
from runtime.timefmt import parse_rfc3339, rfc3339
from runtime.services import watch

try:
    from typing import Optional  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def probe(spawner, c, check, pid):
    # type: (object, object, dict, int) -> dict
    """Run the check once in c (PID 1 = pid): {"Start", "End", "ExitCode", "Output"}."""
    exec_id = "health-" + binascii.hexlify(os.urandom(8)).decode()
    exec_dir = c.file("health")
    os.makedirs(exec_dir, exist_ok=True)
    start = time.time()
    timeout = healthcheck.setting(check, "Timeout") / 1e9
    reply, sock = spawner.request("exec", run_spec(c, pid, exec_id, exec_dir, healthcheck.command(check), {}))
    output, code = b"", -1
    try:
        if "error" in reply:
            output, code = reply["error"].encode(), reply.get("code", 126)
        else:
            output, done = _read_frames(sock, start + timeout)
            if not done:
                try:
                    os.kill(reply["pid"], signal.SIGKILL)
                except (OSError, KeyError):
                    pass
                output = ("Health check exceeded timeout (%gs)" % timeout).encode()
            else:
                code = _exit_code(os.path.join(exec_dir, exec_id + ".json"))
    finally:
        sock.close()
    for name in (exec_id + ".json", exec_id + ".config.json"):
        try:
            os.unlink(os.path.join(exec_dir, name))
        except OSError:
            pass
    return {"Start": rfc3339(start), "End": rfc3339(time.time()), "ExitCode": code,
            "Output": output[:healthcheck.MAX_OUTPUT].decode("utf-8", "replace")}


def _read_frames(sock, deadline):
    # type: (object, float) -> tuple
    """(stdout+stderr payloads, True at EOF / False at the deadline)."""
    buf, out = b"", b""
    while True:
        left = deadline - time.time()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except OSError:  # timeout included
            return out, time.time() < deadline
        if not data:
            return out, True
        buf += data
        while len(buf) >= 8:
            size = struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + size:
                break
            if len(out) < healthcheck.MAX_OUTPUT:
                out += buf[8:8 + size]
            buf = buf[8 + size:]


def _exit_code(path):
    # type: (str) -> int
    """The helper writes the code right before it closes the socket; give it a moment."""
    for _ in range(100):
        code = (read_json(path, {}) or {}).get("ExitCode")
        if code is not None:
            return code
        time.sleep(0.005)
    return -1


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
                result = probe(eng.spawner, c, check, st["Pid"])
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
