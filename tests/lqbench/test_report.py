"""`lqbench report`: the HTML file is self-contained, and Chromium really renders its charts."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser

import pytest

from lqbench.report import build_report
from lqbench.report.charts import PALETTE, STATUS_COLORS

CHART_IDS = ["chart-pass-by-bits", "chart-pareto", "chart-speed", "chart-prompt-speed", "chart-styles",
             "chart-failures", "chart-ppl", "chart-kld", "chart-sweep-cost", "chart-energy"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, analysis_db):
    d = tmp_path_factory.mktemp("report")
    info = analysis_db
    result = build_report(info.path, d / "report.html")
    return info, result


class _Marks(HTMLParser):
    """Per chart id: how many marks of each kind, and each mark's series."""

    def __init__(self):
        super().__init__()
        self.charts: dict[str, list[tuple[str, str]]] = {}
        self.current: str | None = None
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.current = a["id"]
            self.charts[self.current] = []
        elif self.current and "mark" in (a.get("class") or "").split():
            self.charts[self.current].append((a["class"], a.get("data-series", "")))

    def handle_endtag(self, tag):
        if tag == "svg":
            self.current = None


def test_report_is_self_contained_and_has_every_chart(built):
    info, result = built
    html = result.path.read_text(encoding="utf-8")
    # nothing to fetch: no scripts, stylesheets, images, fonts or any URL but the SVG namespace name
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    assert "url(" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    parser = _Marks()
    parser.feed(html)
    assert list(parser.charts) == CHART_IDS
    marks = parser.charts
    # the key figure: one line per model and prompt style, one point per model x quant x style
    assert sorted(s for c, s in marks["chart-pass-by-bits"] if "line" in c) == [
        "gemma-3-270m", "tinycoder-1b", "tinycoder-1b (chat)"]
    assert sum("point" in c for c, _ in marks["chart-pass-by-bits"]) == 8 + 2
    assert sum("front" in c for c, _ in marks["chart-pareto"]) == 1
    # node x config pairs that ran samples (13) or only a speed probe (1)
    assert sum("bar" in c for c, _ in marks["chart-speed"]) == 14
    assert "2 node × config pair(s) from the speed probe" in html and "12 from sample timings" in html
    assert {s for _, s in marks["chart-failures"]} >= {"pass", "syntax_error", "assertion_failure"}
    assert sum("point" in c for c, _ in marks["chart-ppl"]) == 8 + 2
    # both styles side by side: a bar per style for the configs that ran in both, one for the rest
    assert sum("bar" in c for c, _ in marks["chart-styles"]) == 8 + 2
    assert {s for _, s in marks["chart-styles"]} == {"completion", "chat"}
    assert "no_code" in {s for _, s in marks["chart-failures"]}
    # tables behind the charts and provenance
    for text in ("lqbench query pass_at_1_by_model_quant", "lqbench query accuracy_vs_size_pareto",
                 "lqbench query sweep_cost_projection", "ryzen-desk", "AMD Ryzen 7 7840U", "fixture-every-node",
                 "&quot;placement&quot;: &quot;every-node&quot;", "schema v",
                 "lqbench query pass_at_1_by_prompt_style", "lqbench query chat_extraction_by_model_quant",
                 "tinycoder-1b (chat) Q2_K"):
        assert text in html, text
    assert result.n_samples == 520 and result.n_charts == len(CHART_IDS)


def test_report_of_an_empty_results_file_still_builds(tmp_path):
    from lqbench.store import ResultStore

    ResultStore(tmp_path / "empty.duckdb").ensure()
    result = build_report(tmp_path / "empty.duckdb", tmp_path / "empty.html")
    html = result.path.read_text(encoding="utf-8")
    assert result.n_samples == 0 and result.n_charts == 0 and html.count('class="empty-chart"') >= 5


def test_report_for_one_run(built, tmp_path):
    info, _ = built
    result = build_report(info.path, tmp_path / "one.html", run_id="run-sampled")
    html = result.path.read_text(encoding="utf-8")
    assert result.n_samples == 200 and "run run-sampled" in html
    parser = _Marks()
    parser.feed(html)
    assert sum("point" in c for c, _ in parser.charts["chart-pass-by-bits"]) == 2
    assert "chart-styles" not in parser.charts and 'id="styles"' not in html  # no chat samples in that run


def test_report_cli(built, tmp_path, monkeypatch, capsys):
    from lqbench.cli import main

    info, _ = built
    out = tmp_path / "cli.html"
    monkeypatch.setattr(sys, "argv", ["lqbench", "report", "--db", str(info.path), "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None) and out.stat().st_size > 20_000
    assert "10 charts over 520 samples" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["lqbench", "report", "--db", str(tmp_path / "none.duckdb")])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "no results file" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ rendering in Chromium
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Injected into a test-only copy of the report: after layout, write every chart's page rectangle and how
# many of its marks have nonzero rendered geometry into the DOM, for --dump-dom to print.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = {height: document.documentElement.scrollHeight, charts: []};
  for (const svg of document.querySelectorAll('svg.chart')) {
    const r = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('.mark')];
    const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
    out.charts.push({id: svg.id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
                     marks: marks.length, drawn: drawn.length});
  }
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def decode_png(data: bytes) -> tuple[int, int, int, bytearray]:
    """Width, height, bytes per pixel and raw pixels of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, bpp, out


def _hex(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: ./setup.sh --test)")
def test_chromium_renders_the_charts(built, tmp_path):
    _, result = built
    html = result.path.read_text(encoding="utf-8")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2000",
                          "--dump-dom", probe_page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, dom.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    charts = {c["id"]: c for c in probe["charts"]}
    assert list(charts) == CHART_IDS
    for c in charts.values():
        # every chart is laid out at a real size and every mark in it has rendered geometry
        assert c["w"] > 300 and c["h"] > 150 and c["marks"] > 0 and c["drawn"] == c["marks"], c

    # Screenshot the real report (no script), whole page, at half scale to keep the PNG small to decode.
    scale = 0.5
    png = tmp_path / "report.png"
    shot = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}",
                           f"--force-device-scale-factor={scale}", f"--screenshot={png}",
                           f"--window-size=1280,{int(probe['height']) + 10}", result.path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert png.exists(), shot.stderr[-2000:]
    w, h, bpp, pixels = decode_png(png.read_bytes())
    assert w == int(1280 * scale)

    def region_colors(c) -> dict[tuple[int, int, int], int]:
        counts: dict = {}
        x0, y0 = int(c["x"] * scale), int(c["y"] * scale)
        x1, y1 = min(w, int((c["x"] + c["w"]) * scale)), min(h, int((c["y"] + c["h"]) * scale))
        for y in range(y0, y1):
            row = pixels[(y * w + x0) * bpp:(y * w + x1) * bpp]
            for i in range(0, len(row), bpp):
                key = (row[i], row[i + 1], row[i + 2])
                counts[key] = counts.get(key, 0) + 1
        return counts

    def has_color(counts, color: str, tolerance: int = 24, min_pixels: int = 4) -> bool:
        r, g, b = _hex(color)
        return sum(n for (r2, g2, b2), n in counts.items()
                   if abs(r - r2) <= tolerance and abs(g - g2) <= tolerance and abs(b - b2) <= tolerance) >= min_pixels

    expected = {
        "chart-pass-by-bits": [PALETTE[0], PALETTE[1]],   # one line per model
        "chart-pareto": [PALETTE[0], PALETTE[1]],
        "chart-speed": [PALETTE[0], PALETTE[1], PALETTE[2]],  # one bar colour per node
        "chart-failures": [STATUS_COLORS["pass"], STATUS_COLORS["assertion_failure"], STATUS_COLORS["syntax_error"]],
        "chart-sweep-cost": [PALETTE[0], PALETTE[2]],
    }
    for chart_id, colors in expected.items():
        counts = region_colors(charts[chart_id])
        assert len(counts) >= 12, f"{chart_id} looks blank: {len(counts)} colours"
        for color in colors:
            assert has_color(counts, color), f"{chart_id}: no {color} pixels"
    # for contrast, the page's left margin beside the content is nearly uniform
    blank = region_colors({"x": 0, "y": 1000, "w": 60, "h": 400})
    assert len(blank) < 12
