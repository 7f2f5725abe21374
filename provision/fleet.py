"""Run a job on many hosts in parallel (threads), in rolling batches if asked, with a live
progress display. One host's failure never stops the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from rich.console import Console
from rich.live import Live
from rich.table import Table

from provision.apply import HostReport, Job, run_host

R = TypeVar("R")
STYLE = {"ok": "green", "changed": "yellow", "would change": "yellow", "failed": "bold red"}


class FleetResult(dict):
    """``{target: HostReport}`` in target order."""

    @property
    def failed(self) -> dict[str, HostReport]:
        return {k: v for k, v in self.items() if v.status == "failed"}


def run_each(
    targets: list[str], per_host: Callable[[str], R], forks: int = 20, serial: int | None = None
) -> list[R]:
    """``per_host(target)`` for every target, ``forks`` at a time (batch by batch when ``serial``
    is set); the results in target order. ``per_host`` reports its own errors (see
    :func:`provision.apply.on_host`): one host's failure never stops the others."""
    out: list[R] = []
    batches = [targets[i : i + serial] for i in range(0, len(targets), serial)] if serial else [targets]
    for batch in batches:
        with ThreadPoolExecutor(max_workers=max(1, min(forks, len(batch)))) as pool:
            out += pool.map(per_host, batch)
    return out


class _Board:
    """The live table: one row per host with its current phase."""

    def __init__(self, targets: list[str]) -> None:
        self.phase = {t: "waiting" for t in targets}
        self.lock = threading.Lock()

    def update(self, target: str, phase: str) -> None:
        with self.lock:
            self.phase[target] = phase

    def __rich__(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        with self.lock:
            done = sum(1 for p in self.phase.values() if p in STYLE)
            for t, p in self.phase.items():
                table.add_row(t, f"[{STYLE.get(p, 'cyan')}]{p}[/]")
        table.caption = f"{done}/{len(self.phase)} hosts done"
        return table


def run_fleet(
    targets: list[str],
    job: Job,
    forks: int = 20,
    serial: int | None = None,
    console: Console | None = None,
    live: bool = True,
) -> FleetResult:
    """Run ``job`` on every target: ``forks`` at a time, batch by batch when ``serial`` is set."""
    board = _Board(targets)
    console = console or Console(stderr=True)
    show = live and console.is_terminal and len(targets) > 0

    def work() -> list[HostReport]:
        return run_each(targets, lambda t: run_host(t, job, board.update), forks, serial)

    if show:
        with Live(board, console=console, refresh_per_second=8, transient=True):
            reports = work()
    else:
        reports = work()
    return FleetResult((r.target, r) for r in reports)
