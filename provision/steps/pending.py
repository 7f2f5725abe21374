"""A restart the run has promised but not yet done, kept on the host until it is done.

A run that will restart the engine (a new daemon.json, engine build or unit) first writes a
marker under /run; the restart removes it. A run killed or cut off between the change and the
restart leaves the marker, and the next run, which finds the files already as wanted, restarts
the engine for it instead of leaving it on the old configuration or code. /run is emptied at
boot, when the engine starts on the files anyway."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from provision.errors import StepError
from provision.steps.base import StepPlan
from provision.engine_kind import PENDING_DIR, pending_marker
from provision.steps.service import EngineStart
from provision.transport import Transport

PENDING = "restart left pending by an interrupted run"


def plain_reasons(why: str) -> str:
    """The reasons in a restart's ``why`` with any pending one's own reasons in their place
    ("engine upgraded, daemon.json changed"), each once: a run interrupted again and again
    records what the restart is for, not a nest of earlier runs' notes."""
    flat = why.replace(PENDING + " (", "").replace(")", "")
    out: list[str] = []
    for r in (x.strip() for x in flat.split(",")):
        if r and r not in out:
            out.append(r)
    return ", ".join(out)


def reason(engine_facts: dict) -> str | None:
    """Why a restart is still owed, from the facts; None when none is."""
    left = plain_reasons(engine_facts.get("pending") or "")
    return f"{PENDING} ({left})" if left else None


@dataclass
class MarkPending:
    """Record, before the first change of a run that restarts the engine, that it owes one."""

    service: str
    why: str

    def describe(self) -> str:
        return f"note a pending restart of {self.service} ({self.why})"

    def diff(self) -> str:
        return ""

    def apply(self, t: Transport) -> None:
        path = shlex.quote(pending_marker(self.service))
        why = shlex.quote(plain_reasons(self.why))
        res = t.sudo(f"mkdir -p {PENDING_DIR} && printf '%s\\n' {why} > {path}")
        if not res.ok:
            raise StepError(f"cannot write {pending_marker(self.service)}: {res.brief()}", t.name, res)


def guard(plans: list[StepPlan], service: str) -> list[StepPlan]:
    """When the plan restarts ``service``, note the restart as pending before the plan's first
    change, so that an interruption anywhere after it still gets the restart on the rerun."""
    restart = next((a for p in plans for a in p.actions if isinstance(a, EngineStart) and a.restart), None)
    if restart is None:
        return plans
    first = next((p for p in plans if p.actions), None)
    if first is not None:
        first.actions.insert(0, MarkPending(service, restart.why))
    return plans
