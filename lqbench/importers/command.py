"""The console side of `lqbench import`: what was recorded, what was skipped and why, in plain lines."""

from __future__ import annotations

import sys
from pathlib import Path

from lqbench.importers.importer import ImportOptions, import_paths

MAX_IGNORED_SHOWN = 5


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def import_command(paths: list[Path], db: Path, options: ImportOptions) -> int:
    """Run one import and report it; returns the exit status (1 when input entries were skipped)."""
    from lqbench.verdicts import VERDICTS

    bar = None
    if sys.stderr.isatty():  # the scorer's bar: drawn only on a terminal, rich imported only then
        from lqbench.scorer.command import _Bar

        bar = _Bar()
    try:
        if bar is None:
            summary = import_paths(paths, db, options)
        else:
            with bar.progress:
                summary = import_paths(paths, db, options, on_start=bar.start,
                                       on_verdict=lambda verdict: bar.advance(verdict.passed))
                bar.show()
    except KeyboardInterrupt:
        _say(f"interrupted: nothing was imported into {db}")
        return 130
    for issue in summary.issues:
        _say(f"skipped {issue}")
    for note in summary.notes:
        _say(f"note: {note}")
    for path, first in summary.duplicates:
        _say(f"read once: {path} has the same bytes as {first}")
    if summary.ignored:
        shown = ", ".join(summary.ignored[:MAX_IGNORED_SHOWN])
        more = f" and {len(summary.ignored) - MAX_IGNORED_SHOWN} more" if len(summary.ignored) > MAX_IGNORED_SHOWN else ""
        _say(f"ignored {len(summary.ignored)} file(s) under the folders that are no import format: {shown}{more}")
    formats = {}
    for f in summary.files:
        formats[f.format] = formats.get(f.format, 0) + 1
    kinds = ", ".join(f"{n} {fmt}" for fmt, n in sorted(formats.items()))
    if summary.run_id is None:
        _say(f"nothing new: {summary.n_already} program(s) from {len(summary.files)} file(s) ({kinds or 'none'}) "
             f"were already imported into {db}")
        return 1 if summary.issues else 0
    models = ", ".join(f"{name} {quant}" for name, quant in summary.models)
    _say(f"imported {summary.n_programs} program(s) of {models} as run {summary.run_id} into {db} "
         f"in {summary.seconds:.2f} s (source: {options.source})")
    _say(f"  from {len(summary.files)} file(s): {kinds}"
         + (f"; {summary.n_already} program(s) were already imported" if summary.n_already else ""))
    verdicts = ", ".join(f"{status} {summary.counts[status]}" for status in VERDICTS if summary.counts.get(status))
    _say(f"  our verdicts: {verdicts}")
    if summary.compared:
        _say(f"  the original harness's verdicts: {summary.agreed} of {summary.compared} agree on pass/fail "
             f"({100.0 * summary.agreed / summary.compared:.1f} %); see `lqbench query import_agreement` "
             "and `lqbench query import_disagreements`")
    if summary.issues:
        _say(f"  {len(summary.issues)} input entr{'y was' if len(summary.issues) == 1 else 'ies were'} skipped (above)")
    return 1 if summary.issues else 0
