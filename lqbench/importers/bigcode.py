"""bigcode-evaluation-harness `generations*.json`: for each task of a suite, in its order, a list of programs.

The harness saves what it generated as a JSON list with one element per task of the dataset it
ran (the first N with `--limit N`), each a list of strings: the prompt (stripped) followed by the
model's continuation, cut at the stop strings. It runs `generation + "\\n" + tests`. The file does
not name its tasks, so it is read against the suite file it was made from (`--suite`): element i is
task i. An element past the suite's end, or a program that does not contain its task's function
signature (the wrong task list), is reported as file:line and not imported.
"""

from __future__ import annotations

from pathlib import Path

from lqbench.importers import BIGCODE_GENERATIONS, Entry, InputFile, Issue, array_elements
from lqbench.tasks import Suite

__all__ = ["is_generations", "read_generations", "BIGCODE_GENERATIONS"]


def is_generations(doc) -> bool:
    """A JSON list of lists (of strings): the harness's generations."""
    return isinstance(doc, list) and all(isinstance(x, list) for x in doc[:8])


def _signature(prompt: str) -> str:
    """The prompt's last non-blank line (MultiPL-E: `local function name(args)`)."""
    lines = [line for line in prompt.strip().split("\n") if line.strip()]
    return lines[-1].strip() if lines else ""


def read_generations(path: Path, file: InputFile, text: str, suite: Suite) -> tuple[list[Entry], list[Issue]]:
    entries, issues = [], []
    tasks = suite.tasks
    for i, (line, programs) in enumerate(array_elements(text)):
        where = f"{path}:{line}"
        if i >= len(tasks):
            issues.append(Issue(where, f"generations[{i}] has no task: suite {suite.name} has {len(tasks)} tasks "
                                       "(is --suite the task list these generations were made from?)"))
            continue
        task = tasks[i]
        signature = _signature(task.prompt)
        for k, program in enumerate(programs):
            at = f"{where}#{k}"
            if not isinstance(program, str):
                issues.append(Issue(at, f"generations[{i}][{k}] is not a string"))
                continue
            if signature and signature not in program:
                issues.append(Issue(at, f"generations[{i}][{k}] does not contain task {task.task_id}'s signature "
                                        f"{signature!r} (is --suite the task list these generations were made from?)"))
                continue
            entries.append(Entry(file=file, locator=f"{i}/{k}", where=at, task_id=task.task_id, program=program,
                                 task=task, suite=task.suite))
    return entries, issues
