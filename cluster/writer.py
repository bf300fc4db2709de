"""The head's batching in front of the single DuckDB writer.

Samples stream in one at a time; writing each alone would hold the file lock
constantly. `BatchWriter` buffers them and flushes every `max_rows` rows or
`max_age_s` seconds (and on demand), each flush one short transaction.
"""

from __future__ import annotations

import time

from lqbench.records import PerplexityRecord, SampleRecord, ShardRecord, SpeedRecord
from lqbench.store import ResultStore


class BatchWriter:
    def __init__(self, store: ResultStore, max_rows: int = 32, max_age_s: float = 2.0):
        self.store = store
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._samples: list[SampleRecord] = []
        self._shards: list[ShardRecord] = []
        self._perplexity: list[PerplexityRecord] = []
        self._speed: list[SpeedRecord] = []
        self._oldest: float | None = None
        self.written = 0

    def _touch(self) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()

    def add_sample(self, record: SampleRecord) -> None:
        self._samples.append(record)
        self._touch()

    def add_shard(self, record: ShardRecord) -> None:
        self._shards.append(record)
        self._touch()

    def add_perplexity(self, record: PerplexityRecord) -> None:
        self._perplexity.append(record)
        self._touch()

    def add_speed(self, records: list[SpeedRecord]) -> None:
        """A whole probe (every repetition of every test): written together, so a probe is in or out."""
        self._speed.extend(records)
        self._touch()

    def maybe_flush(self) -> None:
        if self._oldest is None:
            return
        if len(self._samples) >= self.max_rows or time.monotonic() - self._oldest >= self.max_age_s:
            self.flush()

    def flush(self) -> None:
        if self._oldest is None:
            return
        self.written += self.store.write_batch(self._samples, self._shards, self._perplexity, self._speed)
        self._samples, self._shards, self._perplexity, self._speed = [], [], [], []
        self._oldest = None
