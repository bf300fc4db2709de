"""Folders of whole `.lua` programs, one file per model x task (x sample), named by a file-name pattern.

Study repositories often keep what each model wrote as `results/<model>/<task>.lua` or
`<suite>/<model>_<task>.lua`. `--pattern` says how: a path with `{task}` and any of `{model}`,
`{quant}`, `{suite}`, `{sample}`, matched against the last as many path components as the pattern
has (`{suite}/{model}_{task}.lua` reads the file's folder and name). Where fields meet without a
separator between them being unique (`{model}_{task}` with underscores in both), the split that names
a task of the suite wins. A file is scored as it is when it runs its own tests (`LuaUnit.run`),
else with the task's tests appended, as MultiPL-E does.

A CSV of verdicts (`--verdicts`) gives another harness's outcome per program to compare with ours:
a header row with a `file` (or `path`) column, or `task` (`task_id`/`name`) with optional `model`,
`quant`, `sample`; and a verdict column, `passed` (true/false, 1/0, pass/fail) and/or `status`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.importers import PROGRAM, Entry, InputFile

FIELDS = ("model", "quant", "task", "suite", "sample")
_FIELD_RE = re.compile(r"\{([A-Za-z_]+)\}")
PASS_WORDS = {"true", "1", "yes", "y", "pass", "passed", "ok", "success", "succeeded", "correct"}
FAIL_WORDS = {"false", "0", "no", "n", "fail", "failed", "failure", "error", "incorrect", "wrong"}
RUNS_OWN_TESTS = "LuaUnit.run"


class Pattern:
    """A compiled `--pattern`: which path components it reads and how they split into fields."""

    def __init__(self, text: str, task_ids: list[str], suite_names: list[str]):
        self.text = text
        names = _FIELD_RE.findall(text)
        unknown = [n for n in names if n not in FIELDS]
        if unknown:
            raise LqbenchError(f"--pattern {text!r}: unknown field {{{unknown[0]}}}; fields are "
                               + ", ".join(f"{{{f}}}" for f in FIELDS))
        if "task" not in names:
            raise LqbenchError(f"--pattern {text!r} has no {{task}}: the file name must say which task a program is for")
        doubled = [n for n in names if names.count(n) > 1]
        if doubled:
            raise LqbenchError(f"--pattern {text!r} names {{{doubled[0]}}} twice")
        if text.startswith("/") or "//" in text:
            raise LqbenchError(f"--pattern {text!r}: a relative path pattern, e.g. {{suite}}/{{model}}_{{task}}.lua")
        self.fields = names
        self.suite_names = set(suite_names)
        self.depth = text.count("/") + 1
        known = sorted(set(task_ids), key=len, reverse=True)
        self.strict = self._compile({"task": "|".join(map(re.escape, known)) or r"(?!)",
                                     **({"suite": "|".join(map(re.escape, suite_names))} if suite_names else {})})
        self.loose = self._compile({})

    def _compile(self, choices: dict[str, str]) -> re.Pattern:
        out, pos = [], 0
        for m in _FIELD_RE.finditer(self.text):
            out.append(re.escape(self.text[pos:m.start()]))
            name = m.group(1)
            body = choices.get(name) or (r"\d+" if name == "sample" else r"[^/]+?")
            out.append(f"(?P<{name}>{body})")
            pos = m.end()
        out.append(re.escape(self.text[pos:]))
        return re.compile("".join(out) + r"\Z")

    def tail(self, path: Path) -> str:
        return "/".join(path.parts[-self.depth:])

    def match(self, path: Path) -> tuple[dict | None, str | None]:
        """The fields a file's name yields, or why it yields none."""
        tail = self.tail(path)
        m = self.strict.match(tail)
        if m:
            return m.groupdict(), None
        loose = self.loose.match(tail)
        if loose:
            got = loose.groupdict()
            if got.get("suite") is not None and got["suite"] not in self.suite_names:
                return None, f"suite {got['suite']!r} (from the file name) is not one of the given --suite"
            where = f" of suite {got['suite']}" if got.get("suite") else ""
            return None, f"task {got['task']!r} (from the file name) is not a task{where} in the given suite(s)"
        return None, f"{tail!r} does not match --pattern {self.text!r}"


def read_program(path: Path, file: InputFile, text: str, fields: dict) -> Entry:
    """One program file, with the fields its name yielded."""
    locator = "/".join(f"{k}={fields[k]}" for k in FIELDS if fields.get(k) is not None)
    return Entry(file=file, locator=locator, where=str(path), task_id=fields["task"], program=text,
                 suite=fields.get("suite"), model=fields.get("model"), quant=fields.get("quant"),
                 sample=fields.get("sample"))


def runs_own_tests(program: str) -> bool:
    return RUNS_OWN_TESTS in program


@dataclass
class VerdictRow:
    """One row of a verdicts CSV: which program(s) it is about, and the other harness's outcome."""

    where: str
    file: str | None
    task: str | None
    model: str | None
    quant: str | None
    sample: str | None
    status: str | None
    passed: bool | None


_COLUMNS = {"file": ("file", "path", "program", "filename"), "task": ("task", "task_id", "name", "problem"),
            "model": ("model",), "quant": ("quant", "quantization"), "sample": ("sample", "sample_idx"),
            "status": ("status", "verdict", "result", "outcome"), "passed": ("passed", "pass", "correct", "success")}


def _word_passed(value: str) -> bool | None:
    low = value.strip().lower()
    if low in PASS_WORDS:
        return True
    if low in FAIL_WORDS:
        return False
    return None


def read_verdicts(path: Path, text: str) -> list[VerdictRow]:
    """The rows of a verdicts CSV; a file that cannot be one is an LqbenchError naming file:line."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise LqbenchError(f"{path}: empty verdicts CSV (want a header row, e.g. file,passed)") from None
    lowered = [h.strip().lower() for h in header]
    column = {}
    for key, names in _COLUMNS.items():
        hit = next((i for i, h in enumerate(lowered) if h in names), None)
        if hit is not None:
            column[key] = hit
    if "file" not in column and "task" not in column:
        raise LqbenchError(f"{path}:1: the header needs a file (or path) column or a task column; got {header}")
    if "status" not in column and "passed" not in column:
        raise LqbenchError(f"{path}:1: the header needs a passed or status column; got {header}")
    rows = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise LqbenchError(f"{path}:{line}: {len(values)} fields, the header has {len(header)}")

        def get(key: str) -> str | None:
            i = column.get(key)
            return values[i].strip() or None if i is not None else None

        status, passed_text = get("status"), get("passed")
        if passed_text is not None:
            passed = _word_passed(passed_text)
            if passed is None:
                raise LqbenchError(f"{path}:{line}: passed is {passed_text!r}; want true/false, 1/0 or pass/fail")
        elif status is not None:
            passed = _word_passed(status) is True
        else:
            raise LqbenchError(f"{path}:{line}: no verdict (passed and status are empty)")
        rows.append(VerdictRow(where=f"{path}:{line}", file=get("file"), task=get("task"), model=get("model"),
                               quant=get("quant"), sample=get("sample"), status=status, passed=passed))
    return rows


__all__ = ["Pattern", "read_program", "runs_own_tests", "VerdictRow", "read_verdicts", "PROGRAM"]
