"""Inline SVG charts for the HTML report, drawn from plain Python values (no plotting library, no JS).

Each function returns one `<svg>` element as a string, sized by a viewBox so it scales with the page,
with axes, gridlines, a legend and a `<title>` tooltip on every mark. Text inherits the page's font.
Marks carry `class="mark"` and a `data-series` so tests can find what was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Callable, Sequence

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D31", "#000000"]
STATUS_COLORS = {
    "pass": "#2E9E6A",
    "assertion_failure": "#E69F00",
    "runtime_error": "#D55E00",
    "syntax_error": "#8E5BB5",
    "timeout": "#4A7FB0",
    "memory_limit": "#8C6D31",
    "sandbox_violation": "#222222",
    "generation_error": "#B8B8B8",
    "no_code": "#CC79A7",  # a chat reply with no Lua in it
}
INK = "#1f2430"
MUTED = "#6b7280"
GRID = "#e5e7eb"


def color_for(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def text_width(text: str, font_px: float = 12.5) -> float:
    """Rough rendered width of a label (DejaVu/Helvetica-like sans: ~0.62 em per character)."""
    return 0.62 * font_px * len(text)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.0f}"


def _t(text: object) -> str:
    return escape(str(text), quote=True)


# ----------------------------------------------------------------- scales and ticks
def nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def linear_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    step = nice_step(hi - lo, target)
    start = math.floor(lo / step + 1e-9) * step
    ticks, v = [], start
    while v <= hi + step * 1e-6:
        if v >= lo - step * 1e-6:
            ticks.append(round(v, 10))
        v += step
    return ticks


def log_ticks(lo: float, hi: float, mantissas: Sequence[float] = (1, 2, 5)) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in mantissas:
            v = m * 10 ** e
            if lo * 0.999 <= v <= hi * 1.001:
                out.append(v)
    return out


@dataclass
class Scale:
    lo: float
    hi: float
    a: float  # pixel of lo
    b: float  # pixel of hi
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:
            lo, hi, v = math.log(self.lo), math.log(self.hi), math.log(max(v, 1e-300))
        else:
            lo, hi = self.lo, self.hi
        if hi == lo:
            return (self.a + self.b) / 2
        return self.a + (v - lo) / (hi - lo) * (self.b - self.a)


def _pad_domain(values: Sequence[float], log: bool, floor0: bool = False) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = max(lo, 1e-12), max(hi, 1e-12)
        if hi / lo < 1.5:
            lo, hi = lo / 1.3, hi * 1.3
        return lo / 1.15, hi * 1.15
    if hi == lo:
        lo, hi = lo - (abs(lo) or 1) * 0.5, hi + (abs(hi) or 1) * 0.5
    pad = (hi - lo) * 0.08
    lo = 0.0 if floor0 and lo >= 0 else lo - pad
    return lo, hi + pad


# ----------------------------------------------------------------- frame
@dataclass
class Frame:
    """A plot area inside an SVG: margins, scales, and the parts drawn so far."""

    width: int = 900
    height: int = 420
    left: int = 64
    right: int = 24
    top: int = 40
    bottom: int = 56
    parts: list[str] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top

    def add(self, svg: str) -> None:
        self.parts.append(svg)

    def axes(self, xs: Scale, ys: Scale, xticks, yticks, xfmt: Callable, yfmt: Callable,
             xlabel: str, ylabel: str, xgrid: bool = True) -> None:
        for v in yticks:
            y = ys(v)
            self.add(f'<line x1="{_f(self.x0)}" x2="{_f(self.x1)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
            self.add(f'<text x="{_f(self.x0 - 8)}" y="{_f(y + 4)}" text-anchor="end" class="tick">{_t(yfmt(v))}</text>')
        for v in xticks:
            x = xs(v)
            if xgrid:
                self.add(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(self.y1)}" y2="{_f(self.y0)}" stroke="{GRID}"/>')
            self.add(f'<text x="{_f(x)}" y="{_f(self.y0 + 18)}" text-anchor="middle" class="tick">{_t(xfmt(v))}</text>')
        self.add(f'<line x1="{_f(self.x0)}" x2="{_f(self.x1)}" y1="{_f(self.y0)}" y2="{_f(self.y0)}" stroke="{INK}"/>')
        self.add(f'<line x1="{_f(self.x0)}" x2="{_f(self.x0)}" y1="{_f(self.y1)}" y2="{_f(self.y0)}" stroke="{INK}"/>')
        self.add(f'<text x="{_f((self.x0 + self.x1) / 2)}" y="{_f(self.height - 14)}" text-anchor="middle"'
                 f' class="axis-label">{_t(xlabel)}</text>')
        cy = (self.y0 + self.y1) / 2
        self.add(f'<text transform="translate(16 {_f(cy)}) rotate(-90)" text-anchor="middle"'
                 f' class="axis-label">{_t(ylabel)}</text>')

    def legend(self, items: Sequence[tuple[str, str]], kind: str = "line") -> None:
        """One row of swatches above the plot area, wrapping when long."""
        x, y = self.x0, 18.0
        for label, color in items:
            w = 40 + text_width(label)
            if x + w > self.x1 and x > self.x0:
                x, y = self.x0, y + 16
            if kind == "line":
                self.add(f'<line x1="{_f(x)}" x2="{_f(x + 16)}" y1="{_f(y - 4)}" y2="{_f(y - 4)}" stroke="{color}"'
                         f' stroke-width="3"/><circle cx="{_f(x + 8)}" cy="{_f(y - 4)}" r="3.5" fill="{color}"/>')
            else:
                self.add(f'<rect x="{_f(x)}" y="{_f(y - 10)}" width="12" height="12" rx="2" fill="{color}"/>')
            self.add(f'<text x="{_f(x + 21)}" y="{_f(y)}" class="legend">{_t(label)}</text>')
            x += w

    def svg(self, title: str, chart_id: str) -> str:
        return (f'<svg class="chart" id="{_t(chart_id)}" viewBox="0 0 {self.width} {self.height}"'
                f' width="{self.width}" height="{self.height}" role="img" aria-label="{_t(title)}"'
                f' xmlns="http://www.w3.org/2000/svg"><title>{_t(title)}</title>' + "".join(self.parts) + "</svg>")


def empty_chart(message: str) -> str:
    return f'<div class="empty-chart">{_t(message)}</div>'


def pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _legend_top(labels: Sequence[str], width: int) -> int:
    """Top margin that leaves room for the legend rows `Frame.legend` will draw."""
    rows, x = 1, 0.0
    for label in labels:
        w = 40 + text_width(label)
        if x + w > width - 90 and x > 0:
            rows, x = rows + 1, 0.0
        x += w
    return 32 + 16 * rows


# ----------------------------------------------------------------- charts
@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]  # (x, y)
    labels: list[str] = field(default_factory=list)  # per point, shown next to it
    low: list[float | None] = field(default_factory=list)  # per point error bar (optional)
    high: list[float | None] = field(default_factory=list)


def line_chart(series: Sequence[Series], *, chart_id: str, title: str, xlabel: str, ylabel: str,
               xlog2: bool = False, y01: bool = True, yfmt: Callable = pct) -> str:
    """Lines through points sorted by x, optional error bars; x may be log2 (bits per weight)."""
    pts = [p for s in series for p in s.points]
    if not pts:
        return empty_chart(f"{title}: no data yet")
    # When every series has the same label at an x (the quant at a bit width), say it once under the axis.
    shared: dict[float, set[str]] = {}
    for s in series:
        for j, (x, _) in enumerate(s.points):
            shared.setdefault(round(x, 6), set()).add(s.labels[j] if j < len(s.labels) else "")
    axis_labels = (len(series) > 1 and all(len(v) == 1 and "" not in v for v in shared.values()))
    fr = Frame(top=_legend_top([s.name for s in series], 900), bottom=74 if axis_labels else 56)
    xs_v = [p[0] for p in pts]
    if xlog2:
        lo, hi = min(xs_v) / 1.25, max(xs_v) * 1.25
        xs = Scale(lo, hi, fr.x0, fr.x1, log=True)
        xticks = [v for v in (1, 1.5, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32) if lo <= v <= hi]
        if len(xticks) < 4:  # a narrow ladder (e.g. 6.9-8.5 bits): finer ticks
            xticks = [v for v in (1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 9, 10, 11, 12, 14, 16,
                                  20, 24, 32) if lo <= v <= hi]
        xfmt = lambda v: f"{v:g}"
    else:
        lo, hi = _pad_domain(xs_v, False)
        xs = Scale(lo, hi, fr.x0, fr.x1)
        xticks = linear_ticks(lo, hi)
        xfmt = lambda v: f"{v:g}"
    if y01:
        ys_all = [p[1] for p in pts] + [v for s in series for v in s.high if v is not None]
        yhi = min(1.0, max(0.1, max(ys_all) * 1.1))
        yhi = math.ceil(yhi * 10) / 10
        ys = Scale(0.0, yhi, fr.y0, fr.y1)
        yticks = linear_ticks(0.0, yhi)
    else:
        ylo, yhi = _pad_domain([p[1] for p in pts], False, floor0=True)
        ys = Scale(ylo, yhi, fr.y0, fr.y1)
        yticks = linear_ticks(ylo, yhi)
    fr.axes(xs, ys, xticks, yticks, xfmt, yfmt, xlabel, ylabel)
    if axis_labels:
        for x, (label,) in shared.items():
            fr.add(f'<text x="{_f(xs(x))}" y="{_f(fr.y0 + 34)}" text-anchor="middle" class="axis-quant">{_t(label)}</text>')
    placed: list[tuple[float, float, float]] = []
    for i, s in enumerate(series):
        color = color_for(i)
        order = sorted(range(len(s.points)), key=lambda j: s.points[j][0])
        path = " ".join(("M" if k == 0 else "L") + f"{_f(xs(s.points[j][0]))},{_f(ys(s.points[j][1]))}"
                        for k, j in enumerate(order))
        if len(order) > 1:  # a one-point series is its point (a one-point path has no size to draw)
            fr.add(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round"'
                   f' class="mark line" data-series="{_t(s.name)}"/>')
        # error bars of different series at the same x are spread sideways so they stay readable
        dodge = (i - (len(series) - 1) / 2) * 5
        for j in order:
            x, y = s.points[j]
            px, py = xs(x), ys(y)
            lo_v = s.low[j] if j < len(s.low) else None
            hi_v = s.high[j] if j < len(s.high) else None
            if lo_v is not None and hi_v is not None:
                ex = px + dodge
                fr.add(f'<line x1="{_f(ex)}" x2="{_f(ex)}" y1="{_f(ys(lo_v))}" y2="{_f(ys(hi_v))}" stroke="{color}"'
                       f' stroke-width="1.5" opacity="0.55"/>'
                       f'<line x1="{_f(ex - 4)}" x2="{_f(ex + 4)}" y1="{_f(ys(lo_v))}" y2="{_f(ys(lo_v))}"'
                       f' stroke="{color}" opacity="0.55"/>'
                       f'<line x1="{_f(ex - 4)}" x2="{_f(ex + 4)}" y1="{_f(ys(hi_v))}" y2="{_f(ys(hi_v))}"'
                       f' stroke="{color}" opacity="0.55"/>')
            label = s.labels[j] if j < len(s.labels) else ""
            tip = f"{s.name} {label}: {yfmt(y)} at {xfmt(x)}" + (
                f" (95% CI {yfmt(lo_v)}–{yfmt(hi_v)})" if lo_v is not None and hi_v is not None else "")
            fr.add(f'<circle cx="{_f(px)}" cy="{_f(py)}" r="5" fill="{color}" stroke="#fff" stroke-width="1.5"'
                   f' class="mark point" data-series="{_t(s.name)}"><title>{_t(tip)}</title></circle>')
            if label and not axis_labels:
                lx, ly, lw = px + 7, py - 8, text_width(label, 11)
                while any(abs(ly - y) < 12 and lx < x + w and x < lx + lw for x, y, w in placed):
                    ly -= 12
                placed.append((lx, ly, lw))
                fr.add(f'<text x="{_f(lx)}" y="{_f(ly)}" class="point-label">{_t(label)}</text>')
    fr.legend([(s.name, color_for(i)) for i, s in enumerate(series)])
    return fr.svg(title, chart_id)


@dataclass
class Point:
    x: float
    y: float
    group: str
    label: str
    hollow: bool = False


def scatter_chart(points: Sequence[Point], *, chart_id: str, title: str, xlabel: str, ylabel: str,
                  xlog: bool = False, xfmt: Callable = lambda v: f"{v:g}", yfmt: Callable = pct,
                  front: Sequence[tuple[float, float]] = (), connect_groups: bool = False,
                  note: str = "", width: int = 900, height: int = 420) -> str:
    """Points coloured by group; hollow ones are drawn outlined; an optional step line for a Pareto front."""
    if not points:
        return empty_chart(f"{title}: no data yet")
    groups = list(dict.fromkeys(p.group for p in points))
    fr = Frame(width=width, height=height, top=_legend_top(groups, width))
    lo, hi = _pad_domain([p.x for p in points], xlog)
    xs = Scale(lo, hi, fr.x0, fr.x1, log=xlog)
    xticks = log_ticks(lo, hi) if xlog else linear_ticks(lo, hi)
    if xlog and len(xticks) < 3:
        xticks = log_ticks(lo, hi, (1, 1.5, 2, 3, 5, 7))
    yhi = math.ceil(min(1.0, max(0.1, max(p.y for p in points) * 1.12)) * 10) / 10
    ys = Scale(0.0, yhi, fr.y0, fr.y1)
    fr.axes(xs, ys, xticks, linear_ticks(0.0, yhi), xfmt, yfmt, xlabel, ylabel)
    if connect_groups:
        for gi, g in enumerate(groups):
            mine = sorted((p for p in points if p.group == g), key=lambda p: p.x)
            if len(mine) > 1:
                d = " ".join(("M" if k == 0 else "L") + f"{_f(xs(p.x))},{_f(ys(p.y))}" for k, p in enumerate(mine))
                fr.add(f'<path d="{d}" fill="none" stroke="{color_for(gi)}" stroke-width="1.5" opacity="0.45"/>')
    if front:
        f = sorted(front)
        d = f"M{_f(xs(f[0][0]))},{_f(ys(f[0][1]))}"
        for (x_prev, y_prev), (x, y) in zip(f, f[1:]):
            d += f" L{_f(xs(x))},{_f(ys(y_prev))} L{_f(xs(x))},{_f(ys(y))}"
        d += f" L{_f(fr.x1)},{_f(ys(f[-1][1]))}"
        fr.add(f'<path d="{d}" fill="none" stroke="{INK}" stroke-width="1.5" stroke-dasharray="5 4"'
               f' class="mark front" data-series="Pareto front"/>')
    placed: list[tuple[float, float, float]] = []  # label boxes so far: (x, y, width)
    for p in points:
        color = color_for(groups.index(p.group))
        px, py = xs(p.x), ys(p.y)
        fill = "#fff" if p.hollow else color
        fr.add(f'<circle cx="{_f(px)}" cy="{_f(py)}" r="6" fill="{fill}" stroke="{color}" stroke-width="2"'
               f' class="mark point" data-series="{_t(p.group)}"><title>{_t(p.group)} {_t(p.label)}:'
               f' {_t(yfmt(p.y))} at {_t(xfmt(p.x))}{" (dominated)" if p.hollow else ""}</title></circle>')
        # above-right of the point: a front line or group line leaves each point horizontally or downwards
        lx, ly, lw = px + 8, py - 8, text_width(p.label, 11)
        # nudge a label down past labels it would overprint (points at nearly the same place)
        while any(abs(ly - y) < 12 and lx < x + w and x < lx + lw for x, y, w in placed):
            ly += 12
        placed.append((lx, ly, lw))
        fr.add(f'<text x="{_f(lx)}" y="{_f(ly)}" class="point-label">{_t(p.label)}</text>')
    items = [(g, color_for(i)) for i, g in enumerate(groups)]
    fr.legend(items, kind="box")
    if front:
        fr.add(f'<text x="{_f(fr.x1)}" y="{_f(fr.y0 - 8)}" text-anchor="end" class="note">'
               f'dashed: Pareto front · hollow: dominated</text>')
    if note:
        fr.add(f'<text x="{_f(fr.x1)}" y="{_f(fr.y1 + 14)}" text-anchor="end" class="note">{_t(note)}</text>')
    return fr.svg(title, chart_id)


def grouped_bar_chart(groups: Sequence[str], series: Sequence[str], values: dict[tuple[str, str], float], *,
                      chart_id: str, title: str, ylabel: str, yfmt: Callable = lambda v: f"{v:g}",
                      colors: dict[str, str] | None = None, group_colors: dict[str, str] | None = None,
                      height: int = 420, ref_line: tuple[float, str] | None = None, min_top: float = 0.0) -> str:
    """Vertical bars: one cluster per group (x), one bar per series in it; missing pairs leave a gap.

    With a single series there is no legend (the axis says it all); `group_colors` recolours whole
    groups (e.g. a total), `ref_line` draws a labelled horizontal reference value; the axis reaches
    at least `min_top` (so that bars of 0 read as 0 on a real scale).
    """
    if not values:
        return empty_chart(f"{title}: no data yet")
    legend = len(series) > 1
    fr = Frame(height=height, top=_legend_top(list(series), 900) if legend else 24, bottom=66)
    slot = (fr.x1 - fr.x0) / max(len(groups), 1)
    # a "model quant" label goes on two lines; if even a line is wider than its slot, it is rotated
    lines = [g.rsplit(" ", 1) if " " in g else [g] for g in groups]
    rotate = max(text_width(part, 12) for ls in lines for part in ls) > slot - 6
    if rotate:
        fr.bottom = int(24 + max(text_width(g, 12) for g in groups) * 0.6)
        fr.left = max(fr.left, int(text_width(groups[0], 12) * 0.8))
    ymax = max(list(values.values()) + ([ref_line[0]] if ref_line else []) + [min_top])
    if ymax <= 0:  # all bars 0: still a scale to read them on
        ymax = 1.0
    yticks = linear_ticks(0.0, ymax * 1.08)
    if yticks[-1] < ymax * 1.08:  # a gridline above the tallest bar, so its height can be read
        yticks.append(yticks[-1] + (yticks[1] - yticks[0] if len(yticks) > 1 else ymax))
    ys = Scale(0.0, max(yticks[-1], ymax * 1.08), fr.y0, fr.y1)
    xs = Scale(0.0, 1.0, fr.x0, fr.x1)
    fr.axes(xs, ys, [], yticks, str, yfmt, "", ylabel, xgrid=False)
    slot = (fr.x1 - fr.x0) / max(len(groups), 1)
    bar_w = min(30.0, slot * 0.8 / max(len(series), 1))
    for gi, g in enumerate(groups):
        cx = fr.x0 + slot * (gi + 0.5)
        start = cx - bar_w * len(series) / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            color = (group_colors or {}).get(g) or (colors or {}).get(s, color_for(si))
            x, y = start + si * bar_w, ys(v)
            fr.add(f'<rect x="{_f(x + 1)}" y="{_f(y)}" width="{_f(bar_w - 2)}" height="{_f(fr.y0 - y)}" rx="2"'
                   f' fill="{color}" class="mark bar" data-series="{_t(s)}"><title>{_t(g)} on {_t(s)}:'
                   f' {_t(yfmt(v))}</title></rect>')
        if rotate:
            fr.add(f'<text transform="translate({_f(cx + 4)} {_f(fr.y0 + 12)}) rotate(-35)" text-anchor="end"'
                   f' class="tick">{_t(g)}</text>')
        else:
            spans = "".join(f'<tspan x="{_f(cx)}" dy="{0 if k == 0 else 14}">{_t(part)}</tspan>'
                            for k, part in enumerate(lines[gi]))
            fr.add(f'<text x="{_f(cx)}" y="{_f(fr.y0 + 18)}" text-anchor="middle" class="tick">{spans}</text>')
    if ref_line:
        ry = ys(ref_line[0])
        fr.add(f'<line x1="{_f(fr.x0)}" x2="{_f(fr.x1)}" y1="{_f(ry)}" y2="{_f(ry)}" stroke="{INK}"'
               f' stroke-dasharray="6 4" class="mark ref" data-series="reference"/>'
               f'<text x="{_f(fr.x1)}" y="{_f(ry - 6)}" text-anchor="end" class="note">{_t(ref_line[1])}</text>')
    if legend:
        fr.legend([(s, (colors or {}).get(s, color_for(i))) for i, s in enumerate(series)], kind="box")
    return fr.svg(title, chart_id)


def stacked_share_chart(rows: Sequence[str], parts: Sequence[str], shares: dict[tuple[str, str], float], *,
                        chart_id: str, title: str, colors: dict[str, str]) -> str:
    """Horizontal 100 % bars: one per row, segments per part (e.g. verdict shares of each config)."""
    if not rows:
        return empty_chart(f"{title}: no data yet")
    present = [p for p in parts if any(shares.get((r, p), 0) > 0 for r in rows)]
    label_w = int(24 + text_width(max(rows, key=len), 12))
    bar_h = 22
    top = _legend_top([p.replace("_", " ") for p in present], 900)
    fr = Frame(height=top + len(rows) * (bar_h + 10) + 44, left=label_w, top=top, bottom=44)
    xs = Scale(0.0, 1.0, fr.x0, fr.x1)
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        x = xs(v)
        fr.add(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(fr.y1 - 4)}" y2="{_f(fr.y0)}" stroke="{GRID}"/>'
               f'<text x="{_f(x)}" y="{_f(fr.y0 + 18)}" text-anchor="middle" class="tick">{pct(v)}</text>')
    for ri, r in enumerate(rows):
        y = fr.y1 + ri * (bar_h + 10)
        fr.add(f'<text x="{_f(fr.x0 - 8)}" y="{_f(y + bar_h / 2 + 4)}" text-anchor="end" class="tick">{_t(r)}</text>')
        acc = 0.0
        for p in present:
            v = shares.get((r, p), 0.0) or 0.0
            if v <= 0:
                continue
            x, w = xs(acc), xs(acc + v) - xs(acc)
            fr.add(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.5))}" height="{bar_h}" fill="{colors.get(p, MUTED)}"'
                   f' class="mark bar" data-series="{_t(p)}"><title>{_t(r)}: {_t(p)} {pct(v)}</title></rect>')
            if w > 34:
                text_color = "#fff" if p not in ("generation_error",) else INK
                fr.add(f'<text x="{_f(x + w / 2)}" y="{_f(y + bar_h / 2 + 4)}" text-anchor="middle"'
                       f' class="bar-label" fill="{text_color}">{pct(v)}</text>')
            acc += v
    fr.legend([(p.replace("_", " "), colors.get(p, MUTED)) for p in present], kind="box")
    return fr.svg(title, chart_id)
