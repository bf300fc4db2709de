"""The `lqbench` command line: thin typer commands over library functions.

Heavy modules (ray, llama_cpp, lupa, duckdb) and the Ray layers (`cluster`,
`agents`) are imported inside the commands, so `lqbench --help` starts fast.
Every user-fixable failure is an `LqbenchError`, printed as one line, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from lqbench.errors import LqbenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="How well do quantized code LLMs write Lua on the laptops you own?",
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------- run
@app.command()
def run(
    plan: Optional[Path] = typer.Argument(None, help="Plan TOML; default: the built-in demo plan."),
    address: Optional[str] = typer.Option(None, help="Ray head HOST:PORT; default: an embedded local Ray on loopback."),
    token: Optional[str] = typer.Option(None, envvar="LQBENCH_TOKEN", help="Cluster token (or $LQBENCH_TOKEN)."),
    db: Optional[Path] = typer.Option(None, help="DuckDB results file [default: ./lqbench.duckdb]."),
    resume: Optional[str] = typer.Option(None, help="Finish an earlier run by id, skipping done samples."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N tasks of each suite."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a plan (models x quants x tasks) and record every sample in DuckDB."""
    from lqbench.paths import default_db
    from lqbench.plan import load_plan

    plan_obj = load_plan(plan, limit=limit)
    from cluster.runner import run_plan

    summary = run_plan(plan_obj, db=db or default_db(), address=address, token=token, resume=resume,
                       progress=not quiet)
    if summary.status != "finished":
        raise typer.Exit(1)


# ---------------------------------------------------------------- query
@app.command()
def query(
    name_or_sql: Optional[str] = typer.Argument(
        None, metavar="[NAME | \"SQL\"]",
        help="A query from queries/ (e.g. pass_at_1_by_model_quant), a .sql file, or one SELECT/WITH statement."
             " Omit to list the queries with their headers."),
    db: Optional[Path] = typer.Option(None, help="DuckDB results file [default: ./lqbench.duckdb]; opened read-only."),
    param: List[str] = typer.Option([], "--param", "-p", help="Query parameter k=v (repeatable); fills $k."),
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json | parquet (parquet needs --out)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the result to this file instead of stdout."),
    export: Optional[Path] = typer.Option(
        None, "--export", metavar="DIR",
        help="Export whole tables and views to DIR/<table>.parquet (all of them, or those named with --table)."),
    table: List[str] = typer.Option([], "--table", help="With --export: only this table or view (repeatable)."),
) -> None:
    """Run a named SQL query (or read-only SQL) over the results file; list queries; export tables to Parquet."""
    from lqbench import querying
    from lqbench.paths import default_db

    fmt = format.lower()
    if fmt not in querying.FORMATS:
        fail(f"--format must be one of {', '.join(querying.FORMATS)}, not {format!r}")
    db_path = db or default_db()
    if export is not None:
        if name_or_sql:
            fail("--export writes whole tables; give no query with it (use --format parquet --out FILE for a query)")
        for name, rows, path in querying.export_tables(db_path, export, table or None):
            typer.echo(f"{name}: {rows} rows -> {path}")
        return
    if table:
        fail("--table only goes with --export DIR")
    if fmt == "parquet":
        if out is None:
            fail("--format parquet needs --out FILE")
        if not name_or_sql:
            fail("--format parquet needs a query (to export tables use --export DIR)")
        rows = querying.write_parquet(db_path, name_or_sql, out, param)
        typer.echo(f"{rows} rows -> {out}")
        return
    if name_or_sql:
        if querying.looks_like_name(name_or_sql):
            q = querying.resolve(name_or_sql)
            title = q.name
        else:
            title = None
        columns, rows = querying.run_query(db_path, name_or_sql, param)
    else:
        if param:
            fail("--param needs a query name")
        columns, rows = querying.catalog_rows(querying.list_queries())
        title = None
    if fmt == "csv":
        text = querying.to_csv(columns, rows)
    elif fmt == "json":
        text = querying.to_json(columns, rows)
    else:
        from rich.console import Console

        # Piped or written to a file, the table keeps its full width instead of folding at 80 columns.
        wide = out is not None or not sys.stdout.isatty()
        console = Console(file=open(out, "w", encoding="utf-8") if out else None, width=1000 if wide else None)
        if name_or_sql:
            console.print(querying.to_table(columns, rows, title=title))
            if not rows:
                console.print("(no rows)")
        else:
            console.print(querying.catalog_text(querying.list_queries()), highlight=False)
        if out:
            console.file.close()
        return
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(rows)} rows -> {out}", err=True)
    else:
        sys.stdout.write(text)


def main() -> None:
    try:
        app()
    except LqbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
