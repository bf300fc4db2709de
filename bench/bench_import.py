"""`lqbench import` against `lqbench score` on the same few thousand programs, side by side in one run.

Both commands run the programs through the same scorer pool; import also reads and hashes its inputs,
resolves every program's model and task, and records a run in a fresh DuckDB file. The ratio
import / score says what that bookkeeping costs. Two input layouts, each timed both ways:

- a program folder: one full `.lua` program per file, `{model}/{quant}/{task}-{sample}.lua`, one command each;
- MultiPL-E completion files: one `{task}.json` per model x quant x task holding its `completions`,
  one command per model x quant folder (MultiPL-E files do not say which model wrote them), summed.

Programs: the completions the demo model wrote for the built-in suite at three quants
(bench/data/model_written.jsonl, 1,902) plus the suite's references, wrong solutions and mutants
(bench/scorer_corpus.py) as a fourth "model". Every timing is the whole command (process start to
exit), best of --repeat, the two sides alternating. It also prints how many programs got the same verdict
both ways: a program at a time or memory limit, or one whose result depends on pairs() order (string
hashes are seeded per Lua state), may end differently from one run to the next, in either command.

    .venv/bin/python bench/bench_import.py [--extra 2000] [--repeat 3] [--jobs N] [--timeout S]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
MODEL_WRITTEN = HERE / "data" / "model_written.jsonl"


def corpus(extra: int, seed: int) -> list[dict]:
    """Rows of (model, quant, task_id, completion), in a stable order."""
    from scorer_corpus import builtin_corpus

    from lqbench.tasks import load_builtin

    by_id = load_builtin().by_id()
    rows = []
    for line in MODEL_WRITTEN.read_text().splitlines():
        r = json.loads(line)
        if r["task_id"] in by_id:
            rows.append({"model": r["model"], "quant": r["quant"], "task_id": r["task_id"],
                         "completion": r["completion"]})
    for item in builtin_corpus(extra, seed=seed):
        task = by_id[item.id.split("/")[0]]
        completion = item.program[len(task.prompt):len(item.program) - len(task.tests) - 1]
        assert task.program(completion) == item.program
        rows.append({"model": "suite-mutants", "quant": item.source, "task_id": task.task_id, "completion": completion})
    return rows


def write_layouts(rows: list[dict], work: Path) -> tuple[Path, Path, list[Path]]:
    from lqbench.suites.multiple import task_to_row
    from lqbench.tasks import load_builtin

    by_id = load_builtin().by_id()
    lua_dir, multiple_dir = work / "lua", work / "multiple"
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["model"], r["quant"], r["task_id"])].append(r["completion"])
    for (model, quant, task_id), completions in groups.items():
        task = by_id[task_id]
        d = lua_dir / model / quant
        d.mkdir(parents=True, exist_ok=True)
        for k, completion in enumerate(completions):
            (d / f"{task_id}-{k}.lua").write_text(task.program(completion))
        m = multiple_dir / model / quant
        m.mkdir(parents=True, exist_ok=True)
        row = task_to_row(task)
        row.update(completions=completions, temperature=0.0)
        (m / f"{task_id}.json").write_text(json.dumps(row))
    folders = sorted({multiple_dir / model / quant for model, quant, _ in groups})
    return lua_dir, multiple_dir, folders


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-2000:]}")
    return seconds, proc


def import_counts(db: Path) -> collections.Counter:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return collections.Counter(dict(con.execute("SELECT status, count(*) FROM samples GROUP BY ALL").fetchall()))
    finally:
        con.close()


def folder_verdicts(db: Path, scored: Path) -> tuple[int, collections.Counter]:
    """Programs with the same verdict both ways, and the (import, score) verdict pairs that differ
    (a program at a limit can end as timeout one time and memory_limit the other on a loaded machine)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        ours = dict(con.execute("SELECT x.origin, s.status FROM import_samples x JOIN samples s "
                                "USING (run_id, model_id, suite, task_id, sample_idx, replica)").fetchall())
    finally:
        con.close()
    same, differ = 0, collections.Counter()
    for line in scored.read_text().splitlines():
        r = json.loads(line)
        if ours[str(Path(r["path"]).resolve())] == r["status"]:
            same += 1
        else:
            differ[(ours[str(Path(r["path"]).resolve())], r["status"])] += 1
    return same, differ


def score_counts(outs: list[Path]) -> collections.Counter:
    c = collections.Counter()
    for out in outs:
        for line in out.read_text().splitlines():
            c[json.loads(line)["status"]] += 1
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", type=int, default=2000, help="programs from the built-in suite and its mutants")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each side (best kept)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds per program, both sides (the few programs that run out of time dominate both)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep the inputs and outputs in this directory")
    args = ap.parse_args()

    lqbench = shutil.which("lqbench", path=str(Path(sys.executable).parent))
    cli = [lqbench] if lqbench and "PYTHONPATH" not in os.environ else [sys.executable, "-m", "lqbench.cli"]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lqbench-bench-import-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = corpus(args.extra, args.seed)
    lua_dir, multiple_dir, folders = write_layouts(rows, work)
    models = collections.Counter(f"{r['model']} {r['quant']}" for r in rows)
    print(f"programs: {len(rows)} ({', '.join(f'{k} {v}' for k, v in sorted(models.items()))}); jobs {args.jobs}; "
          f"time limit {args.timeout:g} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    common = ["--jobs", str(args.jobs), "--timeout", str(args.timeout)]

    best = collections.defaultdict(lambda: float("inf"))
    for rep in range(args.repeat):
        # program folder: one command each way
        db = work / f"folder-{rep}.duckdb"
        sides = [
            ("folder import", lambda: timed(cli + ["import", str(lua_dir), "--suite", "lqbench-lua", "--pattern",
                                                   "{model}/{quant}/{task}-{sample}.lua", "--source", "bench",
                                                   "--db", str(db)] + common)),
            ("folder score", lambda: timed(cli + ["score", str(lua_dir), "--out", str(work / "folder.jsonl"), "-q"]
                                           + common)),
        ]
        for label, run in (sides if rep % 2 == 0 else sides[::-1]):
            best[label] = min(best[label], run()[0])
        if rep == 0:
            same, differ = folder_verdicts(db, work / "folder.jsonl")
            assert same + sum(differ.values()) == len(rows)
            print(f"verdicts, program folder: {same} of {len(rows)} programs the same both ways"
                  + (f"; differ: {', '.join(f'import {a} / score {b}: {n}' for (a, b), n in differ.items())}"
                     if differ else ""))
            ours = import_counts(db)
            best["folder re-import (nothing new)"] = timed(
                cli + ["import", str(lua_dir), "--suite", "lqbench-lua", "--pattern",
                       "{model}/{quant}/{task}-{sample}.lua", "--source", "bench", "--db", str(db)] + common)[0]
            assert import_counts(db) == ours

        # MultiPL-E completion files: one command per model x quant folder, summed
        db = work / f"multiple-{rep}.duckdb"

        def import_all():
            total = 0.0
            for folder in folders:
                model, quant = folder.parent.name, folder.name
                total += timed(cli + ["import", str(folder), "--model", f"{model}-imported", "--quant", quant,
                                      "--source", "bench", "--db", str(db)] + common)[0]
            return total, None

        def score_all():
            total = 0.0
            for i, folder in enumerate(folders):
                files = sorted(str(p) for p in folder.glob("*.json"))
                total += timed(cli + ["score", *files, "--out", str(work / f"multiple-{i}.jsonl"), "-q"] + common)[0]
            return total, None

        sides = [("MultiPL-E import", import_all), ("MultiPL-E score", score_all)]
        for label, run in (sides if rep % 2 == 0 else sides[::-1]):
            best[label] = min(best[label], run()[0])
        if rep == 0:
            ours = import_counts(db)
            theirs = score_counts([work / f"multiple-{i}.jsonl" for i in range(len(folders))])
            print(f"verdict counts, MultiPL-E files: import {dict(sorted(ours.items()))}"
                  + (" (the same from score)" if ours == theirs else f"; score {dict(sorted(theirs.items()))}"))
        for f in work.glob("*.duckdb"):
            f.unlink()

    n = len(rows)
    print(f"best of {args.repeat}, whole commands:")
    for label in ("folder import", "folder score", "folder re-import (nothing new)", "MultiPL-E import",
                  "MultiPL-E score"):
        print(f"  {label:<32} {best[label]:7.2f} s  {n / best[label]:7.0f} programs/s")
    print(f"ratio import / score, program folder ({n} .lua files, 1 command each): "
          f"{best['folder import'] / best['folder score']:.2f}")
    print(f"ratio import / score, MultiPL-E files ({len(folders)} commands each): "
          f"{best['MultiPL-E import'] / best['MultiPL-E score']:.2f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
