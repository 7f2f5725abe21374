"""Run a job on many hosts in parallel (threads), in rolling batches if asked (``--serial``,
stopped by ``--max-fail-percentage``), with a live progress display. One host's failure
never stops the others of its batch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from rich.console import Console
from rich.live import Live
from rich.table import Table

from provision.apply import HostReport, Job, run_host
from provision.errors import InputError
from provision.steps.base import FAILED, SKIPPED

R = TypeVar("R")
STYLE = {"ok": "green", "changed": "yellow", "would change": "yellow", "failed": "bold red", "skipped": "dim"}
Serial = list  # batch sizes: ints (hosts) and strs ("10%"); the last one repeats


class FleetResult(dict):
    """``{target: HostReport}`` in target order; hosts a stopped rollout never reached are
    reported as skipped."""

    @property
    def failed(self) -> dict[str, HostReport]:
        return {k: v for k, v in self.items() if v.status == "failed"}

    @property
    def skipped(self) -> dict[str, HostReport]:
        return {k: v for k, v in self.items() if v.status == SKIPPED}


def parse_serial(text: str | None) -> Serial | None:
    """``--serial``: ``N``, ``P%`` or a list of them (``1,10%,100%``), as Ansible's ``serial``."""
    if text is None or text.strip() == "":
        return None
    out: Serial = []
    for item in text.split(","):
        item = item.strip()
        pct = item.endswith("%")
        num = item[:-1] if pct else item
        if not num.isdigit() or int(num) < 1 or (pct and int(num) > 100):
            raise InputError(f"--serial {text!r}: {item!r} is not a host count (N >= 1) nor a percentage "
                             "(1% to 100%); e.g. 1,10%,100%")  # fmt: skip
        out.append(f"{int(num)}%" if pct else int(num))
    return out


def batches(targets: list[str], serial: Serial | None) -> list[list[str]]:
    """``targets`` cut into Ansible's rolling batches: each size of ``serial`` in turn (a
    percentage of all targets, rounded down, at least 1), the last size repeated."""
    if not serial:
        return [list(targets)] if targets else []
    out, i, k = [], 0, 0
    while i < len(targets):
        size = serial[min(k, len(serial) - 1)]
        n = max(1, len(targets) * int(size[:-1]) // 100) if isinstance(size, str) else size
        out.append(targets[i : i + n])
        i, k = i + n, k + 1
    return out


def run_each(
    targets: list[str],
    per_host: Callable[[str], R],
    forks: int = 50,
    serial: Serial | int | None = None,
    stop: Callable[[list[R]], bool] | None = None,
) -> list[R]:
    """``per_host(target)`` for every target, ``forks`` at a time (batch by batch when ``serial``
    is set); the results in target order. ``per_host`` reports its own errors (see
    :func:`provision.apply.on_host`): one host's failure never stops the others. After each
    batch, ``stop(its results)`` may end the run: the list is then shorter than ``targets``."""
    out: list[R] = []
    for batch in batches(targets, [serial] if isinstance(serial, int) else serial):
        with ThreadPoolExecutor(max_workers=max(1, min(forks, len(batch)))) as pool:
            done = list(pool.map(per_host, batch))
        out += done
        if stop is not None and stop(done):
            break
    return out


def batch_failed(max_fail_percentage: float | None, rolling: bool) -> Callable[[list[HostReport]], bool]:
    """Ansible's rule for ending a rollout after a batch: more than ``max_fail_percentage`` of
    the batch failed; without it, in a rolling run, every host of the batch failed."""

    def stop(reports: list[HostReport]) -> bool:
        bad = sum(1 for r in reports if r.status == FAILED)
        if max_fail_percentage is not None:
            return bad * 100 > max_fail_percentage * len(reports)
        return rolling and bad == len(reports)

    return stop


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
    jobs: dict[str, Job],
    forks: int = 50,
    serial: Serial | int | None = None,
    max_fail_percentage: float | None = None,
    console: Console | None = None,
    live: bool = True,
) -> FleetResult:
    """Run each target's job: ``forks`` at a time, batch by batch when ``serial`` is set, and
    no further batch once one fails beyond ``max_fail_percentage`` (see :func:`batch_failed`)."""
    targets = list(jobs)
    board = _Board(targets)
    console = console or Console(stderr=True)
    show = live and console.is_terminal and len(targets) > 0
    stop = batch_failed(max_fail_percentage, bool(serial))

    def work() -> list[HostReport]:
        return run_each(targets, lambda t: run_host(t, jobs[t], board.update), forks, serial, stop)

    if show:
        with Live(board, console=console, refresh_per_second=8, transient=True):
            reports = work()
    else:
        reports = work()
    result = FleetResult((r.target, r) for r in reports)
    why = _stop_reason(reports, max_fail_percentage)
    for t in targets[len(reports) :]:
        result[t] = HostReport(t, status=SKIPPED, error=why)
    return result


def _stop_reason(reports: list[HostReport], max_fail_percentage: float | None) -> str:
    if max_fail_percentage is not None:
        return (
            "not reached: the rollout stopped when a batch failed beyond "
            f"--max-fail-percentage {max_fail_percentage:g}"
        )
    return "not reached: the rollout stopped when every host of a batch failed"
