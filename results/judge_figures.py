"""The judge-vs-clinician plots of one judge run, drawn from a JudgeAgreement as server-side SVG.

Per axis: a scatter of the judge's value against the clinicians' mean (the identity line is perfect
agreement), and a Bland-Altman plot (difference judge - clinicians against the mean of the two, with the
bias line and the limits of agreement). Points with the same values are drawn once, with an area that
grows with their count; n (conversations) is printed on both.
"""
from __future__ import annotations

import math
from xml.sax.saxutils import escape

from . import svg
from .figures import Figure

WIDTH, HEIGHT = 470, 330
LEFT, TOP, RIGHT, BOTTOM = 56, 40, 94, 52  # the right margin holds the bias and limit labels


def _pad(lo: float, hi: float) -> tuple[float, float]:
    margin = (hi - lo) * 0.05 or 0.5
    return lo - margin, hi + margin


def _frame(title: str, x_lo, x_hi, y_lo, y_hi, x_label: str, y_label: str, n: int):
    c = svg.Canvas(max(WIDTH, svg._title_width(title)), HEIGHT, title)
    c.text(LEFT, 18, title, size=13, weight="600")
    c.text(LEFT, 33, f"n = {n} conversations", size=11, cls="n")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ypos = svg._y_axis(c, LEFT, TOP, plot_h, y_lo, y_hi, y_label, plot_w)

    def xpos(v):
        return LEFT + (v - x_lo) / (x_hi - x_lo) * plot_w

    for t in svg.nice_ticks(x_lo, x_hi):
        c.text(xpos(t), TOP + plot_h + 16, svg._num(float(t)), anchor="middle", size=11)
    c.line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h)
    c.text(LEFT + plot_w / 2, HEIGHT - 10, x_label, anchor="middle", size=12)
    return c, xpos, ypos


def _dots(c, points, xpos, ypos, describe) -> None:
    peak = max([p[2] for p in points] or [1])
    for x, y, count in points:
        r = 2.5 + 6.5 * math.sqrt(count / peak)
        c.add(f'<circle class="pt" cx="{xpos(x):.1f}" cy="{ypos(y):.1f}" r="{r:.1f}" fill="{svg.colour(0)}" '
              f'fill-opacity="0.55"><title>{escape(describe(x, y, count))}</title></circle>')


def scatter(data: dict, title: str) -> str:
    lo, hi = _pad(data["lo"], data["hi"])
    c, xpos, ypos = _frame(title, lo, hi, lo, hi, "clinicians' mean", "judge (mean of samples)", data["n"])
    c.line(xpos(lo), ypos(lo), xpos(hi), ypos(hi), stroke="#9aa3b2", dash="4 3", cls="identity")
    _dots(c, data["scatter"], xpos, ypos,
          lambda x, y, k: f"clinicians {svg._num(x)}, judge {svg._num(y)}: {k} conversation(s)")
    if svg._finite(data.get("alpha")):
        c.text(WIDTH - RIGHT, 33, f"alpha (interval) = {data['alpha']:.3f}", anchor="end", size=11)
    return c.render()


def bland_altman(data: dict, title: str) -> str:
    span = data["hi"] - data["lo"]
    x_lo, x_hi = _pad(data["lo"], data["hi"])
    values = [p[1] for p in data["bland_altman"]] + [v for v in (data.get("loa_low"), data.get("loa_high"))
                                                      if svg._finite(v)]
    reach = max([span * 0.25] + [abs(v) for v in values]) * 1.1
    c, xpos, ypos = _frame(title, x_lo, x_hi, -reach, reach, "mean of judge and clinicians",
                           "judge - clinicians", data["n"])
    c.line(xpos(x_lo), ypos(0), xpos(x_hi), ypos(0), stroke="#9aa3b2", cls="zero")
    for key, label, dash in (("bias", "bias", None), ("loa_low", "-1.96 SD", "5 3"), ("loa_high", "+1.96 SD", "5 3")):
        v = data.get(key)
        if not svg._finite(v):
            continue
        c.line(xpos(x_lo), ypos(v), xpos(x_hi), ypos(v), stroke=svg.colour(5), width=1.4, dash=dash, cls=key)
        c.text(xpos(x_hi) + 4, ypos(v) + 3, f"{label} {v:+.2f}", size=10)
    _dots(c, data["bland_altman"], xpos, ypos,
          lambda x, y, k: f"mean {svg._num(x)}, difference {svg._num(y)}: {k} conversation(s)")
    return c.render()


def _axes(agreement) -> dict[str, dict]:
    return {d["key"]: d for d in (agreement.tables or {}).get("figures") or []}


def figure_specs(agreement) -> list[tuple[str, str]]:
    """(name, title) of every figure of a JudgeAgreement, in axis order."""
    specs = []
    for data in (agreement.tables or {}).get("figures") or []:
        specs.append((f"scatter-{data['key']}", f"{data['name']}: judge against the clinicians' mean"))
        specs.append((f"bland-altman-{data['key']}", f"{data['name']}: difference against mean (Bland-Altman)"))
    return specs


def draw(agreement, name: str) -> Figure | None:
    spec = next((s for s in figure_specs(agreement) if s[0] == name), None)
    if spec is None:
        return None
    axes = _axes(agreement)
    if name.startswith("scatter-"):
        return Figure(name, "judge", spec[1], scatter(axes[name.removeprefix("scatter-")], spec[1]))
    return Figure(name, "judge", spec[1], bland_altman(axes[name.removeprefix("bland-altman-")], spec[1]))


def draw_all(agreement) -> list[Figure]:
    return [draw(agreement, name) for name, _ in figure_specs(agreement)]
