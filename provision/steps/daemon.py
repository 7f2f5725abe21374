"""daemon.json: the wanted keys deep-merged into the existing file (backed up), validated."""

from __future__ import annotations

from dataclasses import dataclass

from provision import daemonjson
from provision.engine_kind import EngineKind
from provision.steps.base import StepPlan, file_state


@dataclass(frozen=True)
class ConfigChange:
    """What the daemon.json step declares to the engine steps after it: whether it rewrites
    the file, and the file before this run (``None``: there was none) to roll back to."""

    changed: bool = False
    previous: bytes | None = None


def plan_daemon_json(facts: dict, kind: EngineKind, wanted: dict) -> tuple[StepPlan, ConfigChange]:
    """Rewrite the engine's daemon.json only when the merge changes its meaning; a broken file
    raises StepError, a merge the engine would refuse InputError."""
    path = kind.config_file
    step = StepPlan("daemon.json")
    cur = facts.get("files", {}).get(path)
    existing = None if cur is None else cur["content"]
    current, merged = daemonjson.merged(existing, path, wanted, kind)
    if cur is not None and current == merged:
        if cur["mode"] != 0o644 or cur["uid"] != 0:
            change = file_state(facts["files"], path, existing, 0o644)
            if change:
                step.actions.append(change)
        return step, ConfigChange(bool(step.actions), existing)
    change = file_state(facts.get("files", {}), path, daemonjson.render(merged), 0o644)
    if change:
        step.actions.append(change)
    kept = sorted(set(current) - set(wanted))
    if kept:
        step.notes.append(f"kept existing keys: {', '.join(kept)}")
    return step, ConfigChange(bool(step.actions), existing)
