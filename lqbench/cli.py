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

    try:
        plan_obj = load_plan(plan, limit=limit)
        from cluster.runner import run_plan
    except KeyboardInterrupt:  # typer would turn it into a silent exit 130
        typer.echo("interrupted: nothing was recorded", err=True)
        raise typer.Exit(130)
    # From here run_plan owns SIGINT and SIGTERM: it stops cleanly, prints the one line, and
    # tells us which signal stopped it.
    summary = run_plan(plan_obj, db=db or default_db(), address=address, token=token, resume=resume,
                       progress=not quiet)
    if summary.status == "interrupted":
        from cluster.interrupt import exit_status

        raise typer.Exit(exit_status(summary.stop_signal))  # 130 for SIGINT, 143 for SIGTERM
    if summary.status != "finished" or summary.excluded:
        # Also when every sample is in but some node's engine was given up on for a model: that
        # laptop needs attention (the summary printed one line per model file x node).
        raise typer.Exit(1)


# ---------------------------------------------------------------- query
@app.command()
def query(
    name_or_sql: Optional[str] = typer.Argument(
        None, metavar="[NAME | \"SQL\"]",
        help="A query from queries/ (e.g. pass_at_1_by_model_quant), a .sql file, or one SELECT/WITH statement."
             " Omit to list the queries with their headers."),
    db: Optional[Path] = typer.Option(None, help="DuckDB results file (default ./lqbench.duckdb); opened read-only."),
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


# ---------------------------------------------------------------- cluster: head, join, nodes
@app.command()
def head(
    port: int = typer.Option(6379, help="Port of the head's GCS: the port laptops join on."),
    token: Optional[str] = typer.Option(None, envvar="LQBENCH_TOKEN",
                                        help="Cluster token (or $LQBENCH_TOKEN); default: a new random one."),
    stop: bool = typer.Option(False, "--stop", help="Stop the head started from this machine, and exit."),
    no_work: bool = typer.Option(False, "--no-work", help="Only schedule and write the DB; run no shards here."),
    name: Optional[str] = typer.Option(None, help="This machine's name in results (default: hostname)."),
    label: List[str] = typer.Option([], "--label", help="Extra node label KEY=VALUE (repeatable)."),
    threads: Optional[int] = typer.Option(None, help="Cores to offer (default: physical cores)."),
    node_ip: Optional[str] = typer.Option(None, help="Address to advertise (default: Ray's pick)."),
    node_ports: int = typer.Option(6380, help="This node's Ray ports are N..N+5 (0: random; see docs/cluster.md)."),
    dashboard: bool = typer.Option(True, help="Start Ray's dashboard (bound to localhost:8265)."),
    block: bool = typer.Option(False, "--block", help="Stay in the foreground; Ctrl-C stops the head."),
    no_bandwidth: bool = typer.Option(False, "--no-bandwidth", help="Skip the ~2 s memory bandwidth measurement."),
    temp_dir: Optional[str] = typer.Option(None, hidden=True, help="Ray's --temp-dir (tests)."),
) -> None:
    """Start this machine's Ray head (token auth on) and print the command laptops join with."""
    from cluster import head as cluster_head

    if stop:
        address = cluster_head.stop_head()
        typer.echo(f"stopped the head at {address}" if address else "no head was running here")
        return
    from lqbench.hardware import parse_label_args

    info = cluster_head.start_head(port, token, node_ip=node_ip, name=name, labels=parse_label_args(label),
                                   threads=threads, no_work=no_work, node_ports=node_ports, dashboard=dashboard,
                                   temp_dir=temp_dir, measure_bandwidth=not no_bandwidth)
    work = "schedules only" if no_work else f"offers {info.num_cpus} CPUs"
    typer.echo(f"Ray head {info.name!r} up at {info.address} in {info.seconds:.1f} s ({work}; token auth on).")
    typer.echo("On each laptop, run:\n")
    typer.echo(f"  {info.join_command}\n")
    typer.echo("Then start a benchmark from this machine:\n")
    typer.echo(f"  {info.run_command}\n")
    typer.echo(f"See the cluster with `lqbench nodes`; stop it with `lqbench head --stop`. Log: {info.log}")
    if block:
        _stay_in_foreground(info.pid, "the Ray head", cluster_head.HEAD_KEY)


def _stay_in_foreground(pid: int, what: str, state_key: str) -> None:
    """`--block`: wait on the Ray process until it ends or Ctrl-C stops it, then forget its state."""
    from cluster.ray_node import remove_state, wait_forever

    code = wait_forever(pid, what)
    remove_state(state_key)
    raise typer.Exit(code)


@app.command()
def join(
    address: Optional[str] = typer.Argument(None, help="The head's HOST:PORT, as printed by `lqbench head`."),
    token: Optional[str] = typer.Option(None, envvar="LQBENCH_TOKEN", help="Cluster token (or $LQBENCH_TOKEN)."),
    name: Optional[str] = typer.Option(None, help="This laptop's name in results (default: hostname)."),
    label: List[str] = typer.Option([], "--label", help="Extra node label KEY=VALUE (repeatable)."),
    threads: Optional[int] = typer.Option(None, help="Cores to offer (default: physical cores)."),
    node_ip: Optional[str] = typer.Option(None, help="Address to advertise (default: Ray's pick)."),
    node_ports: int = typer.Option(6380, help="This node's Ray ports are N..N+5 (0: random; see docs/cluster.md)."),
    block: bool = typer.Option(False, "--block", help="Stay in the foreground; Ctrl-C leaves the cluster."),
    stop: bool = typer.Option(False, "--stop", help="Leave: stop this machine's worker(s) (--name: just that one)."),
    no_bandwidth: bool = typer.Option(False, "--no-bandwidth", help="Skip the ~2 s memory bandwidth measurement."),
    no_engine_check: bool = typer.Option(False, "--no-engine-check",
                                         help="Skip the inference check (the head then learns of crashes the hard way)."),
    check_model: Optional[str] = typer.Option(None, "--check-model", help="GGUF for the inference check "
                                                                          "(default: the demo model)."),
    temp_dir: Optional[str] = typer.Option(None, hidden=True, help="Ray's --temp-dir (tests)."),
) -> None:
    """Check this laptop's engine, fingerprint it and join the cluster as a Ray worker."""
    from agents import join as agents_join

    if stop:
        stopped = agents_join.leave(name)
        typer.echo(f"left the cluster: {', '.join(stopped)}" if stopped else "no lqbench worker was running here")
        return
    if not address:
        fail("missing HOST:PORT of the head (printed by `lqbench head`)")
    if not token:
        fail("missing --token (printed by `lqbench head`; or set $LQBENCH_TOKEN)")
    from lqbench.hardware import parse_label_args

    node = agents_join.join(address, token, name=name, labels=parse_label_args(label), threads=threads,
                            node_ip=node_ip, node_ports=node_ports, temp_dir=temp_dir,
                            measure_bandwidth=not no_bandwidth, engine_check=not no_engine_check,
                            check_model=check_model)
    fp = {k: v for k, v in node.labels.items() if k.startswith("lqbench-")}
    typer.echo(f"joined {node.address} as {node.name!r} in {node.seconds:.1f} s: {node.num_cpus} CPUs, "
               f"{fp.get('lqbench-cpu', '?')}, {fp.get('lqbench-ram-gb', '?')} GB RAM, "
               f"{fp.get('lqbench-mem-bw-gbs', '-')} GB/s, engine "
               f"{'extra_bufts=' + fp['lqbench-extra-bufts'] if 'lqbench-extra-bufts' in fp else 'unchecked'}. "
               "Leave with `lqbench join --stop`.")
    from lqbench.energy import diagnose  # what this laptop's shards will record as energy, and how to fix it

    for status, message in diagnose():
        typer.echo(f"  {status}: {message}")
    if block:
        _stay_in_foreground(node.pid, f"the Ray worker {node.name!r}", node.key)


@app.command()
def nodes(
    address: Optional[str] = typer.Option(None, help="Head HOST:PORT (default: the head started on this machine)."),
    token: Optional[str] = typer.Option(None, envvar="LQBENCH_TOKEN", help="Cluster token (or $LQBENCH_TOKEN)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per node instead of a table."),
    alive_only: bool = typer.Option(False, "--alive", help="Only the nodes that are alive."),
) -> None:
    """The cluster's nodes with their fingerprints, one line per node (* marks the head)."""
    import json

    from cluster.head import connect
    from cluster.nodes import format_nodes, list_nodes

    connect(address, token)
    found = list_nodes(include_dead=not alive_only)
    if as_json:
        for n in found:
            typer.echo(json.dumps({"ray_node_id": n.ray_node_id, "address": n.address, "alive": n.alive,
                                   "is_head": n.is_head, "cpus": n.cpus, "agent_slots": n.agent_slots,
                                   "name": n.name, "fingerprint": n.fingerprint, "labels": n.labels},
                                  sort_keys=True))
        return
    for line in format_nodes(found):
        typer.echo(line)


# ---------------------------------------------------------------- report
@app.command()
def report(
    db: Optional[Path] = typer.Option(None, help="DuckDB results file (default ./lqbench.duckdb); opened read-only."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
    run_id: Optional[str] = typer.Option(None, "--run", help="Only this run (default: every run in the file)."),
) -> None:
    """Write one self-contained HTML report (charts, tables, provenance); opens offline in any browser."""
    from lqbench.paths import default_db
    from lqbench.report import build_report

    result = build_report(db or default_db(), out, run_id=run_id)
    typer.echo(f"{result.path}: {result.bytes / 1024:.0f} KiB, {result.n_charts} charts over "
               f"{result.n_samples:,} samples")


# ---------------------------------------------------------------- suites
@app.command()
def suites(
    suite: Optional[str] = typer.Argument(
        None, help="A suite to inspect: built-in name, multipl-e:CONFIG, a MultiPL-E .json/.jsonl/.parquet "
                   "file, or a directory of problem .toml files. Default: list the built-in suites."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the suite at its first malformed entry."),
) -> None:
    """List suites with task counts by topic and difficulty, or load one and show its problems' issues."""
    from rich.console import Console

    from lqbench.suites.listing import print_builtin_suites, print_suite

    console = Console()
    if suite is None:
        print_builtin_suites(console)
        return
    loaded = print_suite(console, suite, strict=strict)
    if loaded.issues:
        raise typer.Exit(1)


# ---------------------------------------------------------------- models: quantize, models
@app.command()
def quantize(
    base: str = typer.Argument(..., help="Base GGUF: a path, demo:gemma-3-270m, or hf:owner/repo/file.gguf."),
    types: str = typer.Option(..., "--types", "-t", help="Comma-separated quant types, e.g. q2_k,q4_k_m,q8_0."),
    out: Optional[Path] = typer.Option(None, help="Also place the files here as NAME.QUANT.gguf (hard link or copy)."),
    threads: Optional[int] = typer.Option(None, help="Quantizer threads [default: physical cores]."),
) -> None:
    """Make a quant ladder from a base GGUF (cached by base sha256 and type)."""
    from lqbench.model_commands import quantize_command

    quantize_command(base, [t for t in types.split(",") if t.strip()], out=out, threads=threads)


@app.command()
def models(
    verify: bool = typer.Option(False, "--verify", help="Re-hash every file (slow for big models)."),
) -> None:
    """What is in the model cache: name, quant, size, bits per weight, parameters, sha256."""
    from lqbench.model_commands import models_command

    if not models_command(verify=verify):
        raise typer.Exit(1)


# ---------------------------------------------------------------- score
@app.command("score")
def score_programs(
    paths: List[Path] = typer.Argument(..., help="Lua files, directories (*.lua, recursively), or .jsonl/.json "
                                                 "generations (program, or prompt + completion(s) + tests)."),
    out: Path = typer.Option(..., "--out", "-o", help="Results: one JSON object per program (JSONL)."),
    lua: str = typer.Option("5.4", help="Lua version: 5.1, 5.2, 5.3, 5.4, 5.5 or luajit."),
    timeout: float = typer.Option(5.0, help="Seconds each program may run."),
    jobs: Optional[int] = typer.Option(None, help="Worker processes; default: all cores."),
    memory_mb: int = typer.Option(256, "--memory-mb", help="Memory cap per program, MB."),
    strict: bool = typer.Option(False, "--strict", help="Refuse the input at its first malformed JSON line."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    fresh_state: bool = typer.Option(True, "--fresh-state/--reuse-state",
                                     help="A brand-new Lua state for every program (the default). --reuse-state keeps a "
                                          "state for the next program while nothing a program did can outlive it: faster, "
                                          "but verdicts that depend on the collector's timing (memory use near the cap, "
                                          "weak tables, when finalizers run) can then differ from a new state's."),
) -> None:
    """Score existing Lua programs in the sandbox (rescore generations from any harness)."""
    from lqbench.scorer.command import score_command

    status = score_command(paths, out, lua=lua, timeout=timeout, jobs=jobs, memory_mb=memory_mb,
                           strict=strict, quiet=quiet, fresh_state=fresh_state)
    if status:
        raise typer.Exit(status)


# ---------------------------------------------------------------- doctor
@app.command()
def doctor(
    model: Optional[str] = typer.Option(None, help="Model for the inference check: a GGUF path or a spec "
                                                   "(default: the demo model)."),
    threads: Optional[int] = typer.Option(None, help="Threads for the inference check (default: physical cores)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per check instead of a table."),
    no_lua: bool = typer.Option(False, "--no-lua", help="Skip the Lua sandbox checks."),
) -> None:
    """Check this machine: CPU, llama.cpp build, inference in each engine configuration, Lua, Ray, DuckDB."""
    import json
    import os

    from lqbench.doctor import Check, run_checks

    path = None
    if model:
        from lqbench.models import resolve_model

        path = model if Path(model).is_file() else resolve_model(model).path
    checks = run_checks(path, n_threads=threads, lua=not no_lua)
    from cluster.auth import TOKEN_ENV
    from cluster.ray_node import read_state

    head = read_state("head")
    if os.environ.get(TOKEN_ENV):
        checks.append(Check("cluster token", "info", f"set in ${TOKEN_ENV}"))
    elif head and head.get("token"):
        checks.append(Check("cluster token", "info", f"the head started here ({head.get('address')}) has one"))
    else:
        checks.append(Check("cluster token", "info", f"none (needed for join/run --address: --token or ${TOKEN_ENV})"))
    if as_json:
        for c in checks:
            typer.echo(json.dumps(c.__dict__, sort_keys=True))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="lqbench doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col, overflow="fold")
        colors = {"ok": "green", "warn": "yellow", "fail": "red", "info": ""}
        for c in checks:
            table.add_row(c.name, f"[{colors[c.status]}]{c.status}[/]" if colors[c.status] else c.status,
                          escape(c.detail))
        Console().print(table)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        typer.echo("doctor: broken: " + "; ".join(f"{c.name}: {c.detail}" for c in failed), err=True)
        raise typer.Exit(1)


# ---------------------------------------------------------------- speed
@app.command()
def speed(
    models: List[str] = typer.Argument(None, help="Model specs: GGUF paths, demo:gemma-3-270m, hf:owner/repo/file.gguf "
                                                  "[default: demo:gemma-3-270m]."),
    quants: Optional[str] = typer.Option(None, "--quants", help="Probe these quants of each model (comma list, made "
                                                                "with the quantizer as `lqbench quantize` does)."),
    reps: int = typer.Option(5, "--reps", "-r", help="Repetitions of each test after the warm-up."),
    n_prompt: str = typer.Option("512", "--n-prompt", "-p", help="Prompt-processing tests: tokens, comma list (0: none)."),
    n_gen: str = typer.Option("128", "--n-gen", "-n", help="Token-generation tests: tokens, comma list (0: none)."),
    suite: str = typer.Option("lqbench-lua", "--suite", help="Also a pp test at this suite's median prompt length "
                                                             "(in the model's tokens)."),
    median: bool = typer.Option(True, "--median/--no-median", help="Whether to run the --suite median pp test."),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="Threads [default: physical cores]."),
    n_ctx: Optional[int] = typer.Option(None, "--n-ctx", help="Context size [default: 2048, or what the tests need]."),
    extra_bufts: bool = typer.Option(True, "--extra-bufts/--no-extra-bufts",
                                     help="llama.cpp's extra CPU buffer types (weight repacking)."),
    warmup: bool = typer.Option(True, "--warmup/--no-warmup", help="llama-bench's warm-up run before each test."),
    output: str = typer.Option("md", "--output", "-o", help="md | json | csv (llama-bench's field names)."),
    db: Optional[Path] = typer.Option(None, help="DuckDB results file [default: ./lqbench.duckdb]."),
    no_bandwidth: bool = typer.Option(False, "--no-bandwidth", help="Skip the ~2 s memory bandwidth measurement."),
) -> None:
    """Speed probe in llama-bench's meaning (pp512, tg128, mean ± sd over repetitions), single stream."""
    from lqbench.engine import EngineFailure
    from lqbench.paths import default_db
    from lqbench.speed_command import SpeedOptions, speed_command

    options = SpeedOptions(reps=reps, n_prompt=n_prompt, n_gen=n_gen, median_suite=suite if median else None,
                           n_threads=threads, n_ctx=n_ctx, extra_bufts=extra_bufts, output=output.lower(),
                           measure_bandwidth=not no_bandwidth, warmup=warmup)
    try:
        text = speed_command(list(models or []), [q for q in (quants or "").split(",") if q.strip()], options,
                             db=db or default_db())
    except EngineFailure as exc:  # not the user's input: the engine died; nothing was written
        fail(f"engine {exc} (nothing recorded; `lqbench doctor` checks this machine's engine)", code=1)
    sys.stdout.write(text)


# ---------------------------------------------------------------- import
@app.command("import")
def import_generations(
    paths: List[Path] = typer.Argument(
        ..., help="Files or folders (searched recursively; formats may be mixed): MultiPL-E completion or results "
                  "files (.json/.json.gz), bigcode-evaluation-harness generations*.json, .lua programs (--pattern)."),
    model: Optional[str] = typer.Option(None, "--model", help="The model that wrote them (program files whose "
                                                              "--pattern has {model} name their own)."),
    quant: Optional[str] = typer.Option(None, "--quant", help="Its quantization, e.g. q4_k_m [default: unknown]."),
    source: str = typer.Option("unspecified", "--source",
                               help="Where the generations come from (a URL, a paper); recorded as provenance and "
                                    "part of the imported model's identity."),
    suite: List[str] = typer.Option([], "--suite", help="The suite the programs are for (repeatable): a built-in "
                                                        "name or a MultiPL-E .json/.jsonl/.parquet file. Needed for "
                                                        "bigcode generations (their task list) and .lua programs."),
    pattern: Optional[str] = typer.Option(None, "--pattern", help="How .lua file paths name what they are, e.g. "
                                                                  "'{suite}/{model}_{task}.lua' (also {quant}, {sample})."),
    verdicts: Optional[Path] = typer.Option(None, "--verdicts", help="A CSV of another harness's verdicts to compare "
                                                                     "with (file or task[,model,quant,sample] + passed/status)."),
    db: Optional[Path] = typer.Option(None, help="DuckDB results file [default: ./lqbench.duckdb]."),
    lua: str = typer.Option("5.4", help="Lua version: 5.1, 5.2, 5.3, 5.4, 5.5 or luajit."),
    timeout: float = typer.Option(5.0, help="Seconds each program may run."),
    memory_mb: int = typer.Option(256, "--memory-mb", help="Memory cap per program, MB."),
    jobs: Optional[int] = typer.Option(None, help="Scorer worker processes; default: all cores."),
    fresh_state: bool = typer.Option(False, "--fresh-state", help="A brand-new Lua state for every program."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any entry cannot be imported."),
) -> None:
    """Import other harnesses' generations: rescore them in the sandbox and record them as a run."""
    from lqbench.importers.command import import_command
    from lqbench.importers.importer import ImportOptions
    from lqbench.paths import default_db

    options = ImportOptions(model=model, quant=quant, source=source, suites=list(suite), pattern=pattern,
                            verdicts=verdicts, timeout_s=timeout, memory_mb=memory_mb, lua=lua,
                            fresh_state=fresh_state, jobs=jobs, strict=strict)
    status = import_command(paths, db or default_db(), options)
    if status:
        raise typer.Exit(status)


def main() -> None:
    try:
        app()
    except LqbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit as exc:
        # typer turns a Ctrl-C that no command handled into a silent exit 130 (raising its Exit
        # "from" the KeyboardInterrupt); commands that handle it say more and exit on their own
        if exc.code == 130 and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            typer.echo("interrupted", err=True)
        raise


if __name__ == "__main__":
    main()
