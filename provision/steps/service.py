"""Starting, restarting and waiting for the engine: under systemd, or (where systemd is not
PID 1: containers, WSL) directly as a daemon with a pid file. A restart caused by a new
daemon.json that fails puts the previous file back and restarts the engine with it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from provision.errors import StepError
from provision.engine_kind import DIRECT_LOG, PIDFILE, EngineKind, pending_marker
from provision.transport import Result, Transport

WAIT_STEPS = 300  # x 0.1 s
@dataclass
class Control:
    """How to drive one engine service on one host."""

    service: str  # berthd or docker
    systemd: bool
    socket: str
    client: str  # the CLI that pings the daemon: /usr/local/bin/berth or docker
    config_file: str
    daemon_cmd: str = ""  # direct mode: the daemon's command line (without the pid file)

    @classmethod
    def of(cls, kind: EngineKind, systemd: bool, socket: str) -> Control:
        """How to drive ``kind`` listening on ``socket``, with its own daemon.json."""
        return cls(
            kind.service, systemd, socket, kind.client, kind.config_file, kind.daemon_cmd(kind.config_file)
        )

    def start(self, restart: bool) -> str:
        """The shell command that (re)starts the engine."""
        s = shlex.quote(self.service)
        if self.systemd:
            # reset-failed: a unit that hit its start limit (failed restarts) may start again
            return (
                f"systemctl reset-failed {s} 2>/dev/null; systemctl {'restart' if restart else 'start'} {s}"
            )
        pf = shlex.quote(PIDFILE)
        return (
            f'p=$(cat {pf} 2>/dev/null || true); if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then '
            f'kill -TERM "$p"; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; '
            f"i=$((i+1)); done; fi; rm -f {pf}; "
            f"setsid {self.daemon_cmd} --pidfile {pf} >>{DIRECT_LOG} 2>&1 </dev/null &"
        )

    def stop(self) -> str:
        """Stop (and under systemd disable) the engine; succeeds when it is not running."""
        s = shlex.quote(self.service)
        if self.systemd:
            return f"systemctl disable --now {s} >/dev/null 2>&1 || systemctl stop {s} 2>/dev/null || true"
        pf = shlex.quote(PIDFILE)
        return (
            f'p=$(cat {pf} 2>/dev/null || true); if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then '
            f'kill -TERM "$p"; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; '
            f"i=$((i+1)); done; fi; rm -f {pf}"
        )

    def wait(self) -> str:
        """sh that exits 0 once the API answers on the socket, 1 (with the reason) when the
        daemon died or did not answer in time."""
        s = shlex.quote(self.service)
        sock = shlex.quote(self.socket)
        ping = f"{self.client} -H unix://{sock} version >/dev/null 2>&1"
        if self.systemd:
            dead = (
                f"st=$(systemctl show {s} -p ActiveState -p SubState | tr '\\n' ' '); "
                f'case "$st" in *failed*|*auto-restart*|*inactive*) '
                f'echo "{self.service} is not running ($st)" >&2; '
                f"journalctl -u {s} -n 12 --no-pager -o cat | grep -v -e '^{self.service}.service:' "
                f"-e '^Started ' -e '^Stopped ' -e '^Starting ' -e '^Stopping ' | tail -n 2 >&2; "
                "exit 1;; esac"
            )
        else:
            dead = (
                f'p=$(cat {PIDFILE} 2>/dev/null || true); if [ $i -gt 5 ] && ! {{ [ -n "$p" ] && '
                f'kill -0 "$p" 2>/dev/null; }}; then echo "{self.service} exited" >&2; '
                f"tail -n 3 {DIRECT_LOG} >&2; exit 1; fi"
            )
        return (
            f"i=0; while :; do if [ -S {sock} ] && {ping}; then exit 0; fi; {dead}; "
            f"i=$((i+1)); if [ $i -ge {WAIT_STEPS} ]; then echo '{self.service} did not answer on "
            f"{self.socket} within {WAIT_STEPS // 10} s' >&2; exit 1; fi; sleep 0.1; done"
        )


@dataclass
class EngineStart:
    """(Re)start the engine and wait for its socket; roll daemon.json back if it fails."""

    ctl: Control
    restart: bool
    why: str
    config_changed: bool = False
    previous: bytes | None = None  # daemon.json before this run (None: there was none)
    validate_cmd: str = ""  # checks the new daemon.json before a restart (berthd --validate)
    other_reasons: bool = False  # an upgrade or unit change also asks for this restart

    def describe(self) -> str:
        verb = "restart" if self.restart else "start"
        return f"{verb} {self.ctl.service} ({self.why})"

    def diff(self) -> str:
        return f"$ {self.ctl.start(self.restart)}\n"

    def _restore(self, t: Transport) -> None:
        path = self.ctl.config_file
        if self.previous is None:
            t.sudo(f"rm -f {shlex.quote(path)}")
        else:
            res = t.put(path, self.previous, 0o644, backup=False)
            if not res.ok:
                raise StepError(f"could not put the previous {path} back: {res.brief()}", t.name, res)

    def _start(self, t: Transport, restart: bool) -> Result:
        """Start (or restart) the service and wait until it is up; return the command's Result.
        Once it is up, on the files as they are now, no restart is owed any more."""
        owed = shlex.quote(pending_marker(self.ctl.service))
        return t.sudo(self.ctl.start(restart) + "\n(" + self.ctl.wait() + f") && rm -f {owed}")

    def apply(self, t: Transport) -> None:
        path = self.ctl.config_file
        if self.config_changed and self.validate_cmd and self.restart:
            res = t.sudo(self.validate_cmd)
            if not res.ok:
                self._restore(t)
                state = "keeps running unchanged"
                if self.other_reasons:  # the upgrade still needs its restart, with the old file
                    again = self._start(t, True)
                    state = "was restarted with it" if again.ok else f"did not restart ({again.brief()})"
                raise StepError(
                    f"{self.ctl.service} rejects the new {path} ({res.brief()}): the previous file was "
                    f"put back; {self.ctl.service} {state}",
                    t.name,
                    res,
                )
        res = self._start(t, self.restart)
        if res.ok:
            return
        if not self.config_changed:
            raise StepError(f"{self.ctl.service} did not start: {res.brief()}", t.name, res)
        self._restore(t)
        again = self._start(t, True)
        state = "running again with it" if again.ok else f"still not running ({again.brief()})"
        raise StepError(
            f"{self.ctl.service} failed to start with the new {path} ({res.brief()}): the previous "
            f"file was put back and {self.ctl.service} is {state}",
            t.name,
            res,
        )
