"""The plots of a campaign's results page, drawn from a snapshot (and the alpha history) as SVG."""
from __future__ import annotations

from dataclasses import dataclass

from django.utils.text import slugify

from . import selectors, svg


@dataclass(frozen=True)
class Figure:
    name: str  # URL slug, unique on the page
    section: str  # where the page shows it: agreement | kappa | means | distribution | length
    title: str
    svg: str


def _unit_slug(unit: str) -> str:
    return "percent" if unit == "%" else slugify(unit.replace("-", " to "))


def figure_specs(snapshot) -> list[tuple[str, str, str]]:
    """(name, section, title) of every figure the snapshot can draw, without drawing them."""
    data = snapshot.tables or {}
    figures = data.get("figures") or {}
    specs = [("alpha-over-time", "agreement", "Krippendorff's alpha over time (95% CI band)")]
    means = figures.get("means") or {}
    units = []
    for a in means.get("axes", []):
        if a["unit"] not in units:
            units.append(a["unit"])
    for unit in units:
        label = "percent" if unit == "%" else f"scale {unit}"
        specs.append((f"means-{_unit_slug(unit)}", "means", f"Mean per model with 95% CI ({label})"))
    # Axis order comes from the stored list: JSON objects in Postgres (jsonb) do not keep key order.
    axes = [(a["key"], a["name"]) for a in means.get("axes", [])]
    for section, title in (("kappa", "Rater-by-rater kappa: {}"), ("distribution", "Score distribution: {}"),
                           ("length", "{} against conversation length")):
        present = figures.get(section) or {}
        specs += [(f"{section}-{key}", section, title.format(name)) for key, name in axes if key in present]
    return specs


def draw(snapshot, name: str) -> Figure | None:
    spec = next((s for s in figure_specs(snapshot) if s[0] == name), None)
    if spec is None:
        return None
    _, section, title = spec
    figures = (snapshot.tables or {}).get("figures") or {}
    means = figures.get("means") or {}
    axes = {a["key"]: a for a in means.get("axes", [])}
    models = means.get("models", [])

    if name == "alpha-over-time":
        series: dict[str, list] = {}
        for row in selectors.alpha_history(snapshot.campaign_id):
            if row["computed_at"] <= snapshot.computed_at and row["alpha"] is not None:
                series.setdefault(row["axis_name"], []).append(
                    (row["computed_at"], row["alpha"], row["ci_low"], row["ci_high"])
                )
        drawing = svg.time_chart(series, title, "alpha")
    elif name.startswith("means-"):
        unit_axes = [a for a in means["axes"] if f"means-{_unit_slug(a['unit'])}" == name]
        lo, hi = unit_axes[0]["lo"], unit_axes[0]["hi"]
        y_label = "% of conversations" if unit_axes[0]["unit"] == "%" else "mean score"
        drawing = svg.bar_chart([(a["key"], a["name"]) for a in unit_axes], models, means["values"], lo, hi,
                                title, y_label)
    elif name.startswith("kappa-"):
        heat = figures["kappa"][name.removeprefix("kappa-")]
        drawing = svg.heatmap(heat["raters"], heat["kappa"], heat["n_shared"], title)
    elif name.startswith("distribution-"):
        key = name.removeprefix("distribution-")
        dist = figures["distribution"][key]
        counts = {m: dist["counts"][m] for m in models if m in dist["counts"]}
        drawing = svg.histogram(dist["values"], counts, title, "score")
    else:
        key = name.removeprefix("length-")
        axis = axes.get(key, {"lo": 0.0, "hi": 1.0, "unit": ""})
        series = {m: figures["length"][key][m] for m in models if m in figures["length"][key]}
        drawing = svg.points_chart(series, axis["lo"], axis["hi"], title, "sensemaker messages",
                                   "% of conversations" if axis["unit"] == "%" else "mean score")
    return Figure(name, section, title, drawing)


def draw_all(snapshot) -> dict[str, list[Figure]]:
    """Every figure, grouped by the page section that shows it."""
    out: dict[str, list[Figure]] = {}
    for name, section, _ in figure_specs(snapshot):
        figure = draw(snapshot, name)
        if figure is not None:
            out.setdefault(section, []).append(figure)
    return out
