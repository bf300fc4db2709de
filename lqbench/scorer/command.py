"""The console side of `lqbench score`: a progress bar while scoring, a summary by status after.

The bar is drawn only on a terminal and without --quiet; only then is rich imported (it costs
more start-up than scoring a few hundred programs). Everything else is plain lines on stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


class _Bar:
    """rich's progress bar, moved at most every 50 ms: redrawing costs more than a program."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[passed]} passed"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.task = None
        self.passed = self.pending = 0
        self.shown_at = 0.0

    def start(self, total: int) -> None:
        self.task = self.progress.add_task("scoring", total=total, passed=0)

    def advance(self, passed: bool) -> None:
        self.passed += passed
        self.pending += 1
        now = time.monotonic()
        if now - self.shown_at >= 0.05:
            self.show()
            self.shown_at = now

    def show(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=self.pending, passed=self.passed)
            self.pending = 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def score_command(paths: list[Path], out: Path, lua: str, timeout: float, jobs: int | None,
                  memory_mb: int, strict: bool, quiet: bool, fresh_state: bool = True) -> int:
    """Score the programs under `paths` into `out`; returns the process exit status."""
    from lqbench.scorer import ScoreLimits, ScorerPool

    limits = ScoreLimits(timeout_s=timeout, memory_mb=memory_mb, lua=lua, fresh_state=fresh_state)
    pool = ScorerPool(jobs=jobs, limits=limits)  # its workers boot while the rest is imported

    from lqbench.scorer.files import score_paths
    from lqbench.verdicts import VERDICTS

    bar = _Bar() if not quiet and sys.stderr.isatty() else None
    counted = {"total": None, "scored": 0}

    def on_start(total: int) -> None:
        counted["total"] = total
        if bar is not None:
            bar.start(total)

    def on_verdict(source, verdict) -> None:
        counted["scored"] += 1  # for the Ctrl-C line
        if bar is not None:
            bar.advance(verdict.passed)

    try:
        if bar is None:
            run = score_paths(paths, out, limits=limits, jobs=jobs, strict=strict, on_start=on_start,
                              on_verdict=on_verdict, pool=pool)
        else:
            with bar.progress:
                run = score_paths(paths, out, limits=limits, jobs=jobs, strict=strict, on_start=on_start,
                                  on_verdict=on_verdict, pool=pool)
                bar.show()
    except KeyboardInterrupt:  # Ctrl-C: score_paths has stopped the workers and removed the partial file
        total = counted["total"] if counted["total"] is not None else "?"
        _say(f"interrupted: {counted['scored']} of {total} programs scored; {out} not written")
        return 130

    for issue in run.issues:
        _say(f"skipped {issue}")
    _say(f"{run.total} programs scored with Lua {lua} in {run.seconds:.2f} s"
         f" ({run.total / run.seconds if run.seconds else 0:.0f}/s)")
    rows = [(status, str(n), f"{100.0 * n / run.total:.1f} %") for status in VERDICTS
            if (n := run.counts.get(status, 0))]
    if run.issues:
        rows.append(("skipped input lines", str(len(run.issues)), ""))
    width = max([len("status")] + [len(r[0]) for r in rows])
    _say(f"  {'status':<{width}}  {'programs':>8}  {'share':>7}")
    for status, n, share in rows:
        _say(f"  {status:<{width}}  {n:>8}  {share:>7}")
    _say(f"results: {run.out}")
    return 1 if run.issues else 0
