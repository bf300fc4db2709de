"""A corpus of model-written-style MultiPL-E Lua programs for bench_scorer.py.

Sources, all deterministic for a given seed:
- the built-in `lqbench-lua` suite: every reference solution and every known-wrong solution;
- systematic mutations of the reference completions, in the shapes model errors take:
  flipped comparisons and arithmetic, off-by-one constants and indices, and/or swaps, a deleted
  or duplicated line, a completion cut off mid-function (max tokens), a misspelled local,
  Python habits (len(xs), xs.append, !=, elif, str()), wrong returns, debug prints;
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
    source: str      # reference | wrong | mutant | db
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


def demo_model_corpus(cache: str, temperatures=(0.0,), max_tokens: int = 128, n_threads: int | None = None,
                      generate: bool = True) -> list[CorpusProgram]:
    """Completions of the demo model (Gemma 3 270M, Q4_K_M) for the built-in tasks, one per
    temperature (greedy first), cached as JSONL at `cache` so that they are generated once;
    with generate=False only what the cache already holds."""
    import json
    from pathlib import Path

    from lqbench.generation import LlamaGenerator, SamplingParams
    from lqbench.tasks import load_builtin

    suite = load_builtin()
    path = Path(cache)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = {(r["task_id"], r["temperature"]) for r in rows}
    todo = [(t, temp) for temp in temperatures for t in suite.tasks if (t.task_id, temp) not in done]
    if not generate:
        todo = []
    if todo:
        from lqbench.models import resolve_model

        generator = LlamaGenerator(resolve_model("demo:gemma-3-270m").path, n_threads=n_threads)
        try:
            with path.open("a") as sink:
                for task, temp in todo:
                    params = SamplingParams(temperature=temp, top_k=1 if temp == 0 else 40, top_p=0.95,
                                            max_tokens=max_tokens, seed=1)
                    completion = generator.generate(task.prompt, params, stop=task.stop_tokens)
                    row = {"task_id": task.task_id, "temperature": temp, "completion": completion.text}
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    rows.append(row)
        finally:
            generator.close()
    by_id = suite.by_id()
    return [CorpusProgram(f"demo/{r['task_id']}/t{r['temperature']}", "demo-model",
                          by_id[r["task_id"]].program(r["completion"]))
            for r in rows if r["task_id"] in by_id]
