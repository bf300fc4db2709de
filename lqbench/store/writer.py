"""The head's single writer: everything a run records goes through `ResultStore`.

Each method opens the file, writes one batch in one transaction, and closes it,
so readers (`lqbench query`, `lqbench report`) can open it between batches.
Sample inserts are idempotent on the sample key, so a shard that is retried after
a lost node never duplicates a row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from lqbench import __version__
from lqbench.errors import LqbenchError
from lqbench.records import PerplexityRecord, SampleRecord, ShardRecord, SpeedRecord, utc_now
from lqbench.store.db import connect_read_only, connect_write


def _insert(con, table: str, columns: list[str], rows: list[tuple], conflict: str = "") -> None:
    if not rows:
        return
    placeholders = ", ".join("?" for _ in columns)
    con.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) {conflict}", rows
    )


class ResultStore:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def ensure(self) -> None:
        """Create and migrate the file if needed."""
        with connect_write(self.path):
            pass

    # --- runs -----------------------------------------------------------
    def begin_run(self, run_id: str, config: dict, plan_name: str = "") -> None:
        with connect_write(self.path) as con:
            con.execute(
                "INSERT INTO runs (run_id, started_at, status, config_json, lqbench_version, plan_name)"
                " VALUES (?, ?, 'running', ?, ?, ?)",
                [run_id, utc_now(), json.dumps(config, sort_keys=True), __version__, plan_name],
            )

    def run_config(self, run_id: str) -> dict:
        """The plan an earlier run stored (read-only: a resume checks it before touching anything)."""
        with connect_read_only(self.path) as con:
            row = con.execute("SELECT config_json FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise LqbenchError(f"no run {run_id!r} in {self.path}")
        return json.loads(row[0])

    def resume_run(self, run_id: str) -> None:
        """Mark an existing run running again."""
        with connect_write(self.path) as con:
            con.execute("UPDATE runs SET status = 'running', finished_at = NULL WHERE run_id = ?", [run_id])

    def finish_run(self, run_id: str, status: str) -> None:
        with connect_write(self.path) as con:
            con.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, utc_now(), run_id]
            )

    # --- reference rows -------------------------------------------------
    def upsert_nodes(self, fingerprints: Iterable[dict]) -> None:
        cols = ["node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os",
                "arch", "mem_bandwidth_gbs", "llama_cpp_version", "labels_json", "engine_build",
                "engine_system_info", "engine_config"]
        now = utc_now()
        with connect_write(self.path) as con:
            for fp in fingerprints:
                values = [fp.get(c) for c in cols]
                con.execute(
                    f"INSERT INTO nodes ({', '.join(cols)}, first_seen, last_seen)"
                    f" VALUES ({', '.join('?' for _ in cols)}, ?, ?)"
                    " ON CONFLICT (node_id) DO UPDATE SET last_seen = excluded.last_seen,"
                    " mem_bandwidth_gbs = excluded.mem_bandwidth_gbs, labels_json = excluded.labels_json,"
                    " llama_cpp_version = excluded.llama_cpp_version, engine_build = excluded.engine_build,"
                    " engine_system_info = excluded.engine_system_info,"
                    " engine_config = coalesce(excluded.engine_config, nodes.engine_config)",
                    values + [now, now],
                )

    def upsert_models(self, models: Iterable[dict]) -> None:
        cols = ["model_id", "name", "quant", "path", "sha256", "file_bytes", "n_params", "bits_per_weight",
                "base_sha256", "requantized", "architecture"]
        rows = [tuple(m.get(c) for c in cols) for m in models]
        with connect_write(self.path) as con:
            _insert(con, "models", cols, rows, "ON CONFLICT (model_id) DO NOTHING")

    def upsert_tasks(self, tasks: Iterable) -> None:
        cols = ["suite", "task_id", "prompt", "tests", "stop_tokens", "suite_version", "topic", "difficulty"]
        rows = [(t.suite, t.task_id, t.prompt, t.tests, list(t.stop_tokens), t.suite_version, t.topic,
                 t.difficulty) for t in tasks]
        with connect_write(self.path) as con:
            _insert(con, "tasks", cols, rows, "ON CONFLICT DO NOTHING")

    # --- results --------------------------------------------------------
    def write_batch(
        self,
        samples: list[SampleRecord],
        shards: list[ShardRecord] = (),
        perplexities: list[PerplexityRecord] = (),
        speeds: list[SpeedRecord] = (),
    ) -> int:
        """Insert one batch atomically; samples (and speed repetitions) already present are skipped.
        Returns new sample rows."""
        if not samples and not shards and not perplexities and not speeds:
            return 0
        with connect_write(self.path) as con:
            before = con.execute("SELECT count(*) FROM samples").fetchone()[0]
            cols = SampleRecord.columns()
            _insert(con, "samples", cols, [tuple(getattr(s, c) for c in cols) for s in samples],
                    "ON CONFLICT DO NOTHING")
            scols = ShardRecord.columns()
            _insert(con, "shards", scols, [tuple(getattr(s, c) for c in scols) for s in shards])
            pcols = PerplexityRecord.columns()
            _insert(con, "perplexity", pcols, [tuple(getattr(p, c) for c in pcols) for p in perplexities])
            vcols = SpeedRecord.columns()
            _insert(con, "speed", vcols, [tuple(getattr(v, c) for c in vcols) for v in speeds],
                    "ON CONFLICT DO NOTHING")
            after = con.execute("SELECT count(*) FROM samples").fetchone()[0]
        return after - before

    def done_keys(self, run_id: str) -> set[tuple]:
        """Sample keys already recorded for a run: (model_id, suite, task_id, sample_idx, replica, prompt_style)."""
        if not self.path.exists():
            return set()
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute(
                    "SELECT model_id, suite, task_id, sample_idx, replica, prompt_style FROM samples WHERE run_id = ?",
                    [run_id],
                ).fetchall()
            except Exception:  # file exists but has no schema yet
                return set()
        return {tuple(r) for r in rows}

    def done_perplexity(self, run_id: str) -> set[tuple]:
        """("perplexity", model_id, corpus) keys already recorded for a run (Shard.perplexity_keys)."""
        if not self.path.exists():
            return set()
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute(
                    "SELECT DISTINCT model_id, corpus FROM perplexity WHERE run_id = ?", [run_id]
                ).fetchall()
            except Exception:
                return set()
        return {("perplexity", m, c) for m, c in rows}

    def done_speed(self, run_id: str) -> set[tuple]:
        """("speed", model_id, replica) keys of the probes a run recorded (a probe's rows land in one batch)."""
        if not self.path.exists():
            return set()
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute("SELECT DISTINCT model_id, replica FROM speed WHERE run_id = ?", [run_id]).fetchall()
            except Exception:  # a file from before migration 008 (read-only: not migrated) has none
                return set()
        return {("speed", m, r) for m, r in rows}

    def record_speed_probe(self, *, run: dict, node: dict, model: dict, records: list[SpeedRecord]) -> None:
        """`lqbench speed` on this machine: its run row, the node and model rows if new, and the repetitions,
        in one transaction. Existing node and model rows are left as they are."""
        node_cols = ["node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os", "arch",
                     "mem_bandwidth_gbs", "llama_cpp_version", "labels_json", "engine_build", "engine_system_info"]
        model_cols = ["model_id", "name", "quant", "path", "sha256", "file_bytes", "n_params", "bits_per_weight",
                      "base_sha256", "requantized", "architecture"]
        now = utc_now()
        with connect_write(self.path) as con:
            con.execute("INSERT INTO runs (run_id, started_at, finished_at, status, config_json, lqbench_version,"
                        " plan_name) VALUES (?, ?, ?, 'finished', ?, ?, 'speed') ON CONFLICT DO NOTHING",
                        [run["run_id"], run["started_at"], now, json.dumps(run["config"], sort_keys=True),
                         __version__])
            con.execute(f"INSERT INTO nodes ({', '.join(node_cols)}, first_seen, last_seen) VALUES "
                        f"({', '.join('?' for _ in node_cols)}, ?, ?) ON CONFLICT DO NOTHING",
                        [node.get(c) for c in node_cols] + [now, now])
            _insert(con, "models", model_cols, [tuple(model.get(c) for c in model_cols)], "ON CONFLICT DO NOTHING")
            vcols = SpeedRecord.columns()
            _insert(con, "speed", vcols, [tuple(getattr(v, c) for c in vcols) for v in records],
                    "ON CONFLICT DO NOTHING")

    # --- imported runs (lqbench import) -----------------------------------
    def check_import_models(self, models: list[dict]) -> None:
        """Refuse an imported model whose name and quant a measured model (a real GGUF) already has:
        the queries group by name x quant, and would mix measured and imported samples in one row."""
        if not self.path.exists() or not models:
            return
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute("SELECT name, quant, path FROM models").fetchall()
            except Exception:  # a file without our schema yet
                return
        measured = {(n, q) for n, q, path in rows if not (path or "").startswith("import:")}
        for m in models:
            if (m["name"], m["quant"]) in measured:
                raise LqbenchError(f"model {m['name']} {m['quant']} is already in {self.path} as a measured model "
                                   "(a GGUF run here); give the imported one another --model or --quant")

    def imported_origin_keys(self, keys: list[str]) -> set[str]:
        """Which of these import keys (see lqbench.importers.importer) are already recorded."""
        if not self.path.exists() or not keys:
            return set()
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute("SELECT origin_key FROM import_samples WHERE origin_key IN (SELECT unnest(?))",
                                   [keys]).fetchall()
            except Exception as exc:  # a file from before imports existed has none
                if "import_samples" in str(exc):
                    return set()
                raise
        return {r[0] for r in rows}

    def imported_files(self, sha256s: list[str]) -> dict[str, list[tuple[str, str]]]:
        """For each of these file hashes already imported: the (run_id, source) of the imports that read it."""
        if not self.path.exists() or not sha256s:
            return {}
        with connect_read_only(self.path) as con:
            try:
                rows = con.execute("SELECT f.sha256, f.run_id, i.source FROM import_files f JOIN imports i USING (run_id)"
                                   " WHERE f.n_programs > 0 AND f.sha256 IN (SELECT unnest(?)) ORDER BY f.run_id",
                                   [sha256s]).fetchall()
            except Exception as exc:  # a file from before imports existed has none
                if "import_files" in str(exc) or "imports" in str(exc):
                    return {}
                raise
        out: dict[str, list[tuple[str, str]]] = {}
        for sha, run_id, source in rows:
            out.setdefault(sha, []).append((run_id, source))
        return out

    def record_import(self, *, run: dict, imports_row: dict, models: list[dict], tasks: list, samples: list,
                      import_samples: list[dict], files: list[dict]) -> None:
        """Everything one import records, in one transaction: all of it or nothing."""
        sample_cols = SampleRecord.columns()
        model_cols = ["model_id", "name", "quant", "path", "sha256", "file_bytes", "n_params", "bits_per_weight",
                      "base_sha256", "requantized", "architecture"]
        task_cols = ["suite", "task_id", "prompt", "tests", "stop_tokens", "suite_version", "topic", "difficulty"]
        with connect_write(self.path) as con:
            _insert_columns(con, "runs", [run], ["run_id", "started_at", "finished_at", "status", "config_json",
                                                  "plan_name"], extra={"lqbench_version": __version__})
            _insert(con, "models", model_cols, [tuple(m.get(c) for c in model_cols) for m in models],
                    "ON CONFLICT (model_id) DO NOTHING")
            known = set(con.execute("SELECT suite, suite_version, task_id FROM tasks").fetchall())
            _bulk_insert(con, "tasks", task_cols,
                         [(t.suite, t.task_id, t.prompt, t.tests, list(t.stop_tokens), t.suite_version, t.topic,
                           t.difficulty) for t in tasks if (t.suite, t.suite_version, t.task_id) not in known])
            _insert_columns(con, "imports", [imports_row], list(imports_row))
            if files:
                cols = list(files[0])
                _bulk_insert(con, "import_files", cols, [tuple(f[c] for c in cols) for f in files])
            _bulk_insert(con, "samples", sample_cols, [tuple(getattr(s, c) for c in sample_cols) for s in samples])
            if import_samples:
                cols = list(import_samples[0])
                _bulk_insert(con, "import_samples", cols, [tuple(r[c] for c in cols) for r in import_samples])


def _insert_columns(con, table: str, rows: list[dict], columns: list[str], extra: dict | None = None) -> None:
    extra = extra or {}
    cols = columns + list(extra)
    _insert(con, table, cols, [tuple(r[c] for c in columns) + tuple(extra.values()) for r in rows])


def _bulk_insert(con, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Many rows in one statement, each column passed as one typed list and unnested side by side.
    DuckDB's executemany runs one statement per row: 3,902 samples + their import rows took 29 s that
    way on 2 busy cores, 0.3 s this way."""
    if not rows:
        return
    types = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]).fetchall())
    select = ", ".join(f"unnest(${i + 1}::{types[c]}[])" for i, c in enumerate(columns))
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}", [list(col) for col in zip(*rows)])
