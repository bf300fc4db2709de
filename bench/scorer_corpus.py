"""The corpus of MultiPL-E Lua programs that bench_scorer.py scores both ways.

Sources (the mutants are deterministic for a given seed):
- the built-in `lqbench-lua` suite: every reference solution and every known-wrong solution;
- systematic mutations of the reference completions, in the shapes model errors take:
  flipped comparisons and arithmetic, off-by-one constants and indices, and/or swaps, a deleted
  or duplicated line, a completion cut off mid-function (max tokens), a misspelled local,
  Python habits (len(xs), xs.append, !=, elif, str()), wrong returns, debug prints;
- model-written: completions the demo model wrote for the built-in tasks (bench/data/model_written.jsonl,
  made by bench/model_corpus_plan.toml and bench/export_model_corpus.py);
- optionally, real completions from a results DuckDB (`samples` joined to `tasks`).

Each program is `prompt + completion + "\\n" + tests`, exactly as MultiPL-E builds it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusProgram:
    id: str
    source: str      # reference | wrong | mutant | model-written | db
    program: str


_SWAPS = [
    ("<=", "<"), ("<", "<="), (">=", ">"), (">", ">="), ("==", "~="), ("~=", "=="),
    (" + ", " - "), (" - ", " + "), (" * ", " + "), ("//", "/"), (" / ", " // "), (" % ", " // "),
    (" and ", " or "), (" or ", " and "), ("true", "false"), ("false", "true"), ("not ", ""),
    ("ipairs(", "pairs("), ("#", "#1 + #"), ("[i]", "[i + 1]"), ("[i]", "[i - 1]"),
    ("table.insert(", "table.insert(1, "), (":sub(", ":sub(2, "), ("math.floor(", "math.ceil("),
    ("string.format(", "tostring("), ("..", " + "), ("return ", "return nil, "),
]
_PYTHONISMS = [
    (re.compile(r"#(\w+)"), r"len(\1)"),
    (re.compile(r"table\.insert\((\w+), ([^)]+)\)"), r"\1.append(\2)"),
    (re.compile(r"~="), "!="),
    (re.compile(r"\belseif\b"), "elif"),
    (re.compile(r"tostring\("), "str("),
    (re.compile(r"\bnil\b"), "None"),
    (re.compile(r"\blocal (\w+) = \{\}"), r"local \1 = []"),
    (re.compile(r"\bthen\b"), ":"),
]


def _mutate(completion: str, rng: random.Random) -> str | None:
    """One plausible model mistake in a completion, or None if the operator did not apply."""
    lines = completion.split("\n")
    op = rng.randrange(8)
    if op <= 2:  # a token-level swap at one occurrence
        old, new = rng.choice(_SWAPS)
        spots = [m.start() for m in re.finditer(re.escape(old), completion)]
        if not spots:
            return None
        at = rng.choice(spots)
        return completion[:at] + new + completion[at + len(old):]
    if op == 3:  # an integer literal off by one
        spots = list(re.finditer(r"(?<![\w.])(\d+)(?![\w.])", completion))
        if not spots:
            return None
        m = rng.choice(spots)
        value = int(m.group(1)) + rng.choice((-1, 1))
        return completion[:m.start()] + str(value) + completion[m.end():]
    if op == 4:  # a line deleted or duplicated
        body = [i for i, line in enumerate(lines) if line.strip()]
        if len(body) < 2:
            return None
        i = rng.choice(body)
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
        return "\n".join(lines)
    if op == 5:  # cut off mid-function, as when generation hits its token limit
        if len(lines) < 3:
            return None
        return "\n".join(lines[: rng.randrange(1, len(lines) - 1)])
    if op == 6:  # a Python habit
        pattern, repl = rng.choice(_PYTHONISMS)
        if not pattern.search(completion):
            return None
        return pattern.sub(repl, completion, count=1)
    # op 7: a misspelled local, a debug print, or a wrong kind of result
    choice = rng.randrange(3)
    if choice == 0:
        names = sorted(set(re.findall(r"\blocal (\w+)", completion)))
        if not names:
            return None
        name = rng.choice(names)
        uses = [m.start() for m in re.finditer(rf"\b{name}\b", completion)][1:]
        if not uses:
            return None
        at = rng.choice(uses)
        return completion[:at] + name + "s" + completion[at + len(name):]
    if choice == 1:
        i = rng.randrange(len(lines))
        lines.insert(i, '  print("debug", ' + rng.choice(["1", "nil", "{}", "'x'"]) + ")")
        return "\n".join(lines)
    m = re.search(r"return ([^\n]+)", completion)
    if not m:
        return None
    wrapped = rng.choice(["{%s}", "tostring(%s)", "(%s) * 1.0", "%s, nil"]) % m.group(1)
    return completion[:m.start(1)] + wrapped + completion[m.end(1):]


def builtin_corpus(n: int, seed: int = 0) -> list[CorpusProgram]:
    """References, wrong solutions, then mutants until there are `n` distinct programs."""
    from lqbench.tasks import load_builtin

    suite = load_builtin()
    rng = random.Random(seed)
    out: list[CorpusProgram] = []
    seen: set[str] = set()

    def add(ident: str, source: str, program: str) -> None:
        if program not in seen and len(out) < n:
            seen.add(program)
            out.append(CorpusProgram(ident, source, program))

    for problem in suite.problems:
        task = problem.task
        add(f"{task.task_id}/reference", "reference", task.program(problem.reference))
        for k, wrong in enumerate(problem.wrong):
            add(f"{task.task_id}/wrong{k}", "wrong", task.program(wrong))
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        problem = rng.choice(suite.problems)
        completion = problem.reference
        for _ in range(1 + (rng.random() < 0.25)):  # sometimes two mistakes at once
            mutated = _mutate(completion, rng)
            if mutated is not None:
                completion = mutated
        if completion != problem.reference:
            add(f"{problem.task.task_id}/mutant{attempts}", "mutant", problem.task.program(completion))
    return out


def db_corpus(path: str, limit: int | None = None) -> list[CorpusProgram]:
    """Completions a real run stored: samples.completion joined to its task."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT s.suite, s.task_id, s.model_id, s.sample_idx, t.prompt, s.completion, t.tests "
            "FROM samples s JOIN tasks t ON t.suite = s.suite AND t.task_id = s.task_id "
            "AND t.suite_version = s.suite_version "
            "WHERE s.completion IS NOT NULL ORDER BY s.suite, s.task_id, s.model_id, s.sample_idx"
            + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    finally:
        con.close()
    out, seen = [], set()
    for suite, task_id, model_id, idx, prompt, completion, tests in rows:
        program = prompt + completion + "\n" + tests
        if program not in seen:
            seen.add(program)
            out.append(CorpusProgram(f"db/{suite}/{task_id}/{model_id}/{idx}", "db", program))
    return out


def model_written_corpus(path: str) -> list[CorpusProgram]:
    """Completions a model wrote for the built-in tasks, as bench/export_model_corpus.py stores
    them (one JSON object per line with at least task_id and completion), each joined to its
    task again: `prompt + completion + "\\n" + tests`. Rows of tasks the suite no longer has are
    skipped; identical programs count once."""
    import json
    from pathlib import Path

    from lqbench.tasks import load_builtin

    by_id = load_builtin().by_id()
    out, seen = [], set()
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        row = json.loads(line)
        task = by_id.get(row["task_id"])
        if task is None:
            continue
        program = task.program(row["completion"])
        if program not in seen:
            seen.add(program)
            ident = f"model/{row.get('quant', '?')}/t{row.get('temperature', '?')}/{row['task_id']}/{row.get('sample_idx', n)}"
            out.append(CorpusProgram(ident, "model-written", program))
    return out
