"""`lqbench run`: from a plan to rows in DuckDB.

Order matters for "bad input loses nothing": everything that can be wrong with the
plan (suites, task selection, model files, quant names) is resolved and checked
before Ray starts or the database is opened. Then the run is recorded, shards go
out through the scheduler, samples stream back into the batch writer, and a
summary table is printed.

SIGINT and SIGTERM are a request to stop (`cluster.interrupt`): the scheduler loop
stops at its next turn, the writer flushes, the run is marked `interrupted`, and
one line says what it kept and how to resume. The outcome is recorded and printed
before Ray is shut down, the slow last step.
"""

from __future__ import annotations

import secrets
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.plan import Plan, plan_from_dict
from lqbench.prompt_styles import resolve_prompts
from lqbench.scheduling import ShardQueue, selector_matches
from lqbench.shard import make_perplexity_shards, make_shards, make_speed_shards
from lqbench.store import ResultStore


@dataclass
class RunSummary:
    run_id: str
    status: str
    samples_written: int
    seconds: float
    lost_nodes: list[str] = field(default_factory=list)
    failed_shards: list[tuple[str, str]] = field(default_factory=list)
    # One line per model file x node whose engine crashed or hung; `excluded` counts the pairs given up on.
    engine_failures: list[str] = field(default_factory=list)
    excluded: int = 0
    rows: list[dict] = field(default_factory=list)  # summary_rows: one per model file (and prompt style)
    stop_signal: int | None = None  # the signal that interrupted the run, if one did


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def resolve_suites(plan: Plan) -> list[tuple[str, str, list]]:
    from lqbench.tasks import load_suite, select_tasks

    out = []
    for entry in plan.suites:
        suite = load_suite(entry.name)
        tasks = select_tasks(suite, limit=entry.limit, task_ids=list(entry.task_ids) or None,
                             topics=list(entry.topics) or None, difficulties=list(entry.difficulties) or None)
        if not tasks:
            raise LqbenchError(f"plan selects no tasks from suite {entry.name}")
        out.append((suite.name, suite.version, tasks))
    return out


def resolve_perplexity(plan: Plan, models: list[tuple[dict, dict, int]]) -> tuple[str, str, list] | None:
    """(corpus name, corpus text, [(base row, ladder rows, selector)]) for the plan's [perplexity], or None."""
    if not plan.perplexity:
        return None
    from lqbench.perplexity import corpus_from_suite, corpus_name
    from lqbench.tasks import load_suite

    cfg = plan.perplexity
    suite = load_suite(cfg["corpus"])
    text = corpus_from_suite(suite, with_tests=cfg["with_tests"])
    ladders = []
    for entry_idx in sorted({idx for _, _, idx in models}):
        rows = [row for row, _, idx in models if idx == entry_idx]
        select = next(sel for _, sel, idx in models if idx == entry_idx)
        if cfg["base"] == "highest":
            base = max(rows, key=lambda r: r.get("bits_per_weight") or 0)
        else:
            base = next(r for r in rows if r["quant"] == cfg["base"])
        ladders.append((base, rows, select))
    return corpus_name(suite, with_tests=cfg["with_tests"]), text, ladders


def resolve_models(plan: Plan, progress: bool = True) -> list[tuple[dict, dict, int]]:
    """(models-table row, node selector, plan entry index) for every model file of the plan,
    quantizing as needed."""
    from lqbench.models import QUANT_TYPES, build_ladder, resolve_model

    for entry in plan.models:  # check names before any slow work
        for q in entry.quants:
            if q not in QUANT_TYPES:
                raise LqbenchError(f"unknown quant type {q!r} for {entry.spec}; known: {', '.join(QUANT_TYPES)}")
    rows = []
    for idx, entry in enumerate(plan.models):
        base = resolve_model(entry.spec)
        files = build_ladder(base, list(entry.quants)) if entry.quants else [base]
        for f in files:
            row = f.to_row()
            if entry.name:
                row["name"] = entry.name
            rows.append((row, dict(entry.select), idx))
    return rows


def run_plan(plan: Plan, *, db: Path, address: str | None = None, token: str | None = None,
             resume: str | None = None, progress: bool = True, n_threads: int | None = None,
             measure_bandwidth: bool = True, idle_timeout_s: float = 300.0, console=None) -> RunSummary:
    """Run (or resume) a plan and print its summary.

    Called from the main thread, it owns SIGINT and SIGTERM meanwhile (`cluster.interrupt`):
    a signal stops the run at a safe point, the run is marked interrupted with every sample
    received so far, one line says so, and the summary comes back with status "interrupted"
    and `stop_signal` set (the CLI exits 128 + that signal)."""
    from rich.console import Console

    from cluster.interrupt import StopSignals

    stop = StopSignals()
    stop.install()
    try:
        return _run_plan(plan, db=Path(db), address=address, token=token, resume=resume, progress=progress,
                         n_threads=n_threads, measure_bandwidth=measure_bandwidth, idle_timeout_s=idle_timeout_s,
                         console=console or Console(stderr=True), stop=stop)
    finally:
        stop.restore()


@dataclass
class _RunState:
    """What the run has recorded so far: enough for the one "interrupted" line, which a second
    signal may have to print from inside the signal handler."""
    run_id: str
    db: Path
    resuming: bool
    recorded: bool = False  # the run's row is written (begun or resumed)
    status: str | None = None  # the status written when it ended
    done: set = field(default_factory=set)  # keys recorded (the scheduler adds to this very set)
    planned: set | None = None  # sample keys of the whole plan, once its shards exist
    said: bool = False  # the outcome (the line or the summary) is printed

    def kept(self) -> int:
        return len(self.done & self.planned) if self.planned is not None else len(self.done)

    def line(self) -> str:
        if not self.recorded:
            return f"interrupted: run {self.run_id} {'was not resumed' if self.resuming else 'had not started'}; " \
                   "nothing was recorded"
        if self.status == "finished":
            return f"interrupted: run {self.run_id} had already finished ({self.kept()} samples)"
        of = f" of {len(self.planned)}" if self.planned is not None else ""
        return (f"interrupted: run {self.run_id} kept {self.kept()}{of} samples; "
                f"resume with lqbench run --resume {self.run_id} --db {self.db}")

    def last_words(self) -> str:
        """For a second signal: the line, unless the outcome was already printed."""
        return "" if self.said else self.line()


def _run_plan(plan: Plan, *, db: Path, address, token, resume, progress, n_threads, measure_bandwidth,
              idle_timeout_s, console, stop) -> RunSummary:
    from cluster.interrupt import Interrupted

    store = ResultStore(db)
    t_start = time.monotonic()
    run_id = resume or new_run_id()
    state = _RunState(run_id=run_id, db=db, resuming=bool(resume))
    stop.last_words = state.last_words

    def stopped_before_start() -> RunSummary:
        _say(console, state.line())
        state.said = True
        return RunSummary(run_id=run_id, status="interrupted", samples_written=0,
                          seconds=time.monotonic() - t_start, stop_signal=stop.signum)

    # 1. Everything that can be wrong with the input, before Ray or the DB. A signal here
    # raises at once (a quantization can take minutes): nothing is recorded yet.
    try:
        if resume:
            if not db.exists():
                raise LqbenchError(f"cannot resume {resume}: no results file at {db}")
            plan = plan_from_dict(store.run_config(resume))
        suites = resolve_suites(plan)
        models = resolve_models(plan)
        prompts = resolve_prompts(plan, models)  # per model file: its prompt styles (a chat template check)
        perplexity = resolve_perplexity(plan, models)
    except Interrupted:
        return stopped_before_start()

    # 2. Ray: an existing session (tests, notebooks), a cluster's head, or an embedded local one.
    # From here on a signal only asks the run to stop, and the run stops at a safe point.
    stop.defer()
    import ray

    from cluster import session

    owns_ray = not ray.is_initialized()
    try:
        if owns_ray and address:
            session.connect(address, token)
        elif owns_ray:
            session.start_local()
    except SystemExit:
        # While ray.init runs, SIGTERM reaches Ray's own handlers, which stop what it started
        # and sys.exit(15) or (1); ray.init itself never exits otherwise.
        stop.signum = stop.signum or signal.SIGTERM
    finally:
        stop.install()  # take SIGTERM back from ray.init
    if stop.requested:
        summary = stopped_before_start()
        if owns_ray:
            ray.shutdown()
        return summary

    from cluster.model_server import start_model_server
    from cluster.progress import RunProgress
    from cluster.scheduler import Scheduler
    from cluster.writer import BatchWriter
    from lqbench.engine import EngineConfig
    from lqbench.shard import failed_records

    writer = BatchWriter(store)
    # Laptops that see neither the head's files nor a cached copy stream them from here, in chunks.
    model_server = start_model_server([row for row, _, _ in models])
    view = RunProgress(total=0, enabled=progress)
    scheduler = Scheduler(
        on_sample=lambda rec, node: (writer.add_sample(rec), view.sample(node, rec.gen_tokens, rec.gen_ms),
                                     writer.maybe_flush()),
        on_shard=lambda rec, node: writer.add_shard(rec),
        on_perplexity=lambda rec, node: writer.add_perplexity(rec),
        on_speed=lambda records, node: writer.add_speed(records),
        on_node=lambda fp: store.upsert_nodes([fp]),
        progress=view, n_threads=n_threads or plan.inference.get("n_threads"),
        measure_bandwidth=measure_bandwidth, model_server=model_server,
        max_failures=plan.inference["max_crashes"], hang_timeout_s=plan.inference["hang_timeout_s"],
        engine_config=(EngineConfig(extra_bufts=plan.inference["extra_bufts"])
                       if "extra_bufts" in plan.inference else None),
        notice=lambda line: _say(console, line),
    )
    status = "failed"
    loop = None
    try:
        try:
            # 3. The run's record and reference rows.
            if resume:
                store.resume_run(run_id)
            else:
                store.begin_run(run_id, plan.raw, plan.name)
            state.recorded = True
            done = store.done_keys(run_id) | store.done_perplexity(run_id) | store.done_speed(run_id)
            state.done = done
            store.upsert_tasks([t for _, _, tasks in suites for t in tasks])
            store.upsert_models([row for row, _, _ in models])

            with view:
                scheduler.discover()
                if not scheduler.slots:
                    why = "; ".join(f"{n}: {e}" for n, e in scheduler.agent_errors.items())
                    raise LqbenchError(f"no agent could start ({why})" if why else
                                       "no node offers an lqbench agent slot (did the laptops `lqbench join`?)")
                shards = []
                for (row, select, _), styles in zip(models, prompts):
                    replicas = ("",)
                    if plan.placement == "every-node":  # one copy per node the model's selector admits
                        replicas = tuple(sorted(slot.info.name for slot in scheduler.slots.values()
                                                if selector_matches(select, slot.info.labels)))
                        if not replicas:
                            console.print(f"[yellow]no node matches {select} for "
                                          f"{row['name']}:{row['quant']}[/yellow]")
                    for prompt in styles:
                        shards += make_shards(run_id, [(row, select)], suites, sampling=plan.sampling,
                                              scoring=plan.scoring, inference=plan.inference,
                                              shard_size=plan.shard_size, replicas=replicas, prompt=prompt)
                if perplexity:
                    corpus, text, ladders = perplexity
                    settings = {k: plan.perplexity.get(k) for k in ("n_ctx", "max_tokens")}
                    shards += make_perplexity_shards(run_id, ladders, corpus, text, settings, plan.inference)
                if plan.speed:
                    # First in the queue: a node probes a model file right after loading it, before its sweep
                    # shards of that model warm the laptop (the queue prefers the loaded model's shards in order).
                    shards = _speed_shards(plan, run_id, models, suites, scheduler) + shards
                state.planned = {k for s in shards for k in s.sample_keys()}
                wanted = state.planned | {k for s in shards for k in s.perplexity_keys() + s.speed_keys()}
                todo = [s for s in (sh.without(done) for sh in shards) if s is not None]
                view.set_total(len(state.planned))
                view.advance(state.kept())
                queue = ShardQueue(todo)
                loop = scheduler.run(queue, done, should_stop=lambda: stop.requested,
                                     idle_timeout_s=idle_timeout_s)
                # Work that no node could do because its engine failed everywhere it was tried: recorded
                # as generation_error with the cause, so the run ends complete and says why.
                for shard in list(loop.unplaceable):
                    cause = scheduler.failures.cause(shard.model_id)
                    if not cause:
                        continue
                    node_id = next(p.node_id for p in scheduler.failures.excluded_pairs()
                                   if p.model_id == shard.model_id)
                    for record in failed_records(shard, node_id, cause, done):
                        writer.add_sample(record)
                        done.add(record.key)
                    loop.unplaceable.remove(shard)
                writer.flush()
            if wanted - done:
                status = "interrupted" if stop.requested else "incomplete"
            elif _has_unrun(store, run_id):
                status = "failed"  # complete, but some samples are generation_error: no engine could run them
            else:
                status = "finished"  # a signal after the last sample stopped nothing
            for sid, err in loop.failed_shards:
                console.print(f"[red]shard {sid} failed twice:[/red] {err}")
            if loop.unplaceable:
                console.print(f"[yellow]{len(loop.unplaceable)} shards had no eligible node[/yellow]")
        finally:
            try:
                writer.flush()
            finally:
                if state.recorded:
                    try:
                        store.finish_run(run_id, status)
                        state.status = status
                    except LqbenchError:
                        pass
        # 4. Say how it ended while Ray still runs: stopping Ray takes seconds, and a signal
        # then must find everything recorded and said. (Ray's C++ core puts SIGTERM back to
        # the default action when it shuts down, so a SIGTERM then ends the process at once.)
        summary = RunSummary(run_id=run_id, status=status, samples_written=writer.written,
                             seconds=time.monotonic() - t_start, lost_nodes=list(loop.lost_nodes),
                             failed_shards=list(loop.failed_shards), engine_failures=scheduler.failures.lines(),
                             excluded=len(scheduler.failures.excluded_pairs()))
        if status == "interrupted":
            summary.stop_signal = stop.signum
            _say(console, state.line())
        else:
            summary.rows = summary_rows(db, run_id)
            print_summary(summary, db, console)
        state.said = True
        return summary
    finally:
        scheduler.shutdown()
        if owns_ray:
            session.shutdown()
        stop.install()  # Ray's shutdown reset SIGTERM behind Python's back


def _speed_shards(plan: Plan, run_id: str, models: list, suites: list, scheduler) -> list:
    """[speed]: one probe per model file x node its selector admits, among the nodes present now (a laptop
    that joins later runs sweep shards but is not probed in this run; `--resume` probes it then)."""
    def nodes_for(select: dict) -> list[str]:
        return sorted(slot.info.name for slot in scheduler.slots.values() if selector_matches(select, slot.info.labels))

    tasks = tuple(t for _, _, ts in suites for t in ts) if plan.speed["median_prompt"] else ()
    return make_speed_shards(run_id, [(row, select) for row, select, _ in models], nodes_for, plan.speed,
                             plan.inference, tasks)


def _say(console, line: str) -> None:
    """One line, never wrapped or marked up (paths may contain [brackets])."""
    console.print(line, soft_wrap=True, markup=False, highlight=False)


SUMMARY_SQL = """
WITH probe AS (   -- the speed probe (lqbench.speed): single stream, llama-bench's meaning; mean over nodes
    SELECT model_id, avg(tg_ts) AS tg_ts, avg(tg_sd) AS tg_sd, any_value(tg_test) AS tg_test, avg(pp_ts) AS pp_ts,
           any_value(pp_test) AS pp_test
    FROM probe_speed WHERE run_id = $run GROUP BY model_id
), ppl AS (
    SELECT model_id, avg(ppl) AS ppl, avg(kld_mean) AS kld FROM perplexity WHERE run_id = $run GROUP BY model_id
), made AS (
    SELECT s.model_id, s.prompt_style, count(*) AS samples, avg(s.passed::INT) AS pass_at_1,
           -- without a probe, only samples decoded one at a time say a single stream's speed
           sum(s.gen_tokens) FILTER (WHERE s.n_parallel = 1) / nullif(sum(s.gen_ms) FILTER (WHERE s.n_parallel = 1), 0)
               * 1000 AS sample_tg_ts,
           max(s.n_parallel) AS n_parallel, max(s.peak_rss_mb) AS peak_rss_mb
    FROM samples s WHERE s.run_id = $run GROUP BY ALL
)
SELECT m.name, m.quant || CASE WHEN coalesce(d.prompt_style, 'completion') = 'completion' THEN ''
                               ELSE ' ' || d.prompt_style END AS quant,
       coalesce(d.samples, 0) AS samples, d.pass_at_1,
       coalesce(p.tg_ts, d.sample_tg_ts) AS tg_ts, CASE WHEN p.tg_ts IS NOT NULL THEN p.tg_sd END AS tg_sd,
       CASE WHEN p.tg_ts IS NOT NULL THEN p.tg_test WHEN d.sample_tg_ts IS NOT NULL THEN 'samples' END AS tg_source,
       p.pp_ts, p.pp_test, d.n_parallel, d.peak_rss_mb, m.bits_per_weight AS bpw, x.ppl, x.kld
FROM models m
LEFT JOIN made d USING (model_id) LEFT JOIN probe p USING (model_id) LEFT JOIN ppl x USING (model_id)
WHERE d.model_id IS NOT NULL OR p.model_id IS NOT NULL OR x.model_id IS NOT NULL
ORDER BY m.name, bpw DESC NULLS LAST, m.quant, d.prompt_style
"""


def _has_unrun(store: ResultStore, run_id: str) -> bool:
    """Whether the run holds samples that no engine could generate (recorded by `failed_records`)."""
    from lqbench.store import connect_read_only

    with connect_read_only(store.path) as con:
        return con.execute("SELECT count(*) FROM samples WHERE run_id = ? AND status = 'generation_error' "
                           "AND error LIKE 'engine failed on every node%'", [run_id]).fetchone()[0] > 0


def summary_rows(db: Path, run_id: str) -> list[dict]:
    from lqbench.store import connect_read_only

    if not Path(db).exists():
        return []
    with connect_read_only(db) as con:
        cur = con.execute(SUMMARY_SQL, {"run": run_id})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def print_summary(summary: RunSummary, db: Path, console) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"run {summary.run_id}: {summary.status}, {summary.samples_written} new samples "
                        f"in {summary.seconds:.0f} s", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    rows = summary.rows
    probed = any(r["pp_ts"] is not None for r in rows)  # a pp test: the probe ran
    measured_ppl = any(r["ppl"] is not None for r in rows)
    columns = ["model", "quant", "n", "pass@1", "tg t/s", *(["pp t/s"] if probed else []), "seqs",
               "RSS MB", "bpw", *(["PPL", "KLD"] if measured_ppl else [])]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "quant") else "right",
                         overflow="fold" if col == "model" else "ellipsis")  # wrap names, never cut them
    for r in rows:
        tg, tg_sd, p1 = r["tg_ts"], r["tg_sd"], r["pass_at_1"]
        cells = [r["name"], r["quant"], str(r["samples"]), f"{p1:.3f}" if p1 is not None else "-",
                 "-" if tg is None else f"{tg:.1f}" + (f"±{tg_sd:.1f}" if tg_sd is not None else "")]
        if probed:
            cells.append(f"{r['pp_ts']:.0f}" if r["pp_ts"] is not None else "-")
        cells += [str(r["n_parallel"] or "-"), f"{r['peak_rss_mb'] or 0:.0f}", f"{r['bpw']:.2f}" if r["bpw"] else "-"]
        if measured_ppl:
            cells += [f"{r['ppl']:.2f}" if r["ppl"] is not None else "-",
                      f"{r['kld']:.3f}" if r["kld"] is not None else "-"]
        table.add_row(*cells)
    console.print(table)
    if rows:
        legend = []
        if probed:
            tests = sorted({r["tg_source"] for r in rows if r["tg_source"] not in (None, "samples")}
                           | {r["pp_test"] for r in rows if r["pp_test"]})
            legend.append(f"tg, pp: the speed probe ({', '.join(tests)}), t/s mean ± sd over its repetitions")
        if any(r["tg_source"] == "samples" for r in rows):
            legend.append("tg without a probe: samples decoded one at a time")
        legend.append("n: samples; seqs: samples decoded together")
        if measured_ppl:
            legend.append("PPL, KLD: perplexity and KL divergence from the base on the Lua corpus")
        console.print("; ".join(legend))
    if summary.lost_nodes:
        console.print(f"nodes lost during the run (their unfinished work ran elsewhere): {', '.join(summary.lost_nodes)}")
    for line in summary.engine_failures:
        _say(console, f"engine failure: {line}")
    console.print(f"results: {db}   try: lqbench query pass_at_1_by_model_quant --db {db}")
