"""daemon.json: the wanted keys deep-merged into the existing file (backed up), validated."""

from __future__ import annotations

from provision import daemonjson
from provision.steps.base import StepPlan, file_state


def plan_daemon_json(facts: dict, path: str, wanted: dict) -> StepPlan:
    """Rewrite ``path`` only when the merge changes its meaning; a broken file raises StepError."""
    step = StepPlan("daemon.json")
    cur = facts.get("files", {}).get(path)
    existing = None if cur is None else cur["content"]
    current, merged = daemonjson.merged(existing, path, wanted)
    if cur is not None and current == merged:
        if cur["mode"] != 0o644 or cur["uid"] != 0:
            change = file_state(facts["files"], path, existing, 0o644)
            if change:
                step.actions.append(change)
        return step
    change = file_state(facts.get("files", {}), path, daemonjson.render(merged), 0o644)
    if change:
        step.actions.append(change)
    kept = sorted(set(current) - set(wanted))
    if kept:
        step.notes.append(f"kept existing keys: {', '.join(kept)}")
    return step
