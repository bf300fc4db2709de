"""Task suites: the `TaskSpec` value, the built-in `lqbench-lua` suite, loading by name or path, and selection.

A task follows MultiPL-E's layout: the model sees `prompt` (a doc comment and a
`local function name(args)` line) and writes the body; the program that gets
scored is `prompt + completion + "\\n" + tests`, where `tests` is LuaUnit code
ending in `os.exit(lu.LuaUnit.run())`.

Built-in problems live in `lqbench/suites/<suite_dir>/*.toml`, one problem per file,
with the reference solution and known-wrong solutions beside the task (never
shown to the model). A problem file holds `task_id` (= the file's stem), `topic`,
`difficulty`, `prompt`, `tests`, `reference` and `wrong = [...]`.

`load_suite(name_or_path)` also reads a directory of such files, MultiPL-E
`.json` / `.jsonl` / `.parquet` files (`lqbench.suites.multiple`) and, only when
asked by name (`multipl-e:humaneval-lua`), the MultiPL-E hub parquet
(`lqbench.suites.hub`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lqbench.errors import LqbenchError

log = logging.getLogger(__name__)

# MultiPL-E's stop strings for Lua: a new top-level statement or a blank line ends the function.
LUA_STOP_TOKENS = ["\nlocal", "\nfunction", "\n--", "\n\n"]

BUILTIN_SUITES_DIR = Path(__file__).resolve().parent / "suites"
BUILTIN_SUITES = {"lqbench-lua": "lqbench_lua"}

# What a built-in problem may be tagged with; each topic is something Lua does its own way.
TOPICS = {
    "basics": "arithmetic, conditionals and loops",
    "tables": "1-based arrays, #, table.insert/remove, ipairs/pairs",
    "strings": "string.sub/byte/char/rep/upper/find with plain text",
    "string_patterns": "Lua patterns: gsub, gmatch, match, % classes, captures",
    "string_building": "building strings with table.concat",
    "string_format": "string.format directives",
    "integer_float": "integer vs float: //, %, math.type, math.tointeger, 3 == 3.0",
    "varargs": "... , select('#', ...), table.pack/unpack",
    "closures": "functions returning functions over captured upvalues",
    "metatables": "setmetatable, __index, __eq, __lt, __add, __call, __tostring, __len",
    "sorting": "table.sort with comparators",
    "nil_holes": "nil values inside tables and argument lists",
    "recursion": "recursive functions over numbers, strings and nested tables",
}
DIFFICULTIES = ("easy", "medium", "hard")

_PROBLEM_FIELDS = {"task_id", "topic", "difficulty", "prompt", "tests", "reference", "wrong", "stop_tokens"}


@dataclass(frozen=True)
class TaskSpec:
    suite: str
    task_id: str
    prompt: str
    tests: str
    stop_tokens: tuple[str, ...] = tuple(LUA_STOP_TOKENS)
    language: str = "lua"
    suite_version: str = ""
    topic: str = ""
    difficulty: str = ""
    # Source fields we do not interpret (e.g. MultiPL-E's `doctests`, `original`),
    # as canonical JSON so the spec stays hashable and round-trips through to_dict.
    meta_json: str = ""

    def program(self, completion: str) -> str:
        """The scored program, exactly as MultiPL-E builds it."""
        return self.prompt + completion + "\n" + self.tests

    @property
    def meta(self) -> dict:
        """The source's extra fields as a dict (empty when there were none)."""
        return json.loads(self.meta_json) if self.meta_json else {}

    def to_dict(self) -> dict:
        d = self.__dict__.copy()
        d["stop_tokens"] = list(self.stop_tokens)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        d = dict(d)
        d["stop_tokens"] = tuple(d.get("stop_tokens") or LUA_STOP_TOKENS)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def meta_to_json(extra: dict) -> str:
    """Canonical JSON for `TaskSpec.meta_json` ("" for no extras)."""
    return json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str) if extra else ""


@dataclass(frozen=True)
class Problem:
    """A built-in task plus what only the test suite may see."""

    task: TaskSpec
    reference: str  # a completion that passes
    wrong: tuple[str, ...] = ()  # plausible completions that must fail


@dataclass
class Suite:
    name: str
    version: str
    tasks: list[TaskSpec]
    problems: list[Problem] = field(default_factory=list)
    # Malformed entries that were skipped while loading, each "file:line: what is wrong".
    issues: list[str] = field(default_factory=list)
    source: str = ""  # "builtin", a file path, or "hub:<repo>@<revision>/<file>"

    def by_id(self) -> dict[str, TaskSpec]:
        return {t.task_id: t for t in self.tasks}

    def counts(self) -> Counter:
        """Task counts keyed by (topic, difficulty); untagged tasks count under ("", "")."""
        return Counter((t.topic, t.difficulty) for t in self.tasks)


def suite_version(tasks: list[TaskSpec]) -> str:
    """Content hash of everything that decides a verdict: ids, prompts, tests, stop strings."""
    h = hashlib.sha256()
    for t in sorted(tasks, key=lambda t: t.task_id):
        h.update(json.dumps([t.task_id, t.prompt, t.tests, list(t.stop_tokens)]).encode())
    return h.hexdigest()[:12]


def stamp_version(name: str, tasks: list[TaskSpec]) -> tuple[str, list[TaskSpec]]:
    """The suite's version, and its tasks carrying that suite name and version."""
    version = suite_version(tasks)
    return version, [TaskSpec(**{**t.__dict__, "suite": name, "suite_version": version}) for t in tasks]


def _load_problem_file(path: Path, suite: str) -> Problem:
    """One problem TOML file; any defect raises LqbenchError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LqbenchError(f"{path}: not a valid problem file: {exc}") from exc
    missing = [k for k in ("prompt", "tests", "reference") if k not in data]
    if missing:
        raise LqbenchError(f"{path}: problem file lacks {', '.join(missing)}")
    unknown = sorted(set(data) - _PROBLEM_FIELDS)
    if unknown:
        raise LqbenchError(f"{path}: unknown field {unknown[0]!r}")
    for key in ("task_id", "topic", "difficulty", "prompt", "tests", "reference"):
        if key in data and not isinstance(data[key], str):
            raise LqbenchError(f"{path}: {key} must be a string")
    wrong = data.get("wrong", [])
    if not isinstance(wrong, list) or not all(isinstance(w, str) for w in wrong):
        raise LqbenchError(f"{path}: wrong must be a list of strings")
    stop_tokens = data.get("stop_tokens", LUA_STOP_TOKENS)
    if not isinstance(stop_tokens, list) or not all(isinstance(s, str) and s for s in stop_tokens):
        raise LqbenchError(f"{path}: stop_tokens must be a list of non-empty strings")
    task_id = data.get("task_id", path.stem)
    if task_id != path.stem:
        raise LqbenchError(f"{path}: task_id {task_id!r} must equal the file name {path.stem!r}")
    topic, difficulty = data.get("topic", ""), data.get("difficulty", "")
    if topic and topic not in TOPICS:
        raise LqbenchError(f"{path}: topic {topic!r} is not one of {', '.join(TOPICS)}")
    if difficulty and difficulty not in DIFFICULTIES:
        raise LqbenchError(f"{path}: difficulty {difficulty!r} is not one of {', '.join(DIFFICULTIES)}")
    task = TaskSpec(
        suite=suite,
        task_id=task_id,
        prompt=data["prompt"],
        tests=data["tests"],
        stop_tokens=tuple(stop_tokens),
        topic=topic,
        difficulty=difficulty,
    )
    return Problem(task=task, reference=data["reference"], wrong=tuple(wrong))


def load_problem_dir(directory: Path, name: str | None = None, *, strict: bool = True, source: str = "") -> Suite:
    """A suite from a directory of problem TOML files (sorted by file name).

    strict: the first bad file raises LqbenchError; otherwise bad files are
    skipped and listed in `Suite.issues` (and logged).
    """
    name = name or directory.name
    problems, issues = [], []
    files = sorted(directory.glob("*.toml"))
    for path in files:
        try:
            problems.append(_load_problem_file(path, name))
        except LqbenchError as exc:
            if strict:
                raise
            issues.append(str(exc))
            log.info("skipped %s", exc)
    if not files:
        issues.append(f"{directory}: no *.toml problem files")
        if strict:
            raise LqbenchError(issues[-1])
    version, tasks = stamp_version(name, [p.task for p in problems])
    problems = [Problem(task=t, reference=p.reference, wrong=p.wrong) for t, p in zip(tasks, problems)]
    return Suite(name=name, version=version, tasks=tasks, problems=problems, issues=issues,
                 source=source or str(directory))


def load_builtin(name: str = "lqbench-lua") -> Suite:
    if name not in BUILTIN_SUITES:
        raise LqbenchError(f"unknown suite {name!r}; built-in suites: {', '.join(BUILTIN_SUITES)}")
    return load_problem_dir(BUILTIN_SUITES_DIR / BUILTIN_SUITES[name], name, strict=True, source="builtin")


def load_suite(name_or_path: str, *, strict: bool = True) -> Suite:
    """A suite by built-in name, `multipl-e:CONFIG[@REVISION]` (hub), or path.

    A path may be a directory of problem TOML files or a MultiPL-E `.json`,
    `.jsonl` or `.parquet` file. strict: refuse the suite at its first malformed
    entry; otherwise skip such entries and list them in `Suite.issues`.
    """
    if name_or_path in BUILTIN_SUITES:
        return load_builtin(name_or_path)
    if name_or_path.startswith("multipl-e:"):
        from lqbench.suites.hub import load_multipl_e_hub

        return load_multipl_e_hub(name_or_path.removeprefix("multipl-e:"), strict=strict)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return load_problem_dir(path, strict=strict)
    if path.is_file():
        from lqbench.suites.multiple import load_multipl_e_file

        return load_multipl_e_file(path, strict=strict)
    raise LqbenchError(
        f"unknown suite {name_or_path!r}: not a built-in suite ({', '.join(BUILTIN_SUITES)}), "
        "not multipl-e:humaneval-lua / multipl-e:mbpp-lua, and no such file or directory"
    )


def select_tasks(
    suite: Suite,
    *,
    limit: int | None = None,
    task_ids: list[str] | None = None,
    topics: list[str] | None = None,
    difficulties: list[str] | None = None,
) -> list[TaskSpec]:
    """The plan's subset of a suite, in the suite's order."""
    tasks = suite.tasks
    if task_ids:
        known = suite.by_id()
        unknown = [t for t in task_ids if t not in known]
        if unknown:
            raise LqbenchError(f"suite {suite.name} has no task {unknown[0]!r}")
        wanted = set(task_ids)
        tasks = [t for t in tasks if t.task_id in wanted]
    if topics:
        present = {t.topic for t in suite.tasks}
        unknown = [t for t in topics if t not in present]
        if unknown:
            raise LqbenchError(f"suite {suite.name} has no task with topic {unknown[0]!r}")
        tasks = [t for t in tasks if t.topic in topics]
    if difficulties:
        bad = [d for d in difficulties if d not in DIFFICULTIES]
        if bad:
            raise LqbenchError(f"difficulty {bad[0]!r} is not one of {', '.join(DIFFICULTIES)}")
        tasks = [t for t in tasks if t.difficulty in difficulties]
    if limit is not None:
        if limit < 0:
            raise LqbenchError(f"limit must be >= 0, got {limit}")
        tasks = tasks[:limit]
    return tasks
