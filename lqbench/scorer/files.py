"""What `lqbench score` reads and writes: Lua files, directories of them, and generations from other harnesses.

Inputs, in the order given:
- a `.lua` file: one program, scored as it is;
- a directory: every `*.lua` below it, recursively, in sorted path order;
- a `.jsonl` file (or `.json` holding one object or a list): one object per line, each either a
  `program`, or MultiPL-E fields `prompt` + `completion` + `tests` (the program is
  `prompt + completion + "\\n" + tests`), or `prompt` + `tests` + a `completions` list (MultiPL-E's
  result files: one program per completion).

Each program keeps where it came from (`path`, and `line` for JSON lines) and an `id` from the
first of the fields id / name / task_id / problem that exists (with `#k` for the k-th of several
completions), so results can be joined back. A line that is not a usable object is an `Issue`
(file:line and why): skipped and reported, or fatal with `strict=True`.

`score_paths` scores them all through a `ScorerPool` and writes one JSON object per program
(path, [line], [id], status, passed, error, ms) to a JSONL file, replaced only when complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from lqbench.errors import LqbenchError

ID_FIELDS = ("id", "name", "task_id", "problem")
JSON_SUFFIXES = (".jsonl", ".json")


@dataclass
class ProgramSource:
    """One program to score and where it came from. A `.lua` file's bytes are read when
    first needed (`load`), so scoring starts while later files are still unread."""

    path: str
    program: bytes | None  # None: not read yet (see load)
    line: int | None = None
    id: str | None = None

    def load(self) -> bytes:
        if self.program is None:
            self.program = _read_bytes(self.path)
        return self.program

    def record_fields(self) -> dict:
        out = {"path": self.path}
        if self.line is not None:
            out["line"] = self.line
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass
class Issue:
    """An input line that could not be turned into a program."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _object_id(obj: dict) -> str | None:
    for key in ID_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, (dict, list)):
            return str(value)
    return None


def _programs_from_object(obj, path: str, line: int) -> tuple[list[ProgramSource], str | None]:
    """Programs an object stands for, or the reason it stands for none."""
    if not isinstance(obj, dict):
        return [], f"expected a JSON object, got {type(obj).__name__}"
    ident = _object_id(obj)
    if "program" in obj:
        program = obj["program"]
        if not isinstance(program, str):
            return [], "field 'program' is not a string"
        return [ProgramSource(path, program.encode("utf-8", "surrogatepass"), line, ident)], None
    prompt, tests = obj.get("prompt"), obj.get("tests")
    missing = [k for k, v in (("prompt", prompt), ("tests", tests)) if v is None]
    if "completion" not in obj and "completions" not in obj:
        missing.append("completion")
    if missing:
        return [], "needs 'program', or 'prompt' + 'completion' + 'tests'; missing " + ", ".join(missing)
    if not isinstance(prompt, str) or not isinstance(tests, str):
        return [], "'prompt' and 'tests' must be strings"
    if "completion" in obj:
        completions, single = [obj["completion"]], True
    else:
        completions, single = obj["completions"], False
        if not isinstance(completions, list):
            return [], "'completions' must be a list of strings"
    out = []
    for k, completion in enumerate(completions):
        if not isinstance(completion, str):
            return [], "completions must be strings"
        program = prompt + completion + "\n" + tests
        sub_id = ident if single else f"{ident if ident is not None else line}#{k}"
        out.append(ProgramSource(path, program.encode("utf-8", "surrogatepass"), line, sub_id))
    return out, None


def _read_json_file(path: Path, issues: list[Issue], strict: bool) -> Iterator[ProgramSource]:
    name = str(path)

    def take(obj, line_no: int) -> Iterator[ProgramSource]:
        programs, reason = _programs_from_object(obj, name, line_no)
        if reason is not None:
            issue = Issue(name, line_no, reason)
            if strict:
                raise LqbenchError(str(issue))
            issues.append(issue)
        yield from programs

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LqbenchError(f"{path}: cannot read: {exc}") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LqbenchError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
        for i, obj in enumerate(data if isinstance(data, list) else [data]):
            yield from take(obj, i + 1 if isinstance(data, list) else 1)
        return
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            issue = Issue(name, line_no, f"not valid JSON: {exc.msg} (column {exc.colno})")
            if strict:
                raise LqbenchError(str(issue)) from exc
            issues.append(issue)
            continue
        yield from take(obj, line_no)


def collect_programs(paths: list[Path], strict: bool = False) -> tuple[list[ProgramSource], list[Issue]]:
    """All programs named by `paths`, in order, and the input lines that were skipped.
    `.lua` files are listed here and read by ProgramSource.load; JSON files are parsed here."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise LqbenchError(f"no such file or directory: {missing[0]}")
    programs: list[ProgramSource] = []
    issues: list[Issue] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for lua in _lua_files_below(str(path)):
                programs.append(ProgramSource(lua, None))
        elif path.name.endswith(JSON_SUFFIXES):
            programs.extend(_read_json_file(path, issues, strict))
        else:
            programs.append(ProgramSource(str(path), None))
    return programs, issues


def _lua_files_below(directory: str) -> list[str]:
    """Every regular `*.lua` file below `directory`, in sorted path order (as Path objects sort);
    like os.walk, symlinked files count and symlinked directories are not entered."""
    import os

    found = []
    stack = [directory]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(".lua") and entry.is_file():  # no stat unless a symlink
                    found.append(entry.path)
    return sorted(found, key=lambda p: p.split(os.sep))


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise LqbenchError(f"{path}: cannot read: {exc.strerror or exc}") from exc


@dataclass
class ScoreRun:
    """What a `score_paths` call did."""

    total: int
    counts: dict[str, int]
    issues: list[Issue]
    seconds: float
    out: Path


def score_paths(paths: list[Path], out: Path, limits=None, jobs: int | None = None, strict: bool = False,
                on_start: Callable[[int], None] | None = None,
                on_verdict: Callable[[ProgramSource, object], None] | None = None,
                pool=None) -> ScoreRun:
    """Score every program named by `paths` and write the results to `out` (JSONL).

    `pool`: an already started ScorerPool to use (and close), e.g. one started before the
    caller's own imports so that its workers boot meanwhile; else one is started here.
    """
    import os
    import time

    from lqbench.scorer import ScoreLimits, ScorerPool
    from lqbench.verdicts import VERDICTS

    started = time.perf_counter()
    out = Path(out)
    if pool is None:
        pool = ScorerPool(jobs=jobs, limits=limits or ScoreLimits())
    counts = {status: 0 for status in VERDICTS}
    partial = out.with_name(out.name + ".tmp")
    try:  # the workers start up while the inputs are read; any error below closes them
        programs, issues = collect_programs(paths, strict=strict)  # a missing path: one clear error
        if out.parent and not out.parent.exists():
            raise LqbenchError(f"output directory does not exist: {out.parent}")
        if on_start is not None:
            on_start(len(programs))
        with open(partial, "w", encoding="utf-8") as sink, pool:
            for source, verdict in zip(programs, pool.score_many(p.load() for p in programs)):
                counts[verdict.status] += 1
                sink.write(json.dumps({**source.record_fields(), **verdict.to_dict()}) + "\n")
                if on_verdict is not None:
                    on_verdict(source, verdict)
        os.replace(partial, out)
    finally:
        pool.close()
        if partial.exists():
            partial.unlink()
    return ScoreRun(len(programs), counts, issues, time.perf_counter() - started, out)
