"""`lqbench speed [MODEL…]`: the speed probe on this machine, printed like llama-bench and recorded in DuckDB.

Everything the user typed is checked (numbers, output format, model specs and quants, the suite) before a
model is loaded or the results file is opened; each model file then runs in its own engine process
(`lqbench.engine_process`), and the rows of all of them are written only when every probe has finished, so
a bad argument or a crashed engine leaves the file as it was. Existing node and model rows are never changed.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lqbench.errors import LqbenchError

FORMATS = ("md", "json", "csv")
DEFAULT_MODEL = "demo:gemma-3-270m"


@dataclass
class SpeedOptions:
    reps: int = 5
    n_prompt: str = "512"  # comma lists, as llama-bench's -p / -n
    n_gen: str = "128"
    median_suite: str | None = "lqbench-lua"  # None: no pp test at the suite's median prompt length
    n_threads: int | None = None
    n_ctx: int | None = None
    extra_bufts: bool = True
    output: str = "md"
    measure_bandwidth: bool = True
    warmup: bool = True


def parse_counts(what: str, text: str) -> list[int]:
    """"512,128" -> [512, 128]; every item a whole number >= 0."""
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item.isdigit():
            raise LqbenchError(f"{what} must be a comma list of whole numbers >= 0, got {text!r}")
        out.append(int(item))
    return out


def _check(options: SpeedOptions):
    from lqbench.speed import plan_tests

    if options.output not in FORMATS:
        raise LqbenchError(f"-o must be one of {', '.join(FORMATS)}, not {options.output!r}")
    if options.reps < 1:
        raise LqbenchError(f"--reps must be >= 1, got {options.reps}")
    for name, value in (("--threads", options.n_threads), ("--n-ctx", options.n_ctx)):
        if value is not None and value < 1:
            raise LqbenchError(f"{name} must be >= 1, got {value}")
    tests = plan_tests(parse_counts("--n-prompt", options.n_prompt), parse_counts("--n-gen", options.n_gen))
    n_ctx = options.n_ctx or max(2048, *(t.n_tokens for t in tests))
    too_big = [t.name for t in tests if t.n_tokens > n_ctx]
    if too_big:
        raise LqbenchError(f"--n-ctx {n_ctx} is too small for {', '.join(too_big)}")
    return tests, n_ctx


def _resolve(specs: list[str], quants: list[str]) -> list:
    from lqbench.gguf_meta import normalize_quant
    from lqbench.models import build_ladder, resolve_model

    names = [normalize_quant(q) for q in quants]  # unknown quant names fail before any work
    files = []
    for spec in specs or [DEFAULT_MODEL]:
        base = resolve_model(spec)
        files += build_ladder(base, names) if names else [base]
    return files


def _median_prompts(suite_name: str | None) -> list[str]:
    if not suite_name:
        return []
    from lqbench.tasks import load_suite, select_tasks

    return [t.prompt for t in select_tasks(load_suite(suite_name))]


def speed_command(specs: list[str], quants: list[str], options: SpeedOptions, *, db: Path,
                  hang_timeout_s: float = 600.0) -> str:
    """Run the probe on every model file; write the rows to `db`; return the text to print."""
    from lqbench.engine import EngineConfig, build_info
    from lqbench.engine_process import EngineProcess
    from lqbench.hardware import fingerprint, physical_cores
    from lqbench.records import SpeedRecord, utc_now
    from lqbench.speed import summarize_all
    from lqbench.store import ResultStore

    tests, n_ctx = _check(options)
    files = _resolve(specs, quants)
    prompts = _median_prompts(options.median_suite)
    config = EngineConfig(extra_bufts=options.extra_bufts)
    n_threads = options.n_threads or physical_cores()
    engine = build_info()
    node = fingerprint(measure_bandwidth=options.measure_bandwidth)
    node.update(engine_build=engine["label"], engine_system_info=engine["system_info"])
    run_id = datetime.now(timezone.utc).strftime("speed-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    started = utc_now()

    probes = []  # (model file, records, summaries)
    for mf in files:
        with EngineProcess(hang_timeout_s=hang_timeout_s) as proc:
            proc.load(mf.path, config, n_threads=n_threads, n_ctx=n_ctx)
            result = proc.speed([(t.n_prompt, t.n_gen) for t in tests], reps=options.reps, warmup=options.warmup,
                                median_of=prompts)
        records = SpeedRecord.from_probe(result, run_id=run_id, node_id=node["node_id"], model_id=mf.model_id,
                                         engine_build=engine["label"], engine_config=config.label)
        probes.append((mf, result["context"], summarize_all(result["reps"]), records))

    store = ResultStore(db)
    run = {"run_id": run_id, "started_at": started,
           "config": {"command": "speed", "models": [mf.model_id for mf in files], "reps": options.reps,
                      "tests": [t.name for t in tests], "median_suite": options.median_suite,
                      "n_threads": n_threads, "n_ctx": n_ctx, "engine_config": config.label,
                      "warmup": options.warmup}}
    for mf, _, _, records in probes:
        store.record_speed_probe(run=run, node=node, model=mf.to_row(), records=records)
    rows = [_output_row(mf, ctx, s, run_id, engine["label"], config.label) for mf, ctx, summaries, _ in probes
            for s in summaries]
    return render(rows, options.output)


def _output_row(mf, ctx: dict, s: dict, run_id: str, build: str, config: str) -> dict:
    """One test in llama-bench's field names (plus ours: run_id, throttling, clock)."""
    return {
        "run_id": run_id, "model_filename": mf.path, "model_type": f"{mf.name} {mf.quant}",
        "model_size": mf.file_bytes, "model_n_params": mf.n_params, "engine_build": build, "engine_config": config,
        "n_batch": ctx["n_batch"], "n_ubatch": ctx["n_ubatch"], "n_threads": ctx["n_threads"],
        "n_prompt": s["n_prompt"], "n_gen": s["n_gen"], "test": s["test"], "n_reps": s["n_reps"],
        "avg_ns": s["avg_ns"], "stddev_ns": s["stddev_ns"], "avg_ts": round(s["avg_ts"], 6),
        "stddev_ts": round(s["stddev_ts"], 6), "samples_ns": s["samples_ns"],
        "samples_ts": [round(x, 6) for x in s["samples_ts"]], "cpu_mhz_start": s["cpu_mhz_start"],
        "cpu_mhz_end": s["cpu_mhz_end"], "throttled": s["throttled"], "throttle_evidence": s["throttle_evidence"],
    }


def _size(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 2**20:.2f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.2f} M" if n < 1e9 else f"{n / 1e9:.2f} B"


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        for r in rows:  # lists as llama-bench's CSV writes them: space-separated in one field
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
        return buf.getvalue()
    header = ["model", "size", "params", "backend", "threads", "n_batch", "test", "t/s"]
    lines = [[r["model_type"], _size(r["model_size"]), _params(r["model_n_params"]), "CPU", str(r["n_threads"]),
              str(r["n_batch"]), r["test"], f"{r['avg_ts']:.2f} ± {r['stddev_ts']:.2f}"
              + (" (throttled)" if r["throttled"] else "")] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    right = {"size", "params", "threads", "n_batch", "test", "t/s"}

    def fmt_row(cells):
        return "| " + " | ".join(c.rjust(w) if h in right else c.ljust(w)
                                 for c, w, h in zip(cells, widths, header)) + " |"

    out = [fmt_row(header), "| " + " | ".join(("-" * (w - 1) + ":") if h in right else "-" * w
                                              for w, h in zip(widths, header)) + " |"]
    out += [fmt_row(line) for line in lines]
    if rows:
        out.append(f"\nbuild: {rows[0]['engine_build']} ({rows[0]['engine_config']}); run {rows[0]['run_id']}")
    return "\n".join(out) + "\n"
