"""Build the one-file HTML report from a results file: the named queries' answers as charts and tables.

Every number in the report comes from a query in `queries/` run through `lqbench.querying.run_query`,
so what the page shows is exactly what `lqbench query NAME` prints. The page is self-contained: CSS
inline, charts as inline SVG drawn by `lqbench.report.charts`, no scripts, fonts or network.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from typing import Sequence

from lqbench.querying import format_value, run_query
from lqbench.report import charts

STATUS_ORDER = list(charts.STATUS_COLORS)


@dataclass
class ReportResult:
    path: Path
    bytes: int
    n_samples: int
    n_charts: int
    sections: list[str]


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple]

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _t(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def html_table(table: Table, *, query: str | None = None, hide: Sequence[str] = (), max_rows: int = 500) -> str:
    """A plain HTML table; numbers right-aligned and formatted as the CLI does; how to reproduce it below."""
    keep = [i for i, c in enumerate(table.columns) if c not in hide]
    if not table.rows:
        body = f'<tr><td colspan="{len(keep)}" class="muted">no rows</td></tr>'
    else:
        lines = []
        for row in table.rows[:max_rows]:
            cells = []
            for i in keep:
                v = row[i]
                num = isinstance(v, (int, float)) and not isinstance(v, bool)
                cells.append(f'<td class="{"num" if num else "txt"}">{_t(format_value(v))}</td>')
            lines.append("<tr>" + "".join(cells) + "</tr>")
        body = "".join(lines)
    head = "".join(f"<th>{_t(table.columns[i].replace('_', ' '))}</th>" for i in keep)
    more = (f'<p class="muted">showing {max_rows} of {len(table.rows)} rows</p>'
            if len(table.rows) > max_rows else "")
    src = f'<p class="source">lqbench query {_t(query)}</p>' if query else ""
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}{src}'


def details(summary: str, inner: str, open_: bool = False) -> str:
    return f'<details{" open" if open_ else ""}><summary>{_t(summary)}</summary>{inner}</details>'


class _Data:
    """Runs the named queries once each against the file (read-only)."""

    def __init__(self, db: Path, run_id: str | None):
        self.db = db
        self.params = {"run_id": run_id} if run_id else {}

    def q(self, name: str, **extra) -> Table:
        cols, rows = run_query(self.db, name, {**self.params, **extra})
        return Table(cols, rows)

    def sql(self, sql: str, params: dict | None = None) -> Table:
        cols, rows = run_query(self.db, sql, params)
        return Table(cols, rows)


def _q(quant: object) -> str:
    """Quant names as people write them (Q4_K_M), however the file recorded them."""
    return str(quant).upper() if quant is not None else ""


def _model(r: dict) -> str:
    """A model's name, and its prompt style when that is not the default completion: a chat config
    is its own line, point and bar, never merged with the completion one."""
    style = r.get("prompt_style") or "completion"
    return r["model"] if style == "completion" else f"{r['model']} ({style})"


def _label(r: dict) -> str:
    return f"{_model(r)} {_q(r['quant'])}"


# ----------------------------------------------------------------- sections
def _summary_cards(data: _Data, p1: list[dict], eff: list[dict], run_id: str | None) -> tuple[str, int]:
    where = "WHERE run_id = $r" if run_id else ""
    params = {"r": run_id} if run_id else None
    totals = data.sql(
        "SELECT count(*) AS n, count(DISTINCT model_id) AS configs,"
        # imported samples were generated elsewhere: their pseudo-node is no laptop of ours
        " count(DISTINCT node_id) FILTER (WHERE run_id NOT IN (SELECT run_id FROM imports)) AS nodes,"
        " count(DISTINCT suite || '/' || task_id) AS tasks, count(DISTINCT run_id) AS runs,"
        # batched samples overlap in time, so compute is the nodes' time in finished shards, not summed walls
        f" (SELECT coalesce(sum(epoch(finished_at) - epoch(started_at)), 0) / 3600.0 FROM shards"
        f"  WHERE status = 'finished' {'AND run_id = $r' if run_id else ''}) AS hours FROM samples {where}",
        params).records()[0]
    cards = [
        ("samples", f"{totals['n']:,}", f"{totals['tasks']} tasks · {totals['runs']} run(s)"),
        ("configs", str(totals["configs"]), "model × quant files"),
        ("nodes", str(totals["nodes"]), "laptops that ran samples"),
        ("compute", f"{totals['hours']:.2f} h", "node time in finished shards"),
    ]
    if p1:
        # imported models have no file size (no GGUF here)
        best = max(p1, key=lambda r: (r["pass_at_1"], -(r["file_mb"] or 0)))
        imported = " (imported)" if str(best.get("origin") or "").startswith("imported") else ""
        cards.append(("best pass@1", charts.pct(best["pass_at_1"]), _label(best) + imported))
    eff = [r for r in eff if r["gen_tok_s"] is not None]  # batched samples alone give no single-stream speed
    if eff:
        fast = max(eff, key=lambda r: r["gen_tok_s"])
        cards.append(("fastest decode", f"{fast['gen_tok_s']:.0f} tok/s", f"{_label(fast)} on {fast['node']}"))
    html = "".join(f'<div class="card"><div class="card-k">{_t(k)}</div><div class="card-v">{_t(v)}</div>'
                   f'<div class="card-s">{_t(s)}</div></div>' for k, v, s in cards)
    return f'<div class="cards">{html}</div>', totals["n"]


def _accuracy_section(data: _Data) -> tuple[str, int]:
    p1 = data.q("pass_at_1_by_model_quant")
    pk = data.q("pass_at_k_by_model_quant_suite", k=1)
    overall = [r for r in pk.records() if r["suite"] == "(all)"]
    series = []
    for model in dict.fromkeys(_model(r) for r in overall):
        mine = [r for r in overall if _model(r) == model and r["bits_per_weight"]]
        if mine:
            series.append(charts.Series(
                name=model, points=[(r["bits_per_weight"], r["pass_at_k"]) for r in mine],
                labels=[_q(r["quant"]) for r in mine], low=[r["ci_low"] for r in mine], high=[r["ci_high"] for r in mine]))
    chart = charts.line_chart(series, chart_id="chart-pass-by-bits", title="pass@1 by bits per weight",
                              xlabel="bits per weight (log scale)", ylabel="pass@1", xlog2=True)
    html = (
        '<section id="accuracy"><h2>How much Lua ability each bit buys</h2>'
        '<p class="lede">pass@1 over all tasks for each model at each quantization, with 95&nbsp;% bootstrap '
        'intervals over tasks. The reference study\'s key figure: 4-bit is usually the knee, 2-bit collapses.</p>'
        f'<figure class="chart-card">{chart}</figure>'
        + details("Table: pass@1, size and speed per model × quant", html_table(p1, query="pass_at_1_by_model_quant"), True)
        + details("Table: pass@1 per suite with 95 % intervals",
                  html_table(pk, query="pass_at_k_by_model_quant_suite --param k=1"))
        + "</section>"
    )
    return html, (1 if series else 0)


def _pareto_section(data: _Data) -> tuple[str, int]:
    t = data.q("accuracy_vs_size_pareto")
    recs = t.records()
    points = [charts.Point(x=r["file_mb"], y=r["pass_at_1"], group=_model(r), label=_q(r["quant"]),
                           hollow=not r["on_front"]) for r in recs if r["file_mb"]]
    front = [(r["file_mb"], r["pass_at_1"]) for r in recs if r["on_front"] and r["file_mb"]]
    chart = charts.scatter_chart(points, chart_id="chart-pareto", title="pass@1 against model file size",
                                 xlabel="model file size, MB (log scale)", ylabel="pass@1", xlog=True,
                                 xfmt=lambda v: f"{v:,.0f}", front=front)
    dominated = [r for r in recs if not r["on_front"]]
    lede = ("Each point is a model × quant; the dashed staircase is the Pareto front — nothing smaller is as accurate. "
            + (f"{len(dominated)} of {len(recs)} configs are dominated: a smaller file does at least as well."
               if recs else ""))
    html = ('<section id="pareto"><h2>Accuracy against size</h2>'
            f'<p class="lede">{_t(lede)}</p><figure class="chart-card">{chart}</figure>'
            + details("Table: Pareto front", html_table(t, query="accuracy_vs_size_pareto")) + "</section>")
    return html, (1 if points else 0)


def _speed_sources(recs: list[dict]) -> str:
    """Where the speed numbers come from: the speed probe where a node x config has one, else samples
    decoded one at a time (samples decoded together measure throughput, not speed)."""
    probed = sum(1 for r in recs if r.get("speed_source") == "probe")
    sampled = sum(1 for r in recs if r.get("speed_source") == "samples")
    parts = []
    if probed:
        parts.append(f"{probed} node × config pair(s) from the speed probe (llama-bench's pp and tg, single "
                     "stream, mean over its repetitions)")
    if sampled:
        parts.append(f"{sampled} from sample timings (total tokens ÷ total time from llama.cpp's own counters, "
                     "samples decoded one at a time only)")
    return ("Rates: " + "; ".join(parts) + ".") if parts else "No speed measurements."


def _speed_section(data: _Data, eff: Table) -> tuple[str, int]:
    recs = eff.records()
    groups = list(dict.fromkeys(_label(r) for r in sorted(recs, key=lambda r: (r["model"], r["bits_per_weight"] or 0))))
    nodes = list(dict.fromkeys(r["node"] for r in recs))
    values = {(_label(r), r["node"]): r["gen_tok_s"] for r in recs if r["gen_tok_s"] is not None}
    chart = charts.grouped_bar_chart(groups, nodes, values, chart_id="chart-speed",
                                     title="generation tokens per second by node and quant",
                                     ylabel="generated tokens / s", yfmt=lambda v: f"{v:g}")
    prompt = {(_label(r), r["node"]): r["prompt_tok_s"] for r in recs if r["prompt_tok_s"] is not None}
    chart2 = charts.grouped_bar_chart(groups, nodes, prompt, chart_id="chart-prompt-speed",
                                      title="prompt tokens per second by node and quant",
                                      ylabel="prompt tokens / s", yfmt=lambda v: f"{v:,.0f}", height=340)
    html = ('<section id="speed"><h2>Speed on each laptop</h2>'
            '<p class="lede">Token generation is memory-bound on a CPU: fewer bits, fewer bytes read per token. '
            + _t(_speed_sources(recs)) +
            ' The table adds time to first token, load time, peak memory and the fraction of the '
            'memory-bandwidth roofline each run reached (from the probe\'s tg where there is one).</p>'
            f'<figure class="chart-card">{chart}</figure>'
            '<h3>Prompt processing</h3><p class="lede">Prompt processing is compute-bound: it follows cores and '
            'SIMD more than memory bandwidth, and sets the time to first token.</p>'
            f'<figure class="chart-card">{chart2}</figure>'
            + details("Table: efficiency by node × model × quant",
                      html_table(eff, query="efficiency_by_node_model_quant", hide=("node_id",)))
            + "</section>")
    return html, (2 if values else 0)


def _imported_section(data: _Data) -> tuple[str, int]:
    """Imported runs (lqbench import): where they came from, and how our verdicts compare with the originals'."""
    where = "WHERE i.run_id = $run_id" if data.params else ""
    runs = data.sql(
        "SELECT i.run_id, i.source, string_agg(DISTINCT m.name || ' ' || m.quant, ', ') AS models,"
        " i.n_programs, i.n_skipped,"
        " (SELECT count(*) FROM import_files f WHERE f.run_id = i.run_id) AS files,"
        " (SELECT string_agg(DISTINCT f.format, ', ') FROM import_files f WHERE f.run_id = i.run_id) AS formats,"
        " i.imported_at"
        " FROM imports i JOIN samples s USING (run_id) JOIN models m USING (model_id)"
        f" {where} GROUP BY ALL ORDER BY i.imported_at", data.params or None)
    if not runs.rows:
        return "", 0
    agreement = data.q("import_agreement")
    disagreements = data.q("import_disagreements")
    compared = sum(r["n_compared"] for r in agreement.records())
    agreed = sum(r["n_agree"] for r in agreement.records())
    callout = (f"Where the original harness gave a verdict, ours agrees on pass/fail for {agreed:,} of {compared:,} "
               f"programs ({charts.pct(agreed / compared)})." if compared
               else "None of the imported inputs carried the original harness's verdicts.")
    html = ('<section id="imported"><h2>Imported runs</h2>'
            '<p class="lede">Generations made elsewhere (other harnesses, published files) and rescored here by the '
            'same sandbox, marked <em>imported</em> in the pass@1 table\'s origin column. They count in the accuracy '
            'and failure tables and charts (not on the bits or size axes: there is no GGUF file), never in speed, '
            'memory or energy: nothing about how they were generated is measured here.</p>'
            f'<p class="callout">{_t(callout)}</p>'
            + html_table(runs)
            + details("Table: agreement with the original verdicts", html_table(agreement, query="import_agreement"),
                      bool(agreement.rows))
            + details(f"Table: programs where the verdicts disagree ({len(disagreements.rows)})",
                      html_table(disagreements, query="import_disagreements"))
            + "</section>")
    return html, 0


def _failure_section(data: _Data) -> tuple[str, int]:
    t = data.q("failure_taxonomy_by_model_quant")
    recs = t.records()
    rows = [_label(r) for r in recs]
    shares = {(_label(r), s): r[s] for r in recs for s in STATUS_ORDER if r.get(s)}
    chart = charts.stacked_share_chart(rows, STATUS_ORDER, shares, chart_id="chart-failures",
                                       title="verdict shares per model × quant", colors=charts.STATUS_COLORS)
    chat = (' A chat reply with no Lua in it is <em>no code</em>, never scored; a chat config is labelled '
            'with its prompt style.' if any((r.get('prompt_style') or 'completion') != 'completion' for r in recs) else '')
    html = ('<section id="failures"><h2>How the programs fail</h2>'
            '<p class="lede">Share of samples by verdict. Syntax errors climbing at low bits mean the model '
            f'lost the language, not just the algorithm.{chat}</p>'
            f'<figure class="chart-card">{chart}</figure>'
            + details("Table: failure taxonomy", html_table(t, query="failure_taxonomy_by_model_quant"))
            + "</section>")
    return html, (1 if rows else 0)


def _styles_section(data: _Data, p1: Table) -> tuple[str, int]:
    """Completion and chat side by side; nothing when no sample was generated in chat style."""
    recs = p1.records()
    present = {r.get("prompt_style") or "completion" for r in recs}
    if "chat" not in present:
        return "", 0
    from lqbench.prompt_styles import PROMPT_STYLES

    styles = [s for s in PROMPT_STYLES if s in present]  # completion, the reference study's way, first
    groups = list(dict.fromkeys(f"{r['model']} {_q(r['quant'])}" for r in recs))
    values = {(f"{r['model']} {_q(r['quant'])}", r["prompt_style"]): r["pass_at_1"] for r in recs}
    chart = charts.grouped_bar_chart(groups, styles, values, chart_id="chart-styles",
                                     title="pass@1 by prompt style", ylabel="pass@1",
                                     yfmt=lambda v: f"{100 * v:.3g}%",
                                     colors={s: charts.PALETTE[i % len(charts.PALETTE)] for i, s in enumerate(styles)},
                                     height=340, min_top=0.1)
    paired = data.q("pass_at_1_by_prompt_style")
    extraction = data.q("chat_extraction_by_model_quant")
    both = ("Both styles ran on the same model files: the paired table compares them task by task."
            if paired.rows else "Only chat samples here: run the same models with prompt_style = "
                                "[\"completion\", \"chat\"] to compare the two.")
    html = ('<section id="styles"><h2>Completion and chat</h2>'
            '<p class="lede">Completion continues the task\'s prompt (MultiPL-E, the reference study); chat asks '
            'through the model\'s chat template and scores the code taken from its reply. '
            f'{_t(both)}</p>'
            f'<figure class="chart-card">{chart}</figure>'
            + details("Table: pass@1 in both styles on the same tasks",
                      html_table(paired, query="pass_at_1_by_prompt_style"), True)
            + details("Table: how chat replies became programs",
                      html_table(extraction, query="chat_extraction_by_model_quant"))
            + "</section>")
    return html, 1


def _quality_section(data: _Data) -> tuple[str, int]:
    t = data.q("quality_proxy_vs_pass_at_1")
    recs = t.records()
    if not recs:
        return ('<section id="quality"><h2>Perplexity and KL divergence against pass@1</h2>'
                + charts.empty_chart("No perplexity rows yet: add a perplexity task to the plan.")
                + "</section>"), 0
    corpora = list(dict.fromkeys(r["corpus"] for r in recs))
    corpus = max(corpora, key=lambda c: sum(r["corpus"] == c for r in recs))
    mine = [r for r in recs if r["corpus"] == corpus]

    def r_note(key: str) -> str:
        v = mine[0][key]
        return f"Pearson r = {v:+.2f} across all configs" if v is not None else "r undefined (too few configs)"

    ppl_pts = [charts.Point(x=r["ppl"], y=r["pass_at_1"], group=_model(r), label=_q(r["quant"]))
               for r in mine if r["ppl"]]
    kld_pts = [charts.Point(x=r["kld_mean"], y=r["pass_at_1"], group=_model(r), label=_q(r["quant"]))
               for r in mine if r["kld_mean"] is not None]
    c1 = charts.scatter_chart(ppl_pts, chart_id="chart-ppl", title=f"perplexity vs pass@1 on {corpus}",
                              xlabel=f"perplexity on {corpus} (log scale)", ylabel="pass@1", xlog=True,
                              connect_groups=True, note=r_note("corr_ppl_all"), width=560, height=400)
    c2 = charts.scatter_chart(kld_pts, chart_id="chart-kld", title="KL divergence to the base vs pass@1",
                              xlabel="mean KL divergence to the base model (nats/token)", ylabel="pass@1",
                              xfmt=lambda v: f"{v:g}", connect_groups=True, note=r_note("corr_kld_all"),
                              width=560, height=400)
    html = ('<section id="quality"><h2>Does perplexity predict pass@1?</h2>'
            '<p class="lede">Perplexity and KL divergence cost minutes, a benchmark hours. Within one model, '
            'lines connect its quants; a strongly negative correlation means the cheap proxy ranks quants '
            'the way the benchmark does.</p>'
            f'<div class="two-up"><figure class="chart-card">{c1}</figure><figure class="chart-card">{c2}</figure></div>'
            + details("Table: quality proxy with correlations", html_table(t, query="quality_proxy_vs_pass_at_1"))
            + "</section>")
    return html, (1 if ppl_pts else 0) + (1 if kld_pts else 0)


def _hardware_section(data: _Data) -> tuple[str, int]:
    norm = data.q("speed_across_nodes_normalized")
    div = data.q("greedy_divergence_between_nodes")
    cost = data.q("sweep_cost_projection")
    nodes = {}
    for r in norm.records():
        nodes.setdefault(r["node"], r["node_gen_relative_geomean"])
    crecs = cost.records()
    values = {(r["node"], "projected hours"): r["projected_hours"] for r in crecs if r["projected_hours"]}
    chart = charts.grouped_bar_chart([r["node"] for r in crecs], ["projected hours"], values,
                                     chart_id="chart-sweep-cost",
                                     title="projected hours for the reference study's 608 tasks × 18 configs",
                                     ylabel="projected hours", yfmt=lambda v: f"{v:,.0f}",
                                     colors={"projected hours": charts.PALETTE[0]},
                                     group_colors={r["node"]: charts.PALETTE[2] for r in crecs if r["node_id"] is None},
                                     height=320, ref_line=(87.9, "reference study: 87.9 h on one Core i5 laptop"))
    replicated = data.sql(
        "SELECT count(*) AS n FROM (SELECT 1 FROM samples WHERE coalesce(temperature, 0) = 0"
        + (" AND run_id = $run_id" if data.params else "")
        + " GROUP BY run_id, model_id, prompt_style, suite, task_id, sample_idx HAVING count(DISTINCT node_id) >= 2)",
        data.params or None).rows[0][0]
    if replicated:
        det = (f"{replicated - len(div.rows)} of {replicated} greedy samples generated on two or more nodes came out "
               f"byte-identical everywhere; {len(div.rows)} differ"
               + (f", {sum(1 for r in div.records() if r['verdict_differs'])} of them with a different verdict."
                  if div.rows else "."))
    else:
        det = "No greedy sample ran on more than one node yet (use every-node placement to check determinism)."
    html = ('<section id="hardware"><h2>Across hardware</h2>'
            '<p class="lede">The same config on different laptops, each node\'s speed relative to the fastest, '
            'whether greedy decoding gives the same program everywhere, and what the reference study\'s full '
            'matrix would cost here.</p>'
            f'<p class="callout">{_t(det)}</p>'
            f'<figure class="chart-card">{chart}</figure>'
            + details("Table: speed relative to the fastest node", html_table(norm, query="speed_across_nodes_normalized",
                                                                               hide=("node_id",)))
            + details(f"Table: greedy completions that differ between nodes ({len(div.rows)})",
                      html_table(div, query="greedy_divergence_between_nodes"))
            + details("Table: sweep cost projection (assumptions in the query's header)",
                      html_table(cost, query="sweep_cost_projection"), True)
            + "</section>")
    return html, (1 if values else 0)


def _energy_section(data: _Data) -> tuple[str, int]:
    """Joules per generated token by bits per weight, one line per node × model; honest when nothing was metered."""
    t = data.q("energy_per_token_by_node_model_quant")
    recs = t.records()
    measured = [r for r in recs if r["j_per_token"] is not None and r["bits_per_weight"]]
    unmetered = sorted({r["node"] for r in recs if r["energy_method"] == "none"})
    series: dict[str, charts.Series] = {}
    for r in sorted(measured, key=lambda r: r["bits_per_weight"]):
        name = f"{r['node']} · {r['model']} ({r['energy_method']})"
        s = series.setdefault(name, charts.Series(name=name, points=[], labels=[]))
        s.points.append((r["bits_per_weight"], r["j_per_token"]))
        s.labels.append(_q(r["quant"]))
    if series:
        chart = charts.line_chart(list(series.values()), chart_id="chart-energy",
                                  title="joules per generated token by bits per weight",
                                  xlabel="bits per weight (log scale)", ylabel="joules per generated token",
                                  xlog2=True, y01=False, yfmt=lambda v: f"{v:.3g}")
        figure = f'<figure class="chart-card">{chart}</figure>'
    elif recs:
        figure = charts.empty_chart(
            "no energy data: method none on every node that ran shards ("
            + ", ".join(unmetered) + "): no RAPL counter or battery discharge was readable there, "
            "and no estimate is drawn in its place (`lqbench doctor` says what would make it readable)")
    else:
        figure = charts.empty_chart("no energy data: no shard with samples recorded yet")
    missing = (f'<p class="callout">Shards without energy data (method none) on {_t(", ".join(unmetered))} '
               "are left out of the chart rather than estimated.</p>") if series and unmetered else ""
    throttled = data.q("throttled_shards")
    html = ('<section id="energy"><h2>Cost in energy</h2>'
            '<p class="lede">Joules per generated token, from each node\'s own energy counters read before and '
            'after every shard (RAPL package or platform counters, or the battery\'s discharge; the method is in '
            'each line\'s name). Methods measure different things — the CPU package, the platform, the whole '
            'laptop — so compare lines of the same method.</p>'
            + figure + missing
            + details("Table: energy per token and per passed task", html_table(
                t, query="energy_per_token_by_node_model_quant", hide=("node_id",)))
            + details(f"Table: throttled shards ({len(throttled.rows)})",
                      html_table(throttled, query="throttled_shards"))
            + "</section>")
    return html, (1 if series else 0)


def _provenance_section(data: _Data, run_id: str | None, db: Path) -> str:
    where = "WHERE r.run_id = $run_id" if run_id else ""
    runs = data.sql(
        "SELECT r.run_id, r.plan_name, r.status, r.started_at, r.finished_at, r.lqbench_version,"
        " (SELECT count(*) FROM samples s WHERE s.run_id = r.run_id) AS samples, r.config_json"
        f" FROM runs r {where} ORDER BY r.started_at", data.params or None)
    nodes = data.sql(
        "SELECT hostname, node_id, cpu_model, physical_cores, logical_cores, ram_gb, os, arch, mem_bandwidth_gbs,"
        " llama_cpp_version, labels_json, first_seen, last_seen FROM nodes ORDER BY hostname")
    models = data.sql(
        "SELECT name, quant, model_id, left(sha256, 16) AS sha256_prefix, round(file_bytes / 1e6, 1) AS file_mb,"
        " n_params, round(bits_per_weight, 3) AS bits_per_weight, requantized, architecture, path"
        " FROM models ORDER BY name, bits_per_weight")
    schema = data.sql("SELECT max(version) AS v FROM schema_migrations").rows[0][0]
    plans = "".join(
        details(f"plan of run {r['run_id']} ({r['plan_name'] or 'unnamed'})",
                f'<pre>{_t(_pretty_json(r["config_json"]))}</pre>')
        for r in runs.records())
    import duckdb

    from lqbench import __version__

    meta = (f"lqbench {__version__} · DuckDB {duckdb.__version__} · schema v{schema} · file {db}"
            + (f" · run {run_id}" if run_id else " · all runs"))
    return ('<section id="provenance"><h2>Provenance</h2>'
            f'<p class="muted">{_t(meta)}</p>'
            '<h3>Runs</h3>' + html_table(runs, hide=("config_json",)) + plans
            + '<h3>Nodes</h3>' + html_table(nodes)
            + '<h3>Models</h3>' + html_table(models)
            + _batching_provenance(data)
            + "</section>")


def _batching_provenance(data: _Data) -> str:
    """How the samples were decoded (one at a time or batched, lqbench.batched), and what batching changed
    where the file holds the same samples made both ways (the parallel_agreement query)."""
    where = "WHERE s.run_id = $run_id" if data.params else ""
    made = data.sql(
        "SELECT s.run_id, coalesce(n.hostname, s.node_id) AS node, m.name AS model, m.quant,"
        " s.n_parallel, count(*) AS samples FROM samples s JOIN models m USING (model_id)"
        f" LEFT JOIN nodes n USING (node_id) {where} GROUP BY ALL ORDER BY ALL", data.params or None)
    agreement = data.q("parallel_agreement")
    if agreement.rows:
        finding = "".join(
            f"<li>{_t(r['model'])} {_t(_q(r['quant']))}, {r['n_parallel']} sequences vs one: "
            f"{r['identical']} of {r['n_pairs']} completions byte-identical ({100 * r['identical_rate']:.1f} %), "
            f"{r['verdict_flips']} verdicts flipped ({100 * r['flip_rate']:.1f} %)</li>"
            for r in agreement.records())
        finding = f"<ul>{finding}</ul>"
    else:
        finding = ('<p class="muted">This file holds no sample made both one at a time and batched, so what '
                   'batching changes is not measured here (run the plan again with <code>[inference] parallel = 1'
                   '</code>, or see <code>bench/bench_batched.py</code>).</p>')
    return ('<h3>Batched decoding</h3>'
            '<p>Samples with <code>n_parallel</code> &gt; 1 were decoded several at a time in one llama.cpp '
            'context; llama.cpp does not promise bit-identical logits across batch shapes, so a greedy completion '
            'can differ from the one-at-a-time one. Their timings are throughput, not single-stream speed.</p>'
            + finding + html_table(made)
            + details("Table: parallel agreement", html_table(agreement, query="parallel_agreement")))


def _pretty_json(text: str | None) -> str:
    try:
        return json.dumps(json.loads(text or "{}"), indent=2, sort_keys=True)
    except ValueError:
        return text or ""


# ----------------------------------------------------------------- entry point
def build_report(db: Path | str, out: Path | str = "report.html", run_id: str | None = None) -> ReportResult:
    """Write the self-contained HTML report for a results file; return where and how big."""
    db, out = Path(db), Path(out)
    data = _Data(db, run_id)
    p1 = data.q("pass_at_1_by_model_quant")
    eff = data.q("efficiency_by_node_model_quant")
    cards, n_samples = _summary_cards(data, p1.records(), eff.records(), run_id)
    parts = [
        _accuracy_section(data),
        _pareto_section(data),
        _speed_section(data, eff),
        _styles_section(data, p1),
        _failure_section(data),
        _quality_section(data),
        _hardware_section(data),
        _energy_section(data),
        _imported_section(data),
    ]
    body = cards + "".join(html for html, _ in parts) + _provenance_section(data, run_id, db)
    sections = {"accuracy": "Accuracy by bits", "pareto": "Size", "speed": "Speed",
                **({"styles": "Prompt styles"} if parts[3][0] else {}), "failures": "Failures",
                "quality": "Quality proxy", "hardware": "Across hardware", "energy": "Energy",
                **({"imported": "Imported"} if parts[-1][0] else {}),  # no imported runs: no section, no link
                "provenance": "Provenance"}
    nav = "".join(f'<a href="#{s}">{label}</a>' for s, label in sections.items())
    assets = resources.files("lqbench.report")
    template = string.Template(assets.joinpath("template.html").read_text(encoding="utf-8"))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{n_samples:,} samples · {'run ' + run_id if run_id else 'all runs'} · generated {generated}"
    html = template.substitute(
        title="lqbench report",
        subtitle=_t(subtitle),
        style=assets.joinpath("style.css").read_text(encoding="utf-8"),
        nav=nav,
        body=body,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return ReportResult(path=out, bytes=out.stat().st_size, n_samples=n_samples,
                        n_charts=sum(n for _, n in parts), sections=list(sections))
