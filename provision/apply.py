"""One host, end to end: connect -> facts -> preflight -> plan -> (diff) -> apply -> verify.

Every failure is caught here and becomes the host's one-line error; nothing escapes to stop
other hosts of the fleet.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TypeVar

from provision.checks import FAIL, Check, run_checks
from provision.errors import ProvisionError
from provision.facts import gather
from provision.hostlog import HostLog
from provision.options import Options
from provision.plan import build_plan
from provision.ssh import SSHOptions, SSHTransport
from provision.steps.base import CHANGED, FAILED, OK, SKIPPED
from provision.transport import LocalTransport, Transport

WOULD_CHANGE = "would change"
LOCAL = "localhost"
VERIFY_STEP = "engine verify"  # the step whose notes are the engine's proof


@dataclass
class StepReport:
    name: str
    status: str = OK
    actions: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class HostReport:
    target: str
    status: str = OK
    error: str | None = None
    platform: str = ""
    checks: list[Check] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    seconds: float = 0.0
    # where the host's seconds went: connect, facts, plan (checks included), apply, the engine's verify
    phases: dict[str, float] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["changed"] = self.count(CHANGED) + self.count(WOULD_CHANGE)
        d["ok"] = self.count(OK)
        d["failed"] = self.count(FAILED)
        verify = next((s for s in self.steps if s.name == VERIFY_STEP), None)
        d["verify"] = None if verify is None else {
            "status": verify.status, "notes": verify.notes, "error": verify.error
        }  # fmt: skip
        return d


@dataclass
class Job:
    """What to do on every host of a run."""

    opts: Options
    ssh: SSHOptions
    checks_only: bool = False
    dry_run: bool = False
    show_diff: bool = False
    login_user: str | None = None
    local: bool = False  # --local: the one target is this machine (a target named localhost is SSH)
    address: str | None = None  # [user@]host[:port] when the target is an inventory name
    log_dir: str | None = None  # --log-dir: one log per host (commands, output, diffs)

    def connect(self, target: str) -> Transport:
        """An open transport to ``target`` (ConnectError with one line when that fails)."""
        if self.local:
            return LocalTransport(self.ssh.become_password)
        t = SSHTransport(self.address or target, self.ssh, self.login_user)
        try:
            t.open()
        except BaseException:
            t.close()
            raise
        return t


Progress = Callable[[str, str], None]
T = TypeVar("T")


def host_error(e: Exception) -> str:
    """The one line that reports a host's failure: the error's own line, or for a bug its type
    and message (a bug still ends only that host)."""
    if isinstance(e, ProvisionError):
        return str(e)
    return f"internal error: {type(e).__name__}: {e}"


def on_host(target: str, job: Job, work: Callable[[Transport], T]) -> tuple[T | None, str | None]:
    """The per-host runner of every command: connect to ``target``, run ``work`` on it and
    close. ``(its value, None)``, or ``(None, the one-line error)`` whatever went wrong;
    never raises, so one host never stops the others."""
    t: Transport | None = None
    try:
        t = job.connect(target)
        return work(t), None
    except Exception as e:
        return None, host_error(e)
    finally:
        if t is not None:
            try:
                t.close()
            except Exception:
                pass


def run_host(target: str, job: Job, progress: Progress = lambda target, phase: None) -> HostReport:
    """Run the job (``check`` or ``host``) on one target and report; never raises."""
    t0 = time.monotonic()
    rep = HostReport(target)
    progress(target, "connecting")
    log = None
    if job.log_dir:
        try:
            log = HostLog(job.log_dir, target, "check" if job.checks_only else "host")
        except OSError as e:
            rep.status, rep.error = FAILED, f"cannot write its log in {job.log_dir}: {e.strerror}"
            progress(target, rep.status)
            return rep
    _, err = on_host(target, job, lambda t: _pipeline(t, job, rep, progress, log, t0))
    if err is not None:
        rep.status, rep.error = FAILED, err
    rep.seconds = time.monotonic() - t0
    if log is not None:
        log.close(rep.status, rep.error)
    progress(target, rep.status)
    return rep


def _pipeline(
    t: Transport, job: Job, rep: HostReport, progress: Progress, log: HostLog | None, started: float
) -> None:
    """facts -> preflight -> plan -> (diff) -> apply -> verify on an open transport (opened
    since ``started``), filling ``rep`` as it goes (so a failure still shows the steps that ran)."""
    target = rep.target
    if log is not None:
        t.recorder = log.command
    clock = _Phases(rep, started)
    progress(target, "facts")
    facts = gather(t, job.opts)
    clock.done("facts")
    rep.checks, plat = run_checks(
        facts,
        job.opts.distro_like,
        job.opts.data_root,
        job.opts.min_free_gb,
        job.opts.wanted_daemon_json().get("storage-driver"),
    )
    rep.platform = plat.pretty if plat else (facts.get("os_release") or {}).get("PRETTY_NAME", "?")
    failed = [c for c in rep.checks if c.status == FAIL]
    if log is not None:
        log.write("\n".join(f"== check {c.name}: {c.status}: {c.detail}" for c in rep.checks))
    if job.checks_only:
        clock.done("plan")
        rep.status = FAILED if failed else OK
        if failed:
            rep.error = f"{len(failed)} check(s) failed: " + "; ".join(
                f"{c.name}: {c.detail}" for c in failed
            )
        return
    if failed:
        c = failed[0]
        raise ProvisionError(f"preflight {c.name} failed: {c.detail}" + (f"; fix: {c.fix}" if c.fix else ""))
    assert plat is not None
    progress(target, "planning")
    plans = build_plan(facts, plat, job.opts)
    reports = [
        StepReport(p.name, SKIPPED, [a.describe() for a in p.actions], notes=list(p.notes)) for p in plans
    ]
    rep.steps = reports
    clock.done("plan")
    for p, sr in zip(plans, reports):
        # an action with nothing to show (a marker, a command already described) adds no diff
        wants_diffs = job.dry_run or job.show_diff or log
        diffs = [d for d in (a.diff() for a in p.actions) if d] if wants_diffs else []
        if job.dry_run or job.show_diff:
            sr.diffs = diffs
        s0 = time.monotonic()
        try:
            _apply_step(t, job, p, sr, target, progress)
        finally:
            sr.seconds = time.monotonic() - s0
            if log is not None:
                log.step(sr.name, sr.status, sr.seconds, diffs, sr.error)
    clock.done("apply")
    verify = next((s for s in reports if s.name == VERIFY_STEP), None)
    if verify is not None:
        rep.phases["apply"] -= verify.seconds
        rep.phases["verify"] = verify.seconds
    _set_status(rep)


class _Phases:
    """Records into ``rep.phases`` the seconds since the previous mark: the first mark also
    records ``connect``, the time from the host's start to its open transport."""

    def __init__(self, rep: HostReport, started: float) -> None:
        self.rep = rep
        self.last = time.monotonic()
        rep.phases["connect"] = self.last - started

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.rep.phases[phase] = now - self.last
        self.last = now


def _apply_step(t: Transport, job: Job, p, sr: StepReport, target: str, progress: Progress) -> None:
    """Apply one planned step (or only judge it with --check), filling its report."""
    if not p.actions and not (p.check and not job.dry_run):
        sr.status = OK
        return
    if job.dry_run:
        sr.status = WOULD_CHANGE
        return
    progress(target, p.name)
    try:
        for a in p.actions:
            a.apply(t)
        if p.verify:
            p.verify(t)
        if p.check and not job.dry_run:
            sr.notes += p.check(t) or []
    except Exception as e:
        sr.status, sr.error = FAILED, host_error(e)
        raise
    sr.status = CHANGED if p.actions else OK


def _set_status(rep: HostReport) -> None:
    rep.status = (
        WOULD_CHANGE
        if any(s.status == WOULD_CHANGE for s in rep.steps)
        else (CHANGED if any(s.status == CHANGED for s in rep.steps) else OK)
    )
