"""`lqbench import`: find other harnesses' generations under the given paths, rescore them, record one run.

What an import records, all in one transaction (nothing at all if anything is wrong with the input):
- a `runs` row with status `imported`, plan_name `import: SOURCE`, and the options in config_json;
- a `models` row per model x quant that wrote the programs; there is no GGUF, so its sha256 is
  sha256("lqbench-import" NUL name NUL quant NUL source) (`imported_model_row`): the same name, quant
  and source always give the same model, another source another one;
- `tasks` rows for tasks the file does not have yet (from `--suite`, or from the MultiPL-E files);
- one `samples` row per program, scored by our sandbox: sample_idx counts the programs of each
  model x task in input order (so pass@k works), node_id `imported`, NULL seed, tokens and timings
  (score_ms is our own scoring time);
- `imports`, `import_files` (every input file's path, sha256, format) and `import_samples` (each
  program's place in its file and, where the input had one, the other harness's verdict).

Idempotence: each program's key is sha256(model_id, its file's sha256, its place in the file). Keys
already recorded are skipped before scoring, so importing the same files again (from anywhere, in any
order, together with new ones) adds only what is new, and nothing at all when nothing is.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from lqbench.errors import LqbenchError
from lqbench.importers import (BIGCODE_GENERATIONS, MULTIPLE_COMPLETIONS, MULTIPLE_RESULTS, PROGRAM, SUITE_FILE,
                               VERDICTS_CSV, Entry, InputFile, Issue, input_file, json_document, read_input)
from lqbench.tasks import Suite, TaskSpec, stamp_version

IMPORTED_NODE = "imported"
DEFAULT_QUANT = "unknown"
JSON_SUFFIXES = (".json", ".json.gz")
# MultiPL-E problem names start with their benchmark; tasks taken from MultiPL-E files (no --suite)
# are recorded under the suite name MultiPL-E's dataset uses for them.
MULTIPLE_SUITE_PREFIXES = {"HumanEval_": "humaneval-lua", "mbpp_": "mbpp-lua"}
FILE_SUITE = "multipl-e-files"


@dataclass
class ImportOptions:
    model: str | None = None
    quant: str | None = None
    source: str = ""
    suites: list[str] = field(default_factory=list)  # anything lqbench.tasks.load_suite takes
    pattern: str | None = None
    verdicts: Path | None = None
    timeout_s: float = 5.0
    memory_mb: int = 256
    lua: str = "5.4"
    fresh_state: bool = False
    jobs: int | None = None
    strict: bool = False


@dataclass
class ImportSummary:
    run_id: str | None  # None: nothing new was recorded
    n_programs: int  # recorded now
    n_already: int  # found already imported, skipped
    issues: list[Issue]
    ignored: list[str]  # files under the folders that are no import format
    duplicates: list[tuple[str, str]]  # (file, earlier input file with the same bytes): read once
    notes: list[str]  # input files imported before under another model identity
    counts: Counter  # our verdicts of the recorded programs
    compared: int  # recorded programs that came with another harness's verdict
    agreed: int  # ... of which we agree on pass/fail
    models: list[tuple[str, str]]  # (name, quant) recorded
    files: list[InputFile]
    seconds: float


def imported_model_row(name: str, quant: str, source: str) -> dict:
    """The models row of an imported model: no file, a sha256 derived from what identifies it."""
    sha = hashlib.sha256("\0".join(["lqbench-import", name, quant, source]).encode()).hexdigest()
    return {"model_id": sha[:16], "name": name, "quant": quant, "path": f"import:{source}", "sha256": sha,
            "file_bytes": None, "n_params": None, "bits_per_weight": None, "base_sha256": None,
            "requantized": None, "architecture": None}


def origin_key(model_id: str, file_sha256: str, locator: str) -> str:
    return hashlib.sha256(f"{model_id}\0{file_sha256}\0{locator}".encode()).hexdigest()


def new_import_id() -> str:
    return datetime.now(timezone.utc).strftime("i%Y%m%d-%H%M%S-") + secrets.token_hex(2)


# ----------------------------------------------------------------- finding and reading inputs
@dataclass
class _Found:
    path: Path
    explicit: bool  # named on the command line (an unreadable one is an error, not ignored)


def _walk(paths: list[Path]) -> list[_Found]:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise LqbenchError(f"no such file or directory: {missing[0]}")
    found: list[_Found] = []
    for path in paths:
        if path.is_dir():
            below = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                below.extend(Path(root) / f for f in files)
            found.extend(_Found(p, False) for p in sorted(below, key=lambda p: p.parts))
        else:
            found.append(_Found(path, True))
    seen, out = set(), []
    for f in found:  # a file named twice (or inside two given folders) is read once
        key = os.path.abspath(f.path)  # no realpath: a syscall per component, 1 s for 4,000 files
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


class _Reader:
    """Reads every input file into entries and issues, each file once, with its InputFile record."""

    def __init__(self, options: ImportOptions, suites: list[Suite]):
        self.options = options
        self.suites = suites
        self.entries: list[Entry] = []
        self.issues: list[Issue] = []
        self.ignored: list[str] = []
        self.files: list[InputFile] = []
        self.duplicates: list[tuple[str, str]] = []  # (file, the earlier file with the same bytes)
        self.seen: dict[str, str] = {}  # sha256 -> first path
        self.pattern = None

    def _first_time(self, file: InputFile) -> bool:
        """False for a file whose bytes an earlier input already had: its programs are the same ones."""
        first = self.seen.setdefault(file.sha256, file.path)
        if first != file.path:
            self.duplicates.append((file.path, first))
            return False
        return True

    def read(self, found: list[_Found]) -> None:
        from lqbench.importers import multiple

        lua = [f for f in found if f.path.name.endswith(".lua")]
        if lua:
            if not self.options.pattern:
                raise LqbenchError(f"{lua[0].path}: .lua programs need --pattern to say which model and task each is "
                                   "(e.g. --pattern '{model}/{task}.lua')")
            if not self.suites:
                raise LqbenchError(f"{lua[0].path}: .lua programs need --suite: the tasks whose tests they are scored with")
            from lqbench.importers.programs import Pattern

            self.pattern = Pattern(self.options.pattern, [t.task_id for s in self.suites for t in s.tasks],
                                   [s.name for s in self.suites])
        parsed: dict[Path, tuple[bytes, str, object]] = {}
        for f in found:
            if f.path.name.endswith(JSON_SUFFIXES):
                raw, text = read_input(f.path)
                parsed[os.path.abspath(f.path)] = (raw, text, json_document(f.path, text))
        # A completion file whose results file is also given is read through the results file.
        consumed = set()
        for f in found:
            if multiple.is_results_file(f.path):
                for partner in multiple.completion_file_names(f.path):
                    if os.path.abspath(partner) in parsed:
                        consumed.add(os.path.abspath(partner))
        for f in found:
            name = f.path.name
            if name.endswith(".lua"):
                self._program(f.path)
            elif name.endswith(JSON_SUFFIXES):
                key = os.path.abspath(f.path)
                raw, text, doc = parsed[key]
                self._json(f, raw, text, doc, parsed, key in consumed)
            elif f.explicit:
                raise LqbenchError(f"{f.path}: not an import format (MultiPL-E .json/.json.gz, bigcode "
                                   "generations .json, or .lua programs with --pattern)")
            else:
                self.ignored.append(str(f.path))

    def _json(self, f: _Found, raw: bytes, text: str, doc, parsed: dict, consumed: bool) -> None:
        from lqbench.importers import bigcode, multiple

        kind = multiple.kind_of(doc)
        if kind == MULTIPLE_RESULTS:
            partner = None
            for candidate in multiple.completion_file_names(f.path):
                if os.path.abspath(candidate) in parsed:
                    partner = parsed[os.path.abspath(candidate)][2]
                elif candidate.exists() and any(not isinstance(r, dict) or "program" not in r for r in doc["results"]):
                    # not given, but its completions are the programs: read it, and record it as an input
                    partner_raw, partner_text = read_input(candidate)
                    partner = json_document(candidate, partner_text)
                    if self._first_time(partner_file := input_file(candidate, partner_raw, MULTIPLE_COMPLETIONS)):
                        self.files.append(partner_file)
                if partner is not None:
                    break
            file = input_file(f.path, raw, MULTIPLE_RESULTS)
            entries, issues = multiple.read_results(f.path, file, text, doc, partner)
        elif kind == MULTIPLE_COMPLETIONS:
            file = input_file(f.path, raw, MULTIPLE_COMPLETIONS)
            if consumed:  # its programs come in through its results file
                self.files.append(file)
                return
            entries, issues = multiple.read_completions(f.path, file, text, doc)
        elif bigcode.is_generations(doc):
            if len(self.suites) != 1:
                raise LqbenchError(f"{f.path}: bigcode generations are a list per task: give the suite they were "
                                   f"made from as exactly one --suite (got {len(self.suites)})")
            file = input_file(f.path, raw, BIGCODE_GENERATIONS)
            entries, issues = bigcode.read_generations(f.path, file, text, self.suites[0])
        elif f.explicit:
            raise LqbenchError(f"{f.path}: not a MultiPL-E completion or results file (an object with "
                               "'completions' or 'results') nor bigcode generations (a list of lists)")
        else:
            self.ignored.append(str(f.path))
            return
        if not self._first_time(file):
            return
        self.files.append(file)
        self.entries.extend(entries)
        self.issues.extend(issues)

    def _program(self, path: Path) -> None:
        from lqbench.importers.programs import read_program

        raw, text = read_input(path)
        file = input_file(path, raw, PROGRAM)  # equal bytes under two names are two programs: no _first_time
        self.files.append(file)
        fields, why = self.pattern.match(path)
        if fields is None:
            self.issues.append(Issue(str(path), why))
            return
        self.entries.append(read_program(path, file, text, fields))


# ----------------------------------------------------------------- resolving models and tasks
@dataclass
class _Program:
    """An entry with its model, task and the exact program to score."""

    entry: Entry
    model: dict
    task: TaskSpec
    completion: str
    scored_program: str | None  # None: task.program(completion)
    key: str
    sample_idx: int = -1

    @property
    def text(self) -> str:
        return self.scored_program if self.scored_program is not None else self.task.program(self.completion)


def _split(task: TaskSpec, entry: Entry) -> tuple[str, str | None]:
    """(completion, scored_program or None when it is exactly task.program(completion))."""
    from lqbench.importers.programs import runs_own_tests

    if entry.completion is not None:
        return entry.completion, None
    program = entry.program
    body = program if runs_own_tests(program) else program + "\n" + task.tests
    if body.startswith(task.prompt) and body.endswith("\n" + task.tests):
        completion = body[len(task.prompt):len(body) - len(task.tests) - 1]
        if task.program(completion) == body:
            return completion, None
    completion = program[len(task.prompt):] if program.startswith(task.prompt) else program
    return completion, body


class _Resolver:
    def __init__(self, options: ImportOptions, suites: list[Suite]):
        self.options = options
        self.suites = {s.name: s for s in suites}
        self.by_id: dict[str, list[TaskSpec]] = defaultdict(list)
        for s in suites:
            for t in s.tasks:
                self.by_id[t.task_id].append(t)
        self.models: dict[tuple[str, str], dict] = {}
        self.file_tasks: dict[str, dict[str, TaskSpec]] = defaultdict(dict)  # derived suite -> id -> task
        self.issues: list[Issue] = []
        self.stated: dict[tuple, TaskSpec | None] = {}  # (file, task id): a file's task is resolved once

    def model(self, entry: Entry) -> dict:
        name = entry.model or self.options.model
        if not name:
            raise LqbenchError(f"{entry.where}: no model: give --model NAME (or a {{model}} field in --pattern)")
        quant = (entry.quant or self.options.quant or DEFAULT_QUANT).lower()
        key = (name, quant)
        if key not in self.models:
            self.models[key] = imported_model_row(name, quant, self.options.source)
        return self.models[key]

    def task(self, entry: Entry) -> TaskSpec | None:
        """The task an entry is for (suite-stamped), or None after recording an Issue."""
        if entry.task is not None and entry.task.suite_version:
            return entry.task  # bigcode: taken from the suite by position
        if entry.task is not None:  # stated by a MultiPL-E file: resolved (and reported) once per file
            key = (entry.file.path, entry.task_id)
            if key not in self.stated:
                self.stated[key] = self._stated(entry)
            return self.stated[key]
        return self._lookup(entry.task_id, entry.suite, entry.where)

    def _stated(self, entry: Entry) -> TaskSpec | None:
        stated, where = entry.task, entry.task_where or entry.where
        if self.suites:
            found = self._lookup(entry.task_id, entry.suite, where)
            if found is None:
                return None
            if (found.prompt, found.tests) != (stated.prompt, stated.tests):
                which = "prompt" if found.prompt != stated.prompt else "tests"
                self.issues.append(Issue(where, f"task {stated.task_id}'s {which} in this file differ from "
                                                f"suite {found.suite}'s; leave out --suite to import it "
                                                "with the file's own task"))
                return None
            return found
        suite = next((s for p, s in MULTIPLE_SUITE_PREFIXES.items() if stated.task_id.startswith(p)), FILE_SUITE)
        first = self.file_tasks[suite].setdefault(stated.task_id, stated)
        if (first.prompt, first.tests, first.stop_tokens) != (stated.prompt, stated.tests, stated.stop_tokens):
            self.issues.append(Issue(where, f"task {stated.task_id} differs from the same task in another "
                                            "input file; give --suite to say which is meant"))
            return None
        return stated  # stamped with its suite later (stamp_file_tasks)

    def _lookup(self, task_id: str, suite_name: str | None, where: str) -> TaskSpec | None:
        if suite_name is not None:
            suite = self.suites.get(suite_name)
            if suite is None:
                self.issues.append(Issue(where, f"suite {suite_name!r} (from the file name) is not one of the given "
                                                f"--suite: {', '.join(self.suites)}"))
                return None
            task = suite.by_id().get(task_id)
            if task is None:
                self.issues.append(Issue(where, f"task {task_id!r} is not in suite {suite_name}"))
            return task
        hits = self.by_id.get(task_id, [])
        if len(hits) == 1:
            return hits[0]
        if not hits:
            self.issues.append(Issue(where, f"names task {task_id!r}, which suite(s) {', '.join(self.suites)} "
                                            "do not have"))
        else:
            self.issues.append(Issue(where, f"task {task_id!r} is in several suites ({', '.join(t.suite for t in hits)}); "
                                            "give a {suite} field in --pattern"))
        return None

    def stamp_file_tasks(self) -> dict[tuple[str, str], TaskSpec]:
        """Tasks taken from MultiPL-E files, with their suite name and a version over those tasks."""
        out = {}
        for suite, tasks in self.file_tasks.items():
            _, stamped = stamp_version(suite, list(tasks.values()))
            for t in stamped:
                out[(t.task_id, _content(t))] = t
        return out


def _content(task: TaskSpec) -> str:
    return hashlib.sha256(json.dumps([task.prompt, task.tests, list(task.stop_tokens)]).encode()).hexdigest()


# ----------------------------------------------------------------- the verdicts CSV
def _apply_verdicts(path: Path, programs: list[_Program], issues: list[Issue]) -> InputFile:
    from lqbench.importers.programs import read_verdicts

    raw, text = read_input(path)
    rows = read_verdicts(path, text)
    by_task, by_tail = defaultdict(list), defaultdict(list)
    for p in programs:
        by_task[p.task.task_id].append(p)
        if p.entry.file.format == PROGRAM:  # a row's file may name any tail of the path: index each
            parts = Path(p.entry.file.path).parts
            for depth in range(1, len(parts) + 1):
                by_tail[parts[-depth:]].append(p)
    taken: dict[int, str] = {}
    for row in rows:
        if row.file is not None:
            hits = by_tail.get(Path(row.file).parts, [])
        else:
            hits = [p for p in by_task.get(row.task, [])
                    if (row.model is None or p.model["name"] == row.model)
                    and (row.quant is None or p.model["quant"] == row.quant.lower())
                    and (row.sample is None or row.sample in (p.entry.sample, str(p.sample_idx)))]
        if not hits:
            issues.append(Issue(row.where, "no program of this import matches this verdict row"))
            continue
        if len(hits) > 1:
            issues.append(Issue(row.where, f"{len(hits)} imported programs match this verdict row; add model, quant "
                                           "or sample columns (or a file column)"))
            continue
        target = hits[0]
        if id(target) in taken:
            issues.append(Issue(row.where, f"a second verdict for {target.entry.where} (first at {taken[id(target)]})"))
            continue
        taken[id(target)] = row.where
        target.entry.original_harness = VERDICTS_CSV
        target.entry.original_status = row.status
        target.entry.original_passed = row.passed
    return input_file(path, raw, VERDICTS_CSV)


# ----------------------------------------------------------------- the command's work
def import_paths(paths: list[Path], db: Path, options: ImportOptions,
                 on_start: Callable[[int], None] | None = None,
                 on_verdict: Callable[[object], None] | None = None) -> ImportSummary:
    """Import, rescore and record the generations under `paths` into the results file `db`."""
    from lqbench.scorer import ScoreLimits, ScorerPool
    from lqbench.store import ResultStore
    from lqbench.tasks import load_suite

    started = time.perf_counter()
    if not options.source.strip():
        raise LqbenchError("--source must say where the generations came from (a URL, a paper, a person)")
    limits = ScoreLimits(timeout_s=options.timeout_s, memory_mb=options.memory_mb, lua=options.lua,
                         fresh_state=options.fresh_state)
    pool = ScorerPool(jobs=options.jobs, limits=limits)  # its workers boot while the inputs are read
    try:
        suites = [load_suite(s) for s in options.suites]
        names = [s.name for s in suites]
        if len(set(names)) != len(names):
            raise LqbenchError(f"--suite names suite {next(n for n in names if names.count(n) > 1)!r} twice")
        reader = _Reader(options, suites)
        reader.read(_walk([Path(p) for p in paths]))
        resolver = _Resolver(options, suites)
        issues = list(reader.issues)

        staged: list[tuple[Entry, dict, TaskSpec]] = []
        for entry in reader.entries:
            model = resolver.model(entry)
            task = resolver.task(entry)
            if task is not None:
                staged.append((entry, model, task))
        stamped = resolver.stamp_file_tasks()
        issues.extend(resolver.issues)
        if options.strict and issues:
            raise LqbenchError(f"{issues[0]} (--strict: nothing imported)")

        store = ResultStore(db)
        store.check_import_models(list(resolver.models.values()))
        programs: list[_Program] = []
        for entry, model, task in staged:
            if not task.suite_version:
                task = stamped[(task.task_id, _content(task))]
            completion, scored = _split(task, entry)
            programs.append(_Program(entry, model, task, completion, scored,
                                     origin_key(model["model_id"], entry.file.sha256, entry.locator)))
        already = store.imported_origin_keys([p.key for p in programs])
        fresh, keys = [], set(already)
        for p in programs:  # a copy of a program file given twice (same name fields, same bytes) counts once
            if p.key not in keys:
                keys.add(p.key)
                fresh.append(p)
        _number(fresh)
        # The same bytes imported before under another model identity (another --model/--quant/--source)
        # are recorded again, as that other model's: worth a note, since it is usually a changed --source.
        earlier = store.imported_files(sorted({p.entry.file.sha256 for p in fresh}))
        notes = sorted({f"{p.entry.file.path} was imported before (run {run_id}, source {source!r}); its programs "
                        f"are recorded again for {p.model['name']} {p.model['quant']} (source {options.source!r})"
                        for p in fresh for run_id, source in earlier.get(p.entry.file.sha256, [])})
        verdict_file = _apply_verdicts(options.verdicts, fresh, issues) if options.verdicts else None
        if options.strict and issues:
            raise LqbenchError(f"{issues[0]} (--strict: nothing imported)")

        if on_start is not None:
            on_start(len(fresh))
        verdicts = []
        with pool:
            for verdict in pool.score_many(p.text.encode("utf-8", "surrogatepass") for p in fresh):
                verdicts.append(verdict)
                if on_verdict is not None:
                    on_verdict(verdict)
    finally:
        pool.close()

    # the --suite files too: which tasks the programs were scored against (already read once by load_suite)
    suite_files = [input_file(Path(s), Path(s).read_bytes(), SUITE_FILE) for s in options.suites if Path(s).is_file()]
    files = reader.files + ([verdict_file] if verdict_file else []) + suite_files
    run_id = None
    if fresh:
        run_id = new_import_id()
        _record(store, run_id, options, fresh, verdicts, files, issues, limits)
    counts = Counter(v.status for v in verdicts)
    with_original = [(p, v) for p, v in zip(fresh, verdicts) if p.entry.original_passed is not None]
    return ImportSummary(
        run_id=run_id, n_programs=len(fresh), n_already=len(programs) - len(fresh), issues=issues,
        ignored=reader.ignored, duplicates=reader.duplicates, notes=notes, counts=counts, compared=len(with_original),
        agreed=sum(1 for p, v in with_original if p.entry.original_passed == v.passed),
        models=sorted({(p.model["name"], p.model["quant"]) for p in fresh}), files=files,
        seconds=time.perf_counter() - started)


def _number(programs: list[_Program]) -> None:
    """sample_idx: the programs of each model x task, in input order (a pattern's {sample} first)."""
    groups = defaultdict(list)
    for p in programs:
        groups[(p.model["model_id"], p.task.suite, p.task.task_id)].append(p)
    for group in groups.values():
        if any(p.entry.sample is not None for p in group):
            group.sort(key=lambda p: (int(p.entry.sample) if p.entry.sample is not None else -1))
        for i, p in enumerate(group):
            p.sample_idx = i


def _record(store, run_id: str, options: ImportOptions, programs: list[_Program], verdicts: list, files: list,
            issues: list[Issue], limits) -> None:
    from lqbench.records import SampleRecord, utc_now

    now = utc_now()
    config = {"import": {"source": options.source, "model": options.model, "quant": options.quant,
                         "suites": options.suites, "pattern": options.pattern,
                         "verdicts": str(options.verdicts) if options.verdicts else None,
                         "n_files": len(files), "formats": dict(Counter(f.format for f in files))},
              "scoring": limits.as_dict()}
    samples, extras = [], []
    n_by_file = Counter()
    for p, v in zip(programs, verdicts):
        e = p.entry
        n_by_file[e.file.path] += 1
        samples.append(SampleRecord(
            run_id=run_id, node_id=IMPORTED_NODE, model_id=p.model["model_id"], suite=p.task.suite,
            task_id=p.task.task_id, sample_idx=p.sample_idx, replica="", seed=None, completion=p.completion,
            status=v.status, passed=bool(v.passed), error=v.error, prompt_tokens=None, gen_tokens=None,
            prompt_ms=None, gen_ms=None, ttft_ms=None, wall_ms=None, score_ms=v.ms, peak_rss_mb=None,
            created_at=now, shard_id=None, suite_version=p.task.suite_version, temperature=e.temperature,
            finish_reason=None, n_threads=None, n_parallel=None))
        extras.append({"run_id": run_id, "model_id": p.model["model_id"], "suite": p.task.suite,
                       "task_id": p.task.task_id, "sample_idx": p.sample_idx, "replica": "", "origin_key": p.key,
                       "origin": e.where, "format": e.file.format, "scored_program": p.scored_program,
                       "original_harness": e.original_harness, "original_status": e.original_status,
                       "original_passed": e.original_passed, "original_exit_code": e.original_exit_code})
    tasks = {(p.task.suite, p.task.suite_version, p.task.task_id): p.task for p in programs}
    models = {p.model["model_id"]: p.model for p in programs}
    store.record_import(
        run={"run_id": run_id, "started_at": now, "finished_at": now, "status": "imported",
             "config_json": json.dumps(config, sort_keys=True), "plan_name": f"import: {options.source}"},
        imports_row={"run_id": run_id, "source": options.source, "n_programs": len(programs),
                     "n_skipped": len(issues), "issues_json": json.dumps([str(i) for i in issues]),
                     "imported_at": now},
        models=list(models.values()), tasks=list(tasks.values()), samples=samples, import_samples=extras,
        files=[{"run_id": run_id, "path": f.path, "sha256": f.sha256, "bytes": f.bytes, "format": f.format,
                "n_programs": n_by_file.get(f.path, 0)} for f in files])
