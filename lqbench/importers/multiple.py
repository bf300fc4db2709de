"""MultiPL-E's own files: a problem's completions (`NAME.json[.gz]`) and their results (`NAME.results.json[.gz]`).

A completion file is one JSON object per problem: `name`, `language`, `prompt`, `tests`,
`stop_tokens`, `completions` (a list of strings) and sampling fields such as `temperature`. MultiPL-E
runs `prompt + completion + "\\n" + tests`. A results file is the same object with `completions`
replaced by `results`: one object per completion with the `program` it ran, `status` ("OK",
"Exception", "SyntaxError", "Timeout", ...), `exit_code`, `stdout`, `stderr`. Its verdicts are kept
next to ours (MultiPL-E counts a completion correct when status is "OK" and exit_code is 0).

bigcode-evaluation-harness writes the same objects for its MultiPL-E tasks, but its `completions`
already start with the prompt and its `results` carry no `program`: a completion that begins with the
prompt is taken as a whole program, and a result without a program takes the completion at the same
index from the completion file beside it.
"""

from __future__ import annotations

from pathlib import Path

from lqbench.importers import (MULTIPLE_COMPLETIONS, MULTIPLE_RESULTS, Entry, InputFile, Issue, line_of)
from lqbench.suites.multiple import MalformedRow, task_from_row

RESULTS_SUFFIXES = (".results.json", ".results.json.gz")
TASK_FIELDS = ("name", "language", "prompt", "tests", "stop_tokens")


def is_results_file(path: Path) -> bool:
    return path.name.endswith(RESULTS_SUFFIXES)


def completion_file_names(results: Path) -> list[Path]:
    """Where the completion file of a results file would be (MultiPL-E names them NAME.json[.gz])."""
    stem = results.name[: -len(".results.json.gz")] if results.name.endswith(".gz") else results.name[: -len(".results.json")]
    return [results.with_name(stem + ".json.gz"), results.with_name(stem + ".json")]


def kind_of(doc) -> str | None:
    """Which MultiPL-E file a parsed JSON value is, or None."""
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        return MULTIPLE_RESULTS
    if isinstance(doc, dict) and isinstance(doc.get("completions"), list):
        return MULTIPLE_COMPLETIONS
    return None


def _task(doc: dict, where: str):
    """The task the file states, or an Issue."""
    try:
        return task_from_row({k: doc[k] for k in TASK_FIELDS if k in doc}, suite="")
    except MalformedRow as exc:
        return Issue(where, str(exc))


def _line_of_key(text: str, key: str) -> int:
    """The line of the file where `"key"` first appears (1 if nowhere): MultiPL-E files are one object."""
    return line_of(text, max(text.find(f'"{key}"'), 0))


def _temperature(doc: dict) -> float | None:
    value = doc.get("temperature")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _entry_for_text(file: InputFile, doc: dict, task, k: int, text: str, where: str, task_where: str,
                    **kw) -> Entry:
    """A completion, or a whole program when it already starts with the prompt (bigcode's layout)."""
    kind = "program" if text.startswith(task.prompt.strip()) else "completion"
    return Entry(file=file, locator=f"{k}", where=where, task_id=task.task_id, task=task, task_where=task_where,
                 temperature=_temperature(doc), **{kind: text}, **kw)


def read_completions(path: Path, file: InputFile, text: str, doc: dict) -> tuple[list[Entry], list[Issue]]:
    where = f"{path}:{_line_of_key(text, 'name')}"
    task = _task(doc, where)
    if isinstance(task, Issue):
        return [], [task]
    entries, issues = [], []
    completions_line = _line_of_key(text, "completions")
    for k, completion in enumerate(doc["completions"]):
        at = f"{path}:{completions_line}#{k}"
        if not isinstance(completion, str):
            issues.append(Issue(at, f"completions[{k}] is not a string"))
            continue
        entries.append(_entry_for_text(file, doc, task, k, completion, at, where))
    return entries, issues


def read_results(path: Path, file: InputFile, text: str, doc: dict,
                 completions: dict | None) -> tuple[list[Entry], list[Issue]]:
    """Entries of a results file; `completions`: the parsed completion file beside it, if any."""
    where = f"{path}:{_line_of_key(text, 'name')}"
    task = _task(doc, where)
    if isinstance(task, Issue):
        return [], [task]
    fill = completions.get("completions") if isinstance(completions, dict) else None
    entries, issues = [], []
    results_line = _line_of_key(text, "results")
    for k, result in enumerate(doc["results"]):
        at = f"{path}:{results_line}#{k}"
        if not isinstance(result, dict):
            issues.append(Issue(at, f"results[{k}] is not an object"))
            continue
        status, code = result.get("status"), result.get("exit_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        verdict = dict(original_harness="multipl-e", original_status=None if status is None else str(status),
                       original_exit_code=code,
                       original_passed=None if status is None else (status == "OK" and code in (0, None)))
        program = result.get("program")
        if isinstance(program, str):
            entries.append(Entry(file=file, locator=f"{k}", where=at, task_id=task.task_id, program=program,
                                 task=task, task_where=where, temperature=_temperature(doc), **verdict))
        elif fill is not None and k < len(fill) and isinstance(fill[k], str):
            entries.append(_entry_for_text(file, doc, task, k, fill[k], at, where, **verdict))
        else:
            issues.append(Issue(at, f"results[{k}] has no 'program' and no completion file beside it has "
                                    f"completions[{k}]"))
    return entries, issues
