"""``--userns-remap``: the user whose subordinate ids remapped containers get (``default``:
the ``berth`` system user, made when missing) and its 65,536 ids in /etc/subuid and
/etc/subgid; the ``user.max_user_namespaces`` sysctl is raised by the sysctl step
(:func:`wanted_max_userns`)."""

from __future__ import annotations

import shlex

from provision.errors import StepError
from provision.options import remap_names
from provision.steps.base import Command, StepPlan, file_state

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
FIRST_ID, COUNT = 100000, 65536
MIN_USERNS = 15000  # user.max_user_namespaces wanted at least (CentOS 7 ships 0)


def wanted_max_userns(live: str | None) -> str:
    """The user.max_user_namespaces to persist: at least MIN_USERNS, a higher live value kept."""
    try:
        cur = int(live or "0")
    except ValueError:
        cur = 0
    return str(max(cur, MIN_USERNS))


def _entries(content: bytes | None) -> list[list[str]]:
    text = (content or b"").decode("utf-8", "replace")
    return [ln.strip().split(":") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def free_start(*tables: list[list[str]]) -> int:
    """The first id from 100000 up with 65,536 free ids in every table."""
    used = sorted(
        (int(e[1]), int(e[2])) for t in tables for e in t if len(e) >= 3 and e[1].isdigit() and e[2].isdigit()
    )
    start = FIRST_ID
    for s, n in used:
        if s < start + COUNT and start < s + n:
            start = s + n
    return start


def plan_userns(facts: dict, value: str) -> StepPlan:
    """useradd for ``default`` when the user is missing; a range appended to /etc/subuid and
    /etc/subgid for the user (group) that has none there."""
    step = StepPlan("userns-remap")
    user, group = remap_names(value)
    if (facts.get("users") or {}).get(user) is None:
        if value != "default":
            raise StepError(
                f"userns-remap user {user!r} does not exist: create it, or use --userns-remap default"
            )
        step.actions.append(
            Command(
                f"useradd --system --no-create-home --shell /bin/false --user-group {shlex.quote(user)}",
                "the user whose subordinate ids remapped containers get",
            )
        )
    files = facts.get("files", {})
    tables = {p: _entries((files.get(p) or {}).get("content")) for p in (SUBUID, SUBGID)}
    start = free_start(*tables.values())
    for path, name in ((SUBUID, user), (SUBGID, group)):
        if any(e[0] == name for e in tables[path] if len(e) >= 3):
            continue
        old = (files.get(path) or {}).get("content") or b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        change = file_state(files, path, old + f"{name}:{start}:{COUNT}\n".encode(), 0o644)
        if change:
            step.actions.append(change)
    return step
