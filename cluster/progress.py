"""The head's live view: one overall bar, and per node its shards done, current model and tok/s.

When stdout is not a terminal (nohup, CI, a service's log) a live view would print nothing until
the end, so the view is one plain line per finished shard (and per lost, crashed or hung node) instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class NodeView:
    name: str
    shards_done: int = 0
    samples: int = 0
    current: str = "idle"
    gen_tokens: int = 0
    gen_ms: float = 0.0
    state: str = "up"

    @property
    def tok_s(self) -> float:
        return self.gen_tokens / self.gen_ms * 1000 if self.gen_ms else 0.0


class RunProgress:
    def __init__(self, total: int, enabled: bool = True, title: str = "samples"):
        self.total = total
        self.enabled = enabled
        self.title = title
        self.nodes: dict[str, NodeView] = {}
        self._live = None
        self._progress = None
        self._task = None
        self._plain = False  # one line per event instead of a live view
        self._done = 0
        self._started = time.monotonic()

    def __enter__(self):
        self._started = time.monotonic()
        if self.enabled:
            import sys

            if not sys.stdout.isatty():
                self._plain = True
                return self
            from rich.console import Group
            from rich.live import Live
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
            self._task = self._progress.add_task(self.title, total=self.total)
            self._group = Group
            self._live = Live(self._render(), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
        return False

    def _render(self):
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("node", "state", "shards done", "samples", "current model", "tok/s per seq"):
            table.add_column(col)
        for v in self.nodes.values():
            table.add_row(v.name, v.state, str(v.shards_done), str(v.samples), v.current, f"{v.tok_s:.1f}")
        return self._group(self._progress, table)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _line(self, what: str) -> None:
        if not self._plain:
            return
        elapsed = time.monotonic() - self._started
        minutes, seconds = divmod(int(elapsed), 60)
        print(f"[{minutes:d}:{seconds:02d}] {self._done}/{self.total} {self.title}; {what}", flush=True)

    def node(self, name: str) -> NodeView:
        return self.nodes.setdefault(name, NodeView(name))

    def started(self, name: str, model_label: str) -> None:
        self.node(name).current = model_label
        self.node(name).state = "up"
        self._refresh()

    def sample(self, name: str, gen_tokens: int, gen_ms: float) -> None:
        v = self.node(name)
        v.samples += 1
        v.gen_tokens += gen_tokens or 0
        v.gen_ms += gen_ms or 0.0
        self._done += 1
        if self._progress is not None:
            self._progress.advance(self._task)
        self._refresh()

    def shard_done(self, name: str) -> None:
        v = self.node(name)
        v.shards_done += 1
        self._line(f"{name}: shard of {v.current} done ({v.shards_done} shards, {v.samples} samples, "
                   f"{v.tok_s:.1f} tok/s per sequence)")
        v.current = "idle"
        self._refresh()

    def lost(self, name: str) -> None:
        self.node(name).state = "lost"
        self.node(name).current = "-"
        self._line(f"{name}: lost")
        self._refresh()

    def failed(self, name: str, what: str) -> None:
        """The node's engine crashed or hung (`what` says how and what happens next); the node stays."""
        v = self.node(name)
        v.state = what.split(" ", 1)[0]  # crashed | hung
        v.current = "idle"
        self._line(f"{name}: {what}")
        if self._plain is False and self._live is not None:
            self._live.console.print(f"{name}: {what}", markup=False, highlight=False)
        self._refresh()

    def advance(self, n: int) -> None:
        """Count samples done before this session (a resumed run)."""
        self._done += n
        if self._progress is not None and n:
            self._progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)
