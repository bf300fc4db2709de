"""The console side of `lqbench score`: a progress bar while scoring, a summary by status after."""

from __future__ import annotations

import time
from pathlib import Path


def score_command(paths: list[Path], out: Path, lua: str, timeout: float, jobs: int | None,
                  memory_mb: int, strict: bool, quiet: bool, fresh_state: bool = False) -> int:
    """Score the programs under `paths` into `out`; returns the process exit status."""
    from lqbench.scorer import ScoreLimits, ScorerPool

    limits = ScoreLimits(timeout_s=timeout, memory_mb=memory_mb, lua=lua, fresh_state=fresh_state)
    pool = ScorerPool(jobs=jobs, limits=limits)  # its workers boot while rich is imported

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from lqbench.records import VERDICTS
    from lqbench.scorer.files import score_paths

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[passed]} passed"),
        TimeRemainingColumn(), console=console, disable=quiet, transient=False,
    )
    state = {"task": None, "total": None, "scored": 0, "passed": 0, "pending": 0, "shown_at": 0.0}

    def on_start(total: int) -> None:
        state["total"] = total
        state["task"] = progress.add_task("scoring", total=total, passed=0)

    def on_verdict(source, verdict) -> None:
        state["scored"] += 1  # for the Ctrl-C line, also when quiet
        if quiet:
            return
        # redrawing costs more than scoring a program: move the bar at most every 50 ms
        state["passed"] += verdict.passed
        state["pending"] += 1
        now = time.monotonic()
        if now - state["shown_at"] >= 0.05:
            progress.update(state["task"], advance=state["pending"], passed=state["passed"])
            state["pending"], state["shown_at"] = 0, now

    try:
        with progress:
            run = score_paths(paths, out, limits=limits, jobs=jobs, strict=strict, on_start=on_start,
                              on_verdict=on_verdict, pool=pool)
            if state["task"] is not None:
                progress.update(state["task"], advance=state["pending"], passed=state["passed"])
    except KeyboardInterrupt:  # Ctrl-C: score_paths has stopped the workers and removed the partial file
        total = state["total"] if state["total"] is not None else "?"
        console.print(f"interrupted: {state['scored']} of {total} programs scored; {out} not written",
                      highlight=False, markup=False, soft_wrap=True)
        return 130

    for issue in run.issues:
        console.print(f"[yellow]skipped[/] {issue}", highlight=False, markup=True, soft_wrap=True)
    console.print(f"{run.total} programs scored with Lua {lua} in {run.seconds:.2f} s"
                  f" ({run.total / run.seconds if run.seconds else 0:.0f}/s)", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("status")
    table.add_column("programs", justify="right")
    table.add_column("share", justify="right")
    for status in VERDICTS:
        n = run.counts.get(status, 0)
        if n:
            table.add_row(status, str(n), f"{100.0 * n / run.total:.1f} %")
    if run.issues:
        table.add_row("skipped input lines", str(len(run.issues)), "")
    console.print(table)
    console.print(f"results: {run.out}", highlight=False, soft_wrap=True)
    return 1 if run.issues else 0
