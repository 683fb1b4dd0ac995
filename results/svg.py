"""Small server-side SVG charts: no JavaScript, no internet, readable when printed or saved.

Every chart is a standalone <svg> string with a <title> and aria-label; every text that comes from
data (model names, rater pseudonyms, axis names) is XML-escaped here. Marks carry classes that tests
count: rect.bar (bars), line.err (error bars), circle.pt (points), rect.cell (heat-map cells).
Every chart prints its n as visible text (class "n" under bars and beside points, or in the legend),
not only in tooltips: a figure copied into a paper keeps its sample sizes.
"""
from __future__ import annotations

import math
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FONT = "font-family=\"system-ui, sans-serif\""


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _finite(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart; whole numbers
    only when `integer`, e.g. for counts of messages)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    if integer:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    multipliers = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in multipliers if m * power >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], start
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


class Canvas:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height, self.title = width, height, title
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x, y, content, anchor="start", size=12, cls="", rotate=None, weight=None) -> None:
        extra = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        extra += f' font-weight="{weight}"' if weight else ""
        extra += f' class="{cls}"' if cls else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="#1d2433"{extra}>'
                 f"{escape(str(content))}</text>")

    def line(self, x1, y1, x2, y2, stroke="#5b6474", width=1.0, cls="", dash=None) -> None:
        extra = f' class="{cls}"' if cls else ""
        extra += f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                 f'stroke-width="{width}"{extra}/>')

    def render(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
                f'width="{self.width}" height="{self.height}" role="img" aria-label={quoteattr(self.title)} '
                f'class="chart" {FONT}><title>{escape(self.title)}</title>')
        return head + "".join(self.parts) + "</svg>"


def _title_width(title: str) -> int:
    """Room for a 13px bold title starting at x = 56 (about 7.8px a character)."""
    return int(7.8 * len(title)) + 72


def _legend_width(names: list[str], minimum: int = 150) -> int:
    """Right margin that fits the legend labels (12px text, about 7px a character, plus the swatch)."""
    return max([minimum] + [int(7 * len(n)) + 40 for n in names])


def _legend(c: Canvas, names: list[str], x: float, y: float) -> None:
    for i, name in enumerate(names):
        c.add(f'<rect x="{x:.1f}" y="{y + i * 18 - 10:.1f}" width="12" height="12" fill="{colour(i)}"/>')
        c.text(x + 17, y + i * 18, name, size=12)


def _y_axis(c: Canvas, left, top, plot_h, lo, hi, label, width_px):
    def ypos(v):
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    for t in nice_ticks(lo, hi):
        y = ypos(t)
        c.line(left, y, left + width_px, y, stroke="#e5e8ee")
        c.text(left - 6, y + 4, _num(float(t)), anchor="end", size=11)
    c.line(left, top, left, top + plot_h)
    c.text(14, top + plot_h / 2, label, anchor="middle", size=12, rotate=-90)
    return ypos


def bar_chart(groups: list[tuple[str, str]], series: list[str], values: dict, lo: float, hi: float,
              title: str, y_label: str) -> str:
    """Grouped bars with 95% CI error bars: one group per axis, one bar per model.

    values[group_key][series_name] = [mean, ci_low, ci_high, n] (missing or None mean: no bar). Each bar's
    n is printed under it, in the row labelled "n"."""
    left, top, right, bottom = 56, 28, _legend_width(series), 76
    group_w = max(96, 26 * len(series) + 30)
    width = max(left + group_w * max(1, len(groups)) + right, _title_width(title))
    height = 332
    plot_h = height - top - bottom
    c = Canvas(width, height, title)
    c.text(left, 18, title, size=13, weight="600")
    ypos = _y_axis(c, left, top, plot_h, lo, hi, y_label, group_w * len(groups))
    bar_w = (group_w - 30) / max(1, len(series))
    if groups:
        c.text(left - 6, top + plot_h + 13, "n", anchor="end", size=9, cls="n")
    for g, (key, name) in enumerate(groups):
        x0 = left + g * group_w + 15
        for s, model in enumerate(series):
            v = (values.get(key) or {}).get(model)
            if not v or not _finite(v[0]):
                continue
            mean, ci_lo, ci_hi, n = v
            x = x0 + s * bar_w
            y = ypos(max(lo, min(hi, mean)))
            tip = f"{model} · {name}: mean {_num(float(mean))}"
            if _finite(ci_lo) and _finite(ci_hi):
                tip += f", 95% CI {_num(float(ci_lo))} to {_num(float(ci_hi))}"
            tip += f", n = {n}"
            c.add(f'<rect class="bar" x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
                  f'height="{top + plot_h - y:.1f}" fill="{colour(s)}"><title>{escape(tip)}</title></rect>')
            c.text(x + bar_w / 2, top + plot_h + 13, f"{n}", anchor="middle", size=9, cls="n")
            if _finite(ci_lo) and _finite(ci_hi):
                cx = x + bar_w / 2
                y1, y2 = ypos(max(lo, min(hi, ci_lo))), ypos(max(lo, min(hi, ci_hi)))
                c.line(cx, y1, cx, y2, stroke="#1d2433", width=1.5, cls="err")
                c.line(cx - 5, y1, cx + 5, y1, stroke="#1d2433", width=1.5)
                c.line(cx - 5, y2, cx + 5, y2, stroke="#1d2433", width=1.5)
        for k, line in enumerate(_wrap(name, max(10, int(group_w / 6.5)))):
            c.text(x0 + (group_w - 30) / 2, top + plot_h + 30 + 13 * k, line, anchor="middle", size=11)
    c.line(left, top + plot_h, left + group_w * len(groups), top + plot_h)
    _legend(c, series, width - right + 16, top + 10)
    return c.render()


def _wrap(text: str, width: int, lines: int = 3) -> list[str]:
    """Break a label into at most `lines` lines of about `width` characters (the last one shortened)."""
    out, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[: lines - 1] + [_short(" ".join(out[lines - 1:]), width)]
    return out


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def histogram(values: list[float], counts: dict[str, list[int]], title: str, x_label: str) -> str:
    """Share of ratings at each score, one bar per model (shares, so models of unequal size compare); the
    legend gives each model's n of ratings."""
    series = list(counts)
    names = [f"{m} (n = {sum(counts[m])} ratings)" for m in series]
    left, top, right, bottom = 56, 28, _legend_width(names), 50
    group_w = max(60, 22 * len(series) + 24)
    width = max(left + group_w * max(1, len(values)) + right, _title_width(title))
    height = 260
    plot_h = height - top - bottom
    c = Canvas(width, height, title)
    c.text(left, 18, title, size=13, weight="600")
    shares = {}
    peak = 0.0
    for m, cs in counts.items():
        total = sum(cs)
        shares[m] = [100.0 * k / total if total else 0.0 for k in cs]
        peak = max([peak, *shares[m]])
    hi = max(10.0, math.ceil(peak / 10.0) * 10.0)
    ypos = _y_axis(c, left, top, plot_h, 0.0, hi, "% of ratings", group_w * len(values))
    bar_w = (group_w - 24) / max(1, len(series))
    for g, v in enumerate(values):
        x0 = left + g * group_w + 12
        for s, m in enumerate(series):
            share = shares[m][g]
            y = ypos(share)
            tip = f"{m}: score {_num(float(v))}: {counts[m][g]} ratings ({share:.1f}%)"
            c.add(f'<rect class="bar" x="{x0 + s * bar_w + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                  f'height="{top + plot_h - y:.1f}" fill="{colour(s)}"><title>{escape(tip)}</title></rect>')
        c.text(x0 + (group_w - 24) / 2, top + plot_h + 16, _num(float(v)), anchor="middle", size=11)
    c.line(left, top + plot_h, left + group_w * len(values), top + plot_h)
    c.text(left + group_w * len(values) / 2, height - 8, x_label, anchor="middle", size=12)
    _legend(c, names, width - right + 16, top + 10)
    return c.render()


def points_chart(series: dict[str, list[list]], lo: float, hi: float, title: str, x_label: str,
                 y_label: str) -> str:
    """Mean score against a count (e.g. sensemaker messages): one line per model, point area ~ n.

    series[name] = [[x, mean, n], ...]; the legend gives each series' total n."""
    names = list(series)
    labels = [f"{name} (n = {sum(p[2] for p in series[name] if _finite(p[1]))})" for name in names]
    xs = [p[0] for pts in series.values() for p in pts if _finite(p[1])]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0, 1)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    left, top, right, bottom = 56, 28, _legend_width(labels), 50
    plot_w, height = 440, 280
    width = left + plot_w + right
    plot_h = height - top - bottom
    c = Canvas(width, height, title)
    c.text(left, 18, title, size=13, weight="600")
    ypos = _y_axis(c, left, top, plot_h, lo, hi, y_label, plot_w)

    def xpos(v):
        return left + (v - x_lo) / (x_hi - x_lo) * plot_w

    for t in nice_ticks(x_lo, x_hi, 8, integer=all(float(x).is_integer() for x in xs)):
        c.text(xpos(t), top + plot_h + 16, _num(float(t)), anchor="middle", size=11)
    c.line(left, top + plot_h, left + plot_w, top + plot_h)
    n_max = max([p[2] for pts in series.values() for p in pts] or [1])
    for s, name in enumerate(names):
        pts = [p for p in series[name] if _finite(p[1])]
        if len(pts) > 1:
            path = " ".join(f"{xpos(x):.1f},{ypos(max(lo, min(hi, y))):.1f}" for x, y, _ in pts)
            c.add(f'<polyline points="{path}" fill="none" stroke="{colour(s)}" stroke-width="1.5" opacity="0.7"/>')
        for x, y, n in pts:
            r = 2.5 + 5.5 * math.sqrt(n / n_max)
            tip = f"{name}: {_num(float(x))} → mean {_num(float(y))} (n = {n})"
            c.add(f'<circle class="pt" cx="{xpos(x):.1f}" cy="{ypos(max(lo, min(hi, y))):.1f}" r="{r:.1f}" '
                  f'fill="{colour(s)}" fill-opacity="0.8"><title>{escape(tip)}</title></circle>')
    c.text(left + plot_w / 2, height - 8, x_label, anchor="middle", size=12)
    _legend(c, labels, width - right + 16, top + 10)
    return c.render()


def time_chart(series: dict[str, list[tuple]], title: str, y_label: str, lo: float = -0.2, hi: float = 1.0,
               x_label: str = "", n_label: str = "", legend_notes: dict[str, str] | None = None) -> str:
    """Values over time with a shaded interval: series[name] = [(datetime, value, ci_low, ci_high[, n]), ...].

    With an n per point, the newest point of each series is labelled "n=..." and the legend gives it too,
    e.g. "Flow (n = 120 conversations, 3 raters)" with n_label "conversations" and legend_notes
    {"Flow": "3 raters"}."""
    t_lo, t_hi = _time_range(series)
    lo, hi = _value_range(series, lo, hi)
    labels = _time_legend(series, n_label, legend_notes or {})
    left, top, right, bottom = 56, 28, _legend_width(labels, 260), 50
    plot_w, height = 440, 280
    width = left + plot_w + right
    plot_h = height - top - bottom
    c = Canvas(width, height, title)
    c.text(left, 18, title, size=13, weight="600")
    ypos = _y_axis(c, left, top, plot_h, lo, hi, y_label, plot_w)

    def xpos(t):
        return left + (t - t_lo) / (t_hi - t_lo) * plot_w

    c.line(left, top + plot_h, left + plot_w, top + plot_h)
    tz = next((p[0].tzinfo for pts in series.values() for p in pts), None)
    for frac in (0.0, 0.5, 1.0):
        t = t_lo + frac * (t_hi - t_lo)
        c.text(xpos(t), top + plot_h + 16, datetime.fromtimestamp(t, tz=tz).strftime("%Y-%m-%d %H:%M"),
               anchor="middle" if frac == 0.5 else ("start" if frac == 0 else "end"), size=10)
    if x_label:
        c.text(left + plot_w / 2, height - 8, x_label, anchor="middle", size=12)
    for s, (name, points) in enumerate(series.items()):
        _time_series(c, colour(s), name, [p for p in points if _finite(p[1])],
                     lambda p: xpos(p[0].timestamp()), ypos)
    _legend(c, labels, width - right + 16, top + 10)
    return c.render()


def _time_range(series: dict[str, list[tuple]]) -> tuple[float, float]:
    """The x range in epoch seconds; a single instant is widened to two minutes around it."""
    times = [p[0].timestamp() for pts in series.values() for p in pts]
    t_lo, t_hi = (min(times), max(times)) if times else (0.0, 1.0)
    if t_hi == t_lo:
        t_lo, t_hi = t_lo - 60, t_hi + 60
    return t_lo, t_hi


def _value_range(series: dict[str, list[tuple]], lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened (to a tenth) to every value and interval bound."""
    values = [v for pts in series.values() for p in pts for v in p[1:4] if _finite(v)]
    if values:
        lo, hi = min(lo, math.floor(min(values) * 10) / 10), max(hi, math.ceil(max(values) * 10) / 10)
    return lo, hi


def _newest_n(points: list[tuple]):
    """The n of the newest point that has a value and an n, or None."""
    counted = [p for p in points if _finite(p[1]) and len(p) > 4 and p[4] is not None]
    return counted[-1][4] if counted else None


def _time_legend(series: dict[str, list[tuple]], n_label: str, legend_notes: dict[str, str]) -> list[str]:
    unit = f" {n_label}" if n_label else ""
    labels = []
    for name, points in series.items():
        n = _newest_n(points)
        parts = [] if n is None else [f"n = {n}{unit}"]
        parts += [legend_notes[name]] if legend_notes.get(name) else []
        labels.append(f"{_short(name, 36)} ({', '.join(parts)})" if parts else _short(name, 36))
    return labels


def _time_series(c: Canvas, fill: str, name: str, pts: list[tuple], xpos, ypos) -> None:
    """One series: its interval band, its line, a point with a tooltip each, and the newest point's n."""
    band = [p for p in pts if _finite(p[2]) and _finite(p[3])]
    if len(band) > 1:
        upper = " ".join(f"{xpos(p):.1f},{ypos(p[3]):.1f}" for p in band)
        lower = " ".join(f"{xpos(p):.1f},{ypos(p[2]):.1f}" for p in reversed(band))
        c.add(f'<polygon points="{upper} {lower}" fill="{fill}" fill-opacity="0.12" stroke="none"/>')
    if len(pts) > 1:
        path = " ".join(f"{xpos(p):.1f},{ypos(p[1]):.1f}" for p in pts)
        c.add(f'<polyline points="{path}" fill="none" stroke="{fill}" stroke-width="1.8"/>')
    for p in pts:
        tip = f"{name} at {p[0]:%Y-%m-%d %H:%M}: {p[1]:.3f}"
        if _finite(p[2]) and _finite(p[3]):
            tip += f" (95% CI {p[2]:.3f} to {p[3]:.3f})"
        if len(p) > 4 and p[4] is not None:
            tip += f", n = {p[4]}"
        c.add(f'<circle class="pt" cx="{xpos(p):.1f}" cy="{ypos(p[1]):.1f}" r="3" '
              f'fill="{fill}"><title>{escape(tip)}</title></circle>')
    if pts and len(pts[-1]) > 4 and pts[-1][4] is not None:
        p = pts[-1]
        c.text(xpos(p) - 4, ypos(p[1]) - 6, f"n={p[4]}", anchor="end", size=9, cls="n")


def _kappa_colour(k) -> str:
    """Diverging scale: red below 0, white at 0, blue at 1; grey when undefined."""
    if not _finite(k):
        return "#eef1f5"
    k = max(-1.0, min(1.0, float(k)))
    if k >= 0:
        r, g, b = (int(255 - k * (255 - v)) for v in (33, 87, 181))
    else:
        r, g, b = (int(255 - (-k) * (255 - v)) for v in (179, 38, 30))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(labels: list[str], kappa: list[list], n_shared: list[list], title: str) -> str:
    """Rater-by-rater kappa: one cell per ordered pair (the diagonal shows how many the rater rated)."""
    n = len(labels)
    cell = max(34, min(64, 560 // max(1, n)))
    left, top = 110, 40
    width = max(left + cell * n + 20, _title_width(title) - left + 110)
    height = top + cell * n + 60
    c = Canvas(width, height, title)
    c.text(8, 18, title, size=13, weight="600")
    for i, name in enumerate(labels):
        c.text(left - 6, top + i * cell + cell / 2 + 4, _short(name, 14), anchor="end", size=11)
        c.text(left + i * cell + cell / 2, top + cell * n + 14, _short(name, 14), anchor="end", size=11,
               rotate=-35)
    for i in range(n):
        for j in range(n):
            k = kappa[i][j] if i < len(kappa) and j < len(kappa[i]) else None
            shared = n_shared[i][j] if i < len(n_shared) and j < len(n_shared[i]) else 0
            x, y = left + j * cell, top + i * cell
            diag = i == j
            fill = "#ffffff" if diag else _kappa_colour(k)
            if diag:
                tip = f"{labels[i]} rated {shared} conversations"
            else:
                tip = f"{labels[i]} × {labels[j]}: kappa {'undefined' if not _finite(k) else f'{k:.3f}'}, " \
                      f"{shared} shared conversations"
            cls = "cell diag" if diag else "cell"
            c.add(f'<rect class="{cls}" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                  f'stroke="#ffffff"><title>{escape(tip)}</title></rect>')
            strong = _finite(k) and abs(float(k)) > 0.6 and not diag
            ink = "#ffffff" if strong else "#1d2433"
            main = "—" if diag else ("n/a" if not _finite(k) else f"{k:.2f}")
            c.add(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" text-anchor="middle" font-size="11" '
                  f'fill="{ink}">{escape(main)}</text>')
            c.add(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 13:.1f}" text-anchor="middle" font-size="9" '
                  f'fill="{ink}">n={shared}</text>')
    return c.render()


def confusion_heatmap(labels: list[str], counts: list[list[int]], title: str, row_title: str,
                      col_title: str) -> str:
    """A confusion matrix: one cell per (row, column) category with its count and its share of the row;
    shading by the row share, so a rare category's errors show as clearly as a common one's."""
    n = len(labels)
    cell = max(40, min(72, 560 // max(1, n)))
    left, top = 150, 58
    width = max(left + cell * n + 30, _title_width(title))
    height = top + cell * n + 110
    c = Canvas(width, height, title)
    c.text(8, 18, title, size=13, weight="600")
    c.text(left + cell * n / 2, 40, col_title, anchor="middle", size=11, weight="600")
    c.text(14, top + cell * n / 2, row_title, anchor="middle", size=11, weight="600", rotate=-90)
    total = sum(sum(row) for row in counts)
    for i, name in enumerate(labels):
        c.text(left - 6, top + i * cell + cell / 2 + 4, _short(name, 20), anchor="end", size=11)
        c.text(left + i * cell + cell / 2, top + cell * n + 14, _short(name, 20), anchor="end", size=11,
               rotate=-35)
    for i in range(n):
        row_total = sum(counts[i])
        for j in range(n):
            count = counts[i][j]
            share = count / row_total if row_total else None
            x, y = left + j * cell, top + i * cell
            fill = _kappa_colour(share) if share is not None else "#eef1f5"
            tip = (f"{row_title} {labels[i]}, {col_title} {labels[j]}: {count}"
                   + (f" ({share:.0%} of the row)" if share is not None else ""))
            cls = "cell diag" if i == j else "cell"
            c.add(f'<rect class="{cls}" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                  f'stroke="#ffffff"><title>{escape(tip)}</title></rect>')
            ink = "#ffffff" if share is not None and share > 0.6 else "#1d2433"
            c.add(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" text-anchor="middle" font-size="12" '
                  f'fill="{ink}">{count}</text>')
            if share is not None:
                c.add(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 13:.1f}" text-anchor="middle" '
                      f'font-size="9" fill="{ink}">{share:.0%}</text>')
    c.text(8, height - 8, f"n={total} (count in each cell, share of its row below)", size=10, cls="n")
    return c.render()
