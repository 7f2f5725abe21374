"""The step protocol: a plan is a list of actions; applying runs them; ``ok`` = nothing to do.

Every action kind (:class:`FileChange`, :class:`Command` here; the engine's ``InstallBundle``
and ``EngineStart``) implements :class:`Action`; nothing reads inside another step's actions:
a step that depends on another takes that step's declared result (e.g.
:class:`provision.steps.daemon.ConfigChange`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Protocol

from provision.errors import StepError
from provision.transport import Transport

OK, CHANGED, FAILED, SKIPPED = "ok", "changed", "failed", "skipped"


class Action(Protocol):
    """One change a step plans: described and diffed before it is applied."""

    def describe(self) -> str:
        """One line saying what the action does (shown for changed steps)."""

    def diff(self) -> str:
        """What would change, as ``--check`` / ``--diff`` show it."""

    def apply(self, t: Transport) -> None:
        """Make the change on the host; StepError with one line when it fails."""


@dataclass
class FileChange:
    """Write ``new`` to ``path`` (atomically, with owner and mode); ``old`` is what is there now."""

    path: str
    new: bytes
    old: bytes | None = None
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    old_mode: int | None = None
    backup: bool = True

    def describe(self) -> str:
        what = "create" if self.old is None else ("chmod" if self.old == self.new else "update")
        return f"{what} {self.path} (mode {self.mode:04o} {self.owner}:{self.group})"

    def diff(self) -> str:
        """A unified diff of the file (and a mode line when only the mode changes)."""
        old = (self.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = self.new.decode("utf-8", "replace").splitlines(keepends=True)
        text = "".join(
            difflib.unified_diff(
                old, new, "/dev/null" if self.old is None else f"a{self.path}", f"b{self.path}"
            )
        )
        if self.old is not None and self.old_mode is not None and self.old_mode != self.mode:
            text += f"mode {self.old_mode:04o} -> {self.mode:04o} {self.path}\n"
        return text

    def apply(self, t: Transport) -> None:
        res = t.put(self.path, self.new, self.mode, self.owner, self.group, backup=self.backup)
        if not res.ok:
            raise StepError(f"writing {self.path} failed: {res.brief()}", t.name, res)


@dataclass
class Command:
    """A command run as root; ``why`` says what it achieves."""

    cmd: str
    why: str = ""

    def describe(self) -> str:
        return f"run: {self.cmd}"

    def diff(self) -> str:
        return f"$ {self.cmd}\n"

    def apply(self, t: Transport) -> None:
        res = t.sudo(self.cmd)
        if not res.ok:
            raise StepError(f"`{self.cmd}` failed: {res.brief()}", t.name, res)


@dataclass
class StepPlan:
    """What one step will do on one host."""

    name: str
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verify: Callable[[Transport], None] | None = None
    # runs on every apply (also when nothing changed); returns notes, raises StepError
    check: Callable[[Transport], list[str] | None] | None = None
    # runs instead of ``check`` when no step of the host's plan changes anything
    quick: Callable[[Transport], list[str] | None] | None = None

    @property
    def changes(self) -> bool:
        return bool(self.actions)


def file_state(
    files: dict, path: str, new: bytes, mode: int = 0o644, backup: bool = True
) -> FileChange | None:
    """A FileChange when ``path`` on the host differs from ``new`` (content, mode or root ownership)."""
    cur = files.get(path)
    if (
        cur is not None
        and cur["content"] == new
        and cur["mode"] == mode
        and cur["uid"] == 0
        and cur["gid"] == 0
    ):
        return None
    return FileChange(
        path,
        new,
        None if cur is None else cur["content"],
        mode,
        old_mode=None if cur is None else cur["mode"],
        backup=backup,
    )
