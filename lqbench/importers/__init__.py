"""Other harnesses' generations as lqbench runs: the input formats `lqbench import` reads.

One module per format, each turning one input file into `Entry` values (a program to score and
where it came from) and `Issue`s (an entry that cannot be imported, as "file:line: why"):

- `lqbench.importers.multiple`: MultiPL-E completion files (`*.json[.gz]` with `completions`) and
  result files (`*.results.json[.gz]` with `results`, whose original verdicts are kept);
- `lqbench.importers.bigcode`: bigcode-evaluation-harness `generations*.json` (a list per task of
  full programs, in the order of the suite they were made from);
- `lqbench.importers.programs`: folders of full `.lua` programs named by a file-name pattern, and a
  CSV of verdicts to compare with.

`lqbench.importers.importer` finds the inputs under the given paths, resolves every entry's model
and task, rescores the programs in the scorer pool and records one run through `lqbench.store`.
Reading is the same for every format: `read_input` returns a file's bytes (for its sha256) and text.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lqbench.errors import LqbenchError
from lqbench.tasks import TaskSpec

# The words `import_files.format` and `import_samples.format` use.
MULTIPLE_COMPLETIONS = "multipl-e-completions"
MULTIPLE_RESULTS = "multipl-e-results"
BIGCODE_GENERATIONS = "bigcode-generations"
PROGRAM = "program"
VERDICTS_CSV = "verdicts-csv"
SUITE_FILE = "suite"  # a --suite file: the tasks the programs were scored against


@dataclass
class InputFile:
    """One file read by an import: where, its content hash and size, and what format it is."""

    path: str
    sha256: str
    bytes: int
    format: str


@dataclass
class Issue:
    """An input entry that was not imported, and why."""

    where: str  # "file:line" (or "file" for a whole file)
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Entry:
    """One program from an input file, before its model and task are resolved.

    Exactly one of `completion` (MultiPL-E layout: the program is task.prompt + completion + "\\n" +
    task.tests) and `program` (a whole program, as another harness ran it or wrote it to a file) is set.
    """

    file: InputFile
    locator: str  # stable place of the entry within its file (part of the idempotence key)
    where: str  # human-readable place: file:line, file:line#k
    task_id: str
    completion: str | None = None
    program: str | None = None
    task: TaskSpec | None = None  # the task as the input file itself states it (MultiPL-E files)
    task_where: str | None = None  # where the file names its task (one report per file, not per program)
    suite: str | None = None  # a suite named by the input (a folder pattern's {suite})
    model: str | None = None  # a model named by the input (a folder pattern's {model}); None: --model
    quant: str | None = None
    sample: str | None = None  # a folder pattern's {sample}: told apart, ordered by it
    temperature: float | None = None
    original_harness: str | None = None
    original_status: str | None = None
    original_passed: bool | None = None
    original_exit_code: int | None = None
    extra: dict = field(default_factory=dict)


def read_input(path: Path) -> tuple[bytes, str]:
    """A file's raw bytes (what its sha256 is of) and its text (gunzipped for `.gz`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LqbenchError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    data = raw
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise LqbenchError(f"{path}: not a readable gzip file: {exc}") from exc
    try:
        return raw, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LqbenchError(f"{path}: not UTF-8 text: {exc}") from exc


def input_file(path: Path, raw: bytes, format: str) -> InputFile:
    return InputFile(os.path.abspath(path), hashlib.sha256(raw).hexdigest(), len(raw), format)


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def json_document(path: Path, text: str) -> Any:
    """The file's JSON value; a syntax error is one clear line naming file:line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LqbenchError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc


def array_elements(text: str) -> Iterator[tuple[int, Any]]:
    """(line, element) for each element of a top-level JSON array, with the line it starts on.
    The text must already be known to parse (see json_document)."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    n = len(text)

    def skip(p: int) -> int:
        while p < n and text[p] in " \t\r\n,":
            p += 1
        return p

    pos = skip(pos)
    line, counted_to = 1, 0
    while pos < n and text[pos] != "]":
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        value, pos = decoder.raw_decode(text, pos)
        yield line, value
        pos = skip(pos)
