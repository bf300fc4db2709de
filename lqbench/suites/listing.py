"""What `lqbench suites` prints: suites with task counts by topic x difficulty, and a suite's load issues."""

from __future__ import annotations

from lqbench.tasks import BUILTIN_SUITES, DIFFICULTIES, Suite, load_builtin, load_suite

UNTAGGED = "(none)"


def counts_table(suite: Suite):
    """A rich Table: one row per topic, one column per difficulty, with totals."""
    from rich.table import Table

    counts = suite.counts()
    difficulties = [d for d in DIFFICULTIES if any(k[1] == d for k in counts)]
    difficulties += sorted({k[1] or UNTAGGED for k in counts} - set(difficulties))
    topics = sorted({k[0] or UNTAGGED for k in counts})

    def n(topic: str, difficulty: str) -> int:
        return counts.get((topic if topic != UNTAGGED else "", difficulty if difficulty != UNTAGGED else ""), 0)

    table = Table(title=f"{suite.name}: {len(suite.tasks)} tasks, version {suite.version}", title_justify="left")
    table.add_column("topic")
    for d in difficulties:
        table.add_column(d, justify="right")
    table.add_column("total", justify="right", style="bold")
    for topic in topics:
        row = [n(topic, d) for d in difficulties]
        table.add_row(topic, *map(str, row), str(sum(row)))
    column_totals = [sum(n(t, d) for t in topics) for d in difficulties]
    table.add_section()
    table.add_row("total", *map(str, column_totals), str(len(suite.tasks)), style="bold")
    return table


def print_builtin_suites(console) -> None:
    """Every built-in suite's counts, then where other suites can come from."""
    from lqbench.suites.hub import HUB_CONFIGS, MULTIPL_E_REVISION

    for name in BUILTIN_SUITES:
        console.print(counts_table(load_builtin(name)))
    hub = ", ".join(f"multipl-e:{c}" for c in HUB_CONFIGS)
    console.print(f"Also loadable by name: {hub} (Hugging Face hub, revision {MULTIPL_E_REVISION[:12]}); "
                  "or by path: a MultiPL-E .json/.jsonl/.parquet file or a directory of problem .toml files.",
                  highlight=False)


def print_suite(console, name_or_path: str, *, strict: bool) -> Suite:
    """Load one suite and print its name, size, counts and every issue found while loading."""
    suite = load_suite(name_or_path, strict=strict)
    console.print(f"{suite.name}: {len(suite.tasks)} tasks (version {suite.version}, source {suite.source})",
                  highlight=False, markup=False)
    if suite.tasks and any(t.topic or t.difficulty for t in suite.tasks):
        console.print(counts_table(suite))
    if suite.issues:
        console.print(f"{len(suite.issues)} issue(s); these entries were skipped:", style="yellow", highlight=False)
        for issue in suite.issues:
            console.print(f"  {issue}", highlight=False, markup=False, soft_wrap=True)
    return suite
