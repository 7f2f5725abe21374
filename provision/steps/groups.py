"""The container group (optionally with a fixed gid) and the users added to it."""

from __future__ import annotations

import shlex

from provision.errors import StepError
from provision.steps.base import Command, StepPlan


def plan_group(facts: dict, group: str, gid: int | None, users: list[str]) -> StepPlan:
    """groupadd/groupmod and usermod -aG only where the host differs."""
    step = StepPlan(f"{group} group")
    cur = facts.get("group")
    g = shlex.quote(group)
    if cur is None:
        step.actions.append(
            Command(f"groupadd {'-g %d ' % gid if gid is not None else ''}{g}", "create the group")
        )
    elif gid is not None and cur["gid"] != gid:
        step.actions.append(Command(f"groupmod -g {gid} {g}", f"change gid {cur['gid']} -> {gid}"))
    known = facts.get("users", {})
    for user in users:
        groups = known.get(user)
        if groups is None:
            raise StepError(f"user {user!r} does not exist: create it first or drop --user {user}")
        if group not in groups:
            step.actions.append(Command(f"usermod -aG {g} {shlex.quote(user)}", f"add {user} to {group}"))
            step.notes.append(f"{user} must log in again for the {group} group to apply")
    return step
