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
