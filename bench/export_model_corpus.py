"""Export the completions a results DB holds as bench_scorer's model-written corpus (JSONL).

    lqbench run bench/model_corpus_plan.toml --db corpus.duckdb
    lqbench run bench/model_corpus_greedy_plan.toml --db corpus.duckdb
    python bench/export_model_corpus.py corpus.duckdb --out bench/data/model_written.jsonl

One row per distinct (task, completion) of the built-in suite, in a stable order:
{"task_id", "model", "quant", "sample_idx", "temperature", "seed", "gen_tokens", "finish_reason",
"completion"}. Prompt and tests are not stored: scorer_corpus.model_written_corpus joins the
completion to the built-in task again, so a row is the program `prompt + completion + "\\n" + tests`
exactly as the run scored it. Rows already in --out are kept (--append) so several runs can add up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

QUERY = """
SELECT s.task_id, m.name, m.quant, s.sample_idx, s.temperature, s.seed, s.gen_tokens, s.finish_reason,
       s.completion
FROM samples s JOIN models m USING (model_id)
WHERE s.completion IS NOT NULL AND s.suite = 'lqbench-lua'
ORDER BY s.task_id, m.quant, s.temperature, s.sample_idx
"""

FIELDS = ("task_id", "model", "quant", "sample_idx", "temperature", "seed", "gen_tokens", "finish_reason",
          "completion")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db", help="a results DuckDB written by `lqbench run`")
    ap.add_argument("--out", required=True, help="the JSONL corpus to write")
    ap.add_argument("--append", action="store_true", help="keep the rows --out already holds")
    args = ap.parse_args()

    import duckdb

    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if args.append and out.exists() else []
    seen = {(r["task_id"], r["completion"]) for r in rows}
    con = duckdb.connect(args.db, read_only=True)
    try:
        fetched = con.execute(QUERY).fetchall()
    finally:
        con.close()
    added = 0
    for values in fetched:
        row = dict(zip(FIELDS, values))
        if (row["task_id"], row["completion"]) in seen:
            continue
        seen.add((row["task_id"], row["completion"]))
        rows.append(row)
        added += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{out}: {len(rows)} completions ({added} added from {args.db}; "
          f"{len(fetched) - added} duplicates skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
