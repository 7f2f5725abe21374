"""What the user sees after a run: per-host details, diffs, the summary table, or JSON."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provision.apply import WOULD_CHANGE, HostReport
from provision.checks import FAIL, PASS, WARN
from provision.fleet import STYLE, FleetResult
from provision.steps.base import CHANGED, FAILED, OK, SKIPPED

CHECK_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red"}


def make_console() -> Console:
    """stdout console: wide enough for tables when output is not a terminal."""
    c = Console()
    if not c.is_terminal:
        c = Console(width=max(c.width, 160))
    return c


def print_checks(console: Console, rep: HostReport) -> None:
    """The preflight table of one host."""
    table = Table(title=f"{rep.target}: {rep.platform or '?'}", title_justify="left")
    for col in ("check", "result", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in rep.checks:
        table.add_row(c.name, f"[{CHECK_STYLE[c.status]}]{c.status}[/]", escape(c.detail), escape(c.fix))
    if rep.checks:
        console.print(table)
    if rep.error:
        console.print(f"[bold red]{escape(rep.target)}: {escape(rep.error)}[/]", highlight=False)


def print_diff(console: Console, text: str) -> None:
    """A diff exactly as computed (no wrapping, no cropping), coloured when on a terminal."""
    for line in text.splitlines():
        style = (
            "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith(("@@", "$"))
            else None
        )
        console.print(line, style=style, soft_wrap=True, highlight=False, markup=False, emoji=False)


def print_steps(console: Console, rep: HostReport, show_diffs: bool) -> None:
    """Steps of one host (actions of changed ones), diffs when asked, notes and errors."""
    console.rule(f"{rep.target}  {rep.platform}", align="left")
    for s in rep.steps:
        console.print(f"  [{STYLE.get(s.status, 'dim')}]{s.status:>12}[/]  {escape(s.name)}")
        if show_diffs and s.diffs:
            print_diff(console, "".join(s.diffs))
        elif s.status in (CHANGED, WOULD_CHANGE, FAILED):
            for a in s.actions:
                console.print(f"{'':16}{escape(a)}", highlight=False)
        for n in s.notes:
            always = "log in again" in n or "systemd is not PID 1" in n or s.name == "engine verify"
            if s.status != OK or always:
                console.print(f"{'':16}[dim]note: {escape(n)}[/]")
    if rep.status == SKIPPED:
        console.print(f"  [dim]skipped: {escape(rep.error or '')}[/]")
    elif rep.error:
        console.print(f"  [bold red]failed: {escape(rep.error)}[/]")


def print_summary(console: Console, result: FleetResult) -> None:
    """One row per host: ok / changed / failed counts and the one-line error."""
    table = Table(title="summary", title_justify="left")
    for col in ("host", "system", "ok", "changed", "failed", "time", "result"):
        table.add_column(col, overflow="fold")
    for rep in result.values():
        changed = rep.count(CHANGED) + rep.count(WOULD_CHANGE)
        msg = f"skipped: {rep.error}" if rep.status == SKIPPED else rep.error or rep.status
        table.add_row(
            rep.target,
            rep.platform,
            str(rep.count(OK)),
            str(changed),
            str(rep.count(FAILED)),
            f"{rep.seconds:.1f}s",
            f"[{STYLE.get(rep.status, '')}]{escape(msg)}[/]",
        )
    console.print(table)


def print_json(result: FleetResult, console: Console | None = None) -> None:
    """Machine output: a list of host reports on stdout."""
    text = json.dumps([r.as_dict() for r in result.values()], indent=2, default=str)
    if console is None:
        print(text)
    else:
        console.print_json(text)
