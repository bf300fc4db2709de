"""Task suites: the `TaskSpec` value, the built-in `lqbench-lua` suite, and selection.

A task follows MultiPL-E's layout: the model sees `prompt` (a doc comment and a
`local function name(args)` line) and writes the body; the program that gets
scored is `prompt + completion + "\\n" + tests`, where `tests` is LuaUnit code
ending in `os.exit(lu.LuaUnit.run())`.

Built-in problems live in `lqbench/suites/<suite_dir>/*.toml`, one problem per file,
with the reference solution and known-wrong solutions beside the task (never
shown to the model).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lqbench.errors import LqbenchError

# MultiPL-E's stop strings for Lua: a new top-level statement or a blank line ends the function.
LUA_STOP_TOKENS = ["\nlocal", "\nfunction", "\n--", "\n\n"]

BUILTIN_SUITES_DIR = Path(__file__).resolve().parent / "suites"
BUILTIN_SUITES = {"lqbench-lua": "lqbench_lua"}


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

    def program(self, completion: str) -> str:
        """The scored program, exactly as MultiPL-E builds it."""
        return self.prompt + completion + "\n" + self.tests

    def to_dict(self) -> dict:
        d = self.__dict__.copy()
        d["stop_tokens"] = list(self.stop_tokens)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        d = dict(d)
        d["stop_tokens"] = tuple(d.get("stop_tokens") or LUA_STOP_TOKENS)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


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

    def by_id(self) -> dict[str, TaskSpec]:
        return {t.task_id: t for t in self.tasks}


def suite_version(tasks: list[TaskSpec]) -> str:
    """Content hash of everything that decides a verdict: ids, prompts, tests, stop strings."""
    h = hashlib.sha256()
    for t in sorted(tasks, key=lambda t: t.task_id):
        h.update(json.dumps([t.task_id, t.prompt, t.tests, list(t.stop_tokens)]).encode())
    return h.hexdigest()[:12]


def _load_problem_file(path: Path, suite: str) -> Problem:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LqbenchError(f"{path}: not a valid problem file: {exc}") from exc
    missing = [k for k in ("prompt", "tests", "reference") if k not in data]
    if missing:
        raise LqbenchError(f"{path}: problem file lacks {', '.join(missing)}")
    task = TaskSpec(
        suite=suite,
        task_id=data.get("task_id", path.stem),
        prompt=data["prompt"],
        tests=data["tests"],
        stop_tokens=tuple(data.get("stop_tokens", LUA_STOP_TOKENS)),
        topic=data.get("topic", ""),
        difficulty=data.get("difficulty", ""),
    )
    return Problem(task=task, reference=data["reference"], wrong=tuple(data.get("wrong", ())))


def load_builtin(name: str = "lqbench-lua") -> Suite:
    if name not in BUILTIN_SUITES:
        raise LqbenchError(f"unknown suite {name!r}; built-in suites: {', '.join(BUILTIN_SUITES)}")
    directory = BUILTIN_SUITES_DIR / BUILTIN_SUITES[name]
    problems = [_load_problem_file(p, name) for p in sorted(directory.glob("*.toml"))]
    tasks = [p.task for p in problems]
    version = suite_version(tasks)
    tasks = [TaskSpec(**{**t.__dict__, "suite_version": version}) for t in tasks]
    problems = [Problem(task=t, reference=p.reference, wrong=p.wrong) for t, p in zip(tasks, problems)]
    return Suite(name=name, version=version, tasks=tasks, problems=problems)


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name (the only source so far)."""
    return load_builtin(name_or_path)


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
        tasks = [t for t in tasks if t.topic in topics]
    if difficulties:
        tasks = [t for t in tasks if t.difficulty in difficulties]
    if limit is not None:
        tasks = tasks[:limit]
    return tasks
