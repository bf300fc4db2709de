"""Scorer benchmark: lqbench's sandboxed scorer against real `lua5.4` + Debian's LuaUnit.

    python bench/bench_scorer.py [--n 3000] [--jobs N] [--timeout 5] [--repeat 3]
                                 [--model-written FILE.jsonl] [--from-db results.duckdb]

Both sides score the same corpus (bench/scorer_corpus.py), written once as one `.lua` file per
program, at the same parallelism. The corpus: the completions the demo model wrote for the
built-in tasks at three quants (bench/data/model_written.jsonl), and programs written by us: the
built-in suite's reference and wrong solutions plus systematic mutations of the references;
optionally real completions from a results DB.

- reference: one `lua5.4 NNNNN.lua` process per program (LuaUnit from the Lua path), `--jobs`
  at a time, killed at the time limit — what the reference study did; file writing and the
  classification afterwards are not timed;
- lqbench: the whole `lqbench score DIR --out FILE --jobs N` command, start-up included; on the
  programs that finish also with `--reuse-state`, to show what a new Lua state per program costs.

Prints verdict agreement (program by program) with every class of disagreement counted and
explained, and the speed ratio (wall and CPU time). Programs on which the two disagree are
re-run a few times on both sides: when either gives more than one verdict, the program is
nondeterministic (pairs order over string keys, math.random, clocks) and that is the
explanation. Programs that hit the time limit cost that limit on both sides whatever the
scorer, so the programs that finish are timed again on their own: all of them, then the
model-written ones and ours apart, each side `--repeat` times in turn, the best run kept.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scorer_corpus import builtin_corpus, db_corpus, model_written_corpus  # noqa: E402

from lqbench.scorer.reference import classify, find_reference_lua, run_reference  # noqa: E402

MODEL_WRITTEN = Path(__file__).resolve().parent / "data" / "model_written.jsonl"
# how the speed section groups the corpus's sources
_OURS = "written by us (references, wrong solutions, mutants)"
KINDS = {"reference": _OURS, "wrong": _OURS, "mutant": _OURS, "model-written": "model-written (demo model)",
         "db": "model-written (results DB)"}

EXPLANATIONS = {
    "memory_limit": "lqbench caps memory per program ({mem} MB); real Lua has no cap",
    "sandbox_violation": "the program reaches for files, processes or bytecode, which the sandbox withholds",
    "timeout": "near the time limit: CPU-time hook and wall-clock kill vs a wall-clock kill under load",
    "nondeterministic": "real Lua itself gives different verdicts run to run (pairs order over "
                        "string keys, math.random, clocks)",
}


def run_reference_raw(lua: str, path: Path, timeout_s: float):
    started = time.perf_counter()
    try:
        done = subprocess.run([lua, path.name], cwd=path.parent, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout_s)
        return done.returncode, done.stdout, done.stderr, False, (time.perf_counter() - started) * 1000
    except subprocess.TimeoutExpired:
        return None, b"", b"", True, (time.perf_counter() - started) * 1000


def _cpu(who) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def reference_pass(lua: str, paths: list[Path], jobs: int, timeout_s: float):
    """Raw outcomes of `lua file` for every path, wall seconds, CPU seconds (harness + interpreters)."""
    cpu0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        raw = list(pool.map(lambda p: run_reference_raw(lua, p, timeout_s), paths))
    seconds = time.perf_counter() - started
    return raw, seconds, _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu0


def lqbench_pass(command: list[str], corpus_dir: Path, out_file: Path, jobs: int, timeout_s: float, memory_mb: int,
                 extra: tuple[str, ...] = ()):
    """Records of the whole `lqbench score` command, wall seconds, CPU seconds (it and its workers)."""
    cpu0 = _cpu(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command + ["score", str(corpus_dir), "--out", str(out_file), "--jobs", str(jobs),
                                     "--timeout", str(timeout_s), "--memory-mb", str(memory_mb), "-q", *extra],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lqbench score failed:\n{done.stderr}")
    records = {Path(r["path"]).name: r for r in map(json.loads, out_file.read_text().splitlines())}
    return records, seconds, _cpu(resource.RUSAGE_CHILDREN) - cpu0


def speed_line(label: str, n: int, seconds: float, cpu: float, what: str) -> str:
    return f"{label}: {seconds:8.2f} s wall, {cpu:7.2f} s CPU  ({n / seconds:7.1f} programs/s; {what})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="programs from the built-in suite and its mutants")
    ap.add_argument("--from-db", help="also score completions stored in this results DuckDB")
    ap.add_argument("--model-written", default=str(MODEL_WRITTEN), metavar="FILE.jsonl",
                    help="also score these completions the demo model wrote (default: %(default)s; '' for none)")
    ap.add_argument("--db-limit", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--memory-mb", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lua", default="lua5.4", help="reference interpreter")
    ap.add_argument("--reruns", type=int, default=5, help="re-runs of each disagreeing program, on both sides")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each side for the speed ratios (best kept)")
    ap.add_argument("--keep", help="keep the corpus and results in this directory")
    args = ap.parse_args()

    lua = find_reference_lua(args.lua)
    if lua is None:
        print(f"error: {args.lua} with LuaUnit not found (Debian: apt-get install lua5.4 lua-unit)", file=sys.stderr)
        return 2
    lqbench = shutil.which("lqbench", path=str(Path(sys.executable).parent)) or shutil.which("lqbench")
    command = [lqbench] if lqbench else [sys.executable, "-m", "lqbench.cli"]

    corpus = builtin_corpus(args.n, seed=args.seed)
    if args.model_written:
        corpus += model_written_corpus(args.model_written)
    if args.from_db:
        corpus += db_corpus(args.from_db, args.db_limit)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lqbench-bench-scorer-"))
    for sub in ("corpus", "finishing", "disagreements"):
        shutil.rmtree(work / sub, ignore_errors=True)
    corpus_dir = work / "corpus"
    corpus_dir.mkdir(parents=True)
    paths = []
    for i, item in enumerate(corpus):
        path = corpus_dir / f"{i:05d}.lua"
        path.write_text(item.program)
        paths.append(path)
    sources = collections.Counter(item.source for item in corpus)
    print(f"corpus: {len(corpus)} programs ({', '.join(f'{k} {v}' for k, v in sources.items())}); "
          f"jobs {args.jobs}; time limit {args.timeout:g} s; reference {lua}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    raw, ref_seconds, ref_cpu = reference_pass(lua, paths, args.jobs, args.timeout)

    def classify_raw(i):
        returncode, out, err, timed_out, ms = raw[i]
        path = paths[i]

        def compiles():
            check = subprocess.run([lua, "-e", f"if not loadfile('{path.name}') then os.exit(3) end"],
                                   cwd=path.parent, capture_output=True)
            return check.returncode == 0
        return classify(returncode, out, err, timed_out, ms, lua, compiles)

    reference = [classify_raw(i) for i in range(len(paths))]
    ours, ours_seconds, ours_cpu = lqbench_pass(command, corpus_dir, work / "lqbench.jsonl", args.jobs,
                                                args.timeout, args.memory_mb)
    ours_status = [ours[p.name]["status"] for p in paths]

    # -- agreement, and why not
    from lqbench.scorer import ScoreLimits, ScorerPool

    confusion = collections.Counter()
    classes = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    rerun_pool = None
    for i, path in enumerate(paths):
        ref, mine = reference[i].status, ours_status[i]
        confusion[(ref, mine)] += 1
        if ref == mine:
            continue
        if mine in ("memory_limit", "sandbox_violation"):
            why = mine
        elif "timeout" in (ref, mine):
            why = "timeout"
        else:
            if rerun_pool is None:
                rerun_pool = ScorerPool(jobs=1, limits=ScoreLimits(timeout_s=args.timeout, memory_mb=args.memory_mb))
            program = path.read_bytes()
            ref_runs = {ref} | {run_reference(program, args.timeout, lua).status for _ in range(args.reruns)}
            our_runs = {mine} | {rerun_pool.score(program).status for _ in range(args.reruns)}
            why = "nondeterministic" if len(ref_runs) > 1 or len(our_runs) > 1 else "unexplained"
        classes[why] += 1
        (work / "disagreements").mkdir(exist_ok=True)
        shutil.copy(path, work / "disagreements" / path.name)
        if len(examples[why]) < 3:
            examples[why].append(f"{path.name} ({corpus[i].id}): real {ref}, lqbench {mine}")
    if rerun_pool is not None:
        rerun_pool.close()

    n = len(paths)
    agree = sum(v for (a, b), v in confusion.items() if a == b)
    print()
    print("verdicts (real lua5.4 + LuaUnit):", dict(collections.Counter(r.status for r in reference)))
    print("verdicts (lqbench score)       :", dict(collections.Counter(ours_status)))
    print(f"\nverdict agreement: {agree}/{n} = {100.0 * agree / n:.2f} %")
    for why, count in classes.most_common():
        text = EXPLANATIONS.get(why, "UNEXPLAINED: see the programs under " + str(work / "disagreements"))
        print(f"  {count:5d} x {why}: {text.format(mem=args.memory_mb)}")
        for example in examples[why]:
            print(f"          e.g. {example}")
    for (ref, mine), count in sorted(confusion.items()):
        if ref != mine:
            print(f"  real {ref:18s} -> lqbench {mine:18s} {count}")

    # -- speed
    print(f"\nspeed, whole corpus ({args.jobs} jobs on both sides):")
    print(speed_line("  reference", n, ref_seconds, ref_cpu, f"one {Path(lua).name} process per program"))
    print(speed_line("  lqbench  ", n, ours_seconds, ours_cpu, "the whole `lqbench score` command"))
    print(f"  ratio: {ref_seconds / ours_seconds:.1f}x wall, {ref_cpu / ours_cpu:.1f}x CPU")

    # programs that run into the time limit cost the limit on both sides; time the rest again, all
    # together and each kind of program on its own, each side `--repeat` times, alternating
    slow = {i for i in range(n) if reference[i].status == "timeout" or ours_status[i] in ("timeout", "memory_limit")}
    finishing_ids = [i for i in range(n) if i not in slow]
    groups = [(f"all {len(finishing_ids)} programs that finish on both sides (without the {len(slow)} that hit "
               f"the {args.timeout:g} s limit or the memory cap)", finishing_ids)]
    kinds = collections.defaultdict(list)
    for i in finishing_ids:
        kinds[KINDS.get(corpus[i].source, corpus[i].source)].append(i)
    if len(kinds) > 1:
        groups += [(f"the {len(ids)} {kind} programs among them", ids) for kind, ids in sorted(kinds.items())]
    for g, (label, ids) in enumerate(groups):
        group_dir = work / "finishing" / str(g)
        group_dir.mkdir(parents=True)
        for i in ids:
            os.link(paths[i], group_dir / paths[i].name)
        group_paths = [group_dir / paths[i].name for i in ids]
        best_ref = best_ours = best_reuse = None
        for _ in range(args.repeat):
            _, seconds, cpu = reference_pass(lua, group_paths, args.jobs, args.timeout)
            best_ref = min(best_ref or (seconds, cpu), (seconds, cpu))
            _, seconds, cpu = lqbench_pass(command, group_dir, work / f"finishing_{g}.jsonl", args.jobs,
                                           args.timeout, args.memory_mb)
            best_ours = min(best_ours or (seconds, cpu), (seconds, cpu))
            if g == 0:  # what reusing Lua states (not the default) would buy, on the whole group
                _, seconds, cpu = lqbench_pass(command, group_dir, work / f"finishing_{g}_reuse.jsonl", args.jobs,
                                               args.timeout, args.memory_mb, ("--reuse-state",))
                best_reuse = min(best_reuse or (seconds, cpu), (seconds, cpu))
        mix = collections.Counter(reference[i].status for i in ids)
        print(f"\nspeed, {label}; the best of {args.repeat} runs each:")
        print("  verdicts (real Lua): " + ", ".join(f"{status} {count}" for status, count in mix.most_common()))
        print(speed_line("  reference", len(ids), *best_ref, "as above"))
        print(speed_line("  lqbench  ", len(ids), *best_ours, "as above"))
        print(f"  ratio: {best_ref[0] / best_ours[0]:.1f}x wall, {best_ref[1] / best_ours[1]:.1f}x CPU")
        if best_reuse is not None:
            print(speed_line("  lqbench --reuse-state", len(ids), *best_reuse, "Lua states reused between programs"))
            print(f"  the default (a new Lua state per program) takes {best_ours[0] / best_reuse[0]:.2f}x the wall "
                  f"time and {best_ours[1] / best_reuse[1]:.2f}x the CPU time of --reuse-state")
        own = sum(float(ours[paths[i].name]["ms"]) for i in ids) / 1000 / args.jobs
        print(f"  bound: the programs' own time in the sandbox, spread evenly over {args.jobs} jobs, is {own:.2f} s; "
              f"with no start-up and no overhead at all lqbench could be at most {best_ref[0] / own:.1f}x faster")

    # where the time goes, program by program (harness and start-up excluded on both sides)
    print("\ntime per program by verdict (real Lua: the lua5.4 process's wall time; lqbench: time in the "
          "sandbox, Lua state set-up included):")
    print(f"  {'verdict (real Lua)':20s} {'programs':>8s} {'real ms':>9s} {'lqbench ms':>11s} {'ratio':>6s}")
    by_class = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for i, p in enumerate(paths):
        row = by_class[reference[i].status]
        row[0] += 1
        row[1] += raw[i][4]
        row[2] += float(ours[p.name]["ms"])
    for status, (count, ref_ms, our_ms) in sorted(by_class.items(), key=lambda kv: -kv[1][1]):
        print(f"  {status:20s} {count:8d} {ref_ms:9.0f} {our_ms:11.0f} {ref_ms / max(our_ms, 1e-9):5.1f}x")
    # among the programs that finish: the few that dominate lqbench's time, and what that allows
    sandbox_ms = {i: float(ours[paths[i].name]["ms"]) for i in finishing_ids}
    slowest = sorted(finishing_ids, key=lambda i: -sandbox_ms[i])[:10]
    total_ms = sum(sandbox_ms.values())
    print(f"  of the programs that finish, the 10 slowest take {100 * sum(sandbox_ms[i] for i in slowest) / total_ms:.0f} %"
          f" of lqbench's sandbox time: " + ", ".join(
              f"{corpus[i].id} {ours_status[i]} {sandbox_ms[i]:.0f} ms (real {raw[i][4]:.0f} ms)" for i in slowest[:3])
          + ", ...")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\ncorpus and results kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
