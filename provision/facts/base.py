"""Facts: small readers that run on the target as POSIX sh and are parsed on the controller.

All facts of one host are gathered in ONE round trip: :func:`build_script` concatenates every
fact's command, each section introduced by a marker line, and :func:`split_sections` cuts the
output back into per-fact line lists.
"""

from __future__ import annotations

from typing import Any, Callable

MARKER = "@@berth-fact@@ "


class Fact:
    """A named sh snippet and the function that turns its output lines into a value."""

    def __init__(
        self, name: str, command: str, parse: Callable[[list[str]], Any] | None = None, default: Any = None
    ) -> None:
        self.name = name
        self.command = command
        self.parse = parse or (lambda lines: lines)
        self.default = default


def build_script(facts: list[Fact]) -> str:
    """One sh script printing every fact's section; a failing snippet never stops the rest."""
    parts = []
    for f in facts:
        parts.append(f"printf '\\n%s%s\\n' '{MARKER}' '{f.name}'")
        parts.append(f"{{ {f.command}\n}} 2>/dev/null")
    parts.append(f"printf '\\n%s%s\\n' '{MARKER}' '__end__'")
    return "\n".join(parts) + "\n"


def split_sections(output: str) -> dict[str, list[str]]:
    """Cut gathered output into ``{fact name: [lines]}``; sections missing entirely are absent."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARKER):
            name = line[len(MARKER) :].strip()
            current = sections.setdefault(name, [])
            continue
        if current is not None:
            current.append(line)
    for lines in sections.values():
        while lines and lines[-1] == "":
            lines.pop()
        while lines and lines[0] == "":
            lines.pop(0)
    return sections


def parse_sections(facts: list[Fact], sections: dict[str, list[str]]) -> dict[str, Any]:
    """Apply each fact's parser to its section (``default`` when the section is missing)."""
    values = {}
    for f in facts:
        if f.name in sections:
            values[f.name] = f.parse(sections[f.name])
        else:
            values[f.name] = f.default
    return values
