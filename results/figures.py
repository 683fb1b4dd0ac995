"""The plots of a campaign's results page, drawn from a snapshot as SVG."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.text import slugify

from . import svg


@dataclass(frozen=True)
class Figure:
    name: str  # URL slug, unique on the page
    section: str  # where the page shows it: agreement | kappa | raters | means | distribution | length | nominal
    title: str
    svg: str


def _unit_slug(unit: str) -> str:
    return "percent" if unit == "%" else slugify(unit.replace("-", " to "))


def figure_specs(snapshot) -> list[tuple[str, str, str]]:
    """(name, section, title) of every figure the snapshot can draw, without drawing them."""
    data = snapshot.tables or {}
    figures = data.get("figures") or {}
    specs = []
    if figures.get("alpha_time"):
        specs.append(("alpha-over-time", "agreement", "Krippendorff's alpha as the ratings came in (95% CI band)"))
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
    # Categorical axes have no means but do have kappa and drift data (only their campaigns store "confusion").
    confusion = figures.get("confusion") or {}
    axes += [(a["key"], a["name"]) for a in confusion.get("axes", [])]
    for data_key, slug, section, title in (
        ("kappa", "kappa", "kappa", "Rater-by-rater kappa: {}"),
        ("drift", "rater-agreement", "raters", "Each rater's agreement with the others over time: {}"),
        ("distribution", "distribution", "distribution", "Score distribution: {}"),
        ("length", "length", "length", "{} against conversation length"),
    ):
        present = figures.get(data_key) or {}
        specs += [(f"{slug}-{key}", section, title.format(name)) for key, name in axes if key in present]
    for a in confusion.get("axes", []):
        specs.append((f"confusion-{a['key']}", "nominal", f"Rater vs rater: {a['name']}"))
        if confusion[a["key"]].get("reference"):
            specs.append((f"confusion-reference-{a['key']}", "nominal", f"Reference vs raters: {a['name']}"))
    return specs


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def draw(snapshot, name: str) -> Figure | None:
    spec = next((s for s in figure_specs(snapshot) if s[0] == name), None)
    if spec is None:
        return None
    _, section, title = spec
    figures = (snapshot.tables or {}).get("figures") or {}
    means = figures.get("means") or {}
    axes = {a["key"]: a for a in means.get("axes", [])}
    names = {**{a["key"]: a["name"] for a in (figures.get("confusion") or {}).get("axes", [])},
             **{key: a["name"] for key, a in axes.items()}}
    models = means.get("models", [])

    if name == "alpha-over-time":
        series, raters = {}, {}
        for key, points in figures["alpha_time"].items():
            label = names.get(key, key)
            series[label] = [(_when(p["time"]), p["alpha"], p["ci_low"], p["ci_high"], p["n_units"]) for p in points]
            raters[label] = f"{points[-1]['n_raters']} raters" if points else ""
        drawing = svg.time_chart(series, title, "alpha", x_label="ratings submitted up to (UTC)",
                                 n_label="conversations", legend_notes=raters)
    elif name.startswith("rater-agreement-"):
        per_rater = figures["drift"][name.removeprefix("rater-agreement-")]
        series = {rater: [(_when(w["end_time"]), w["agreement"], None, None, w["n"]) for w in windows]
                  for rater, windows in per_rater.items()}
        totals = {rater: f"{sum(w['n'] for w in windows)} ratings compared in all"
                  for rater, windows in per_rater.items()}
        drawing = svg.time_chart(series, title, "agreement with the others", lo=0.0, hi=1.0,
                                 x_label="end of each window of ratings (UTC)", n_label="in the last window",
                                 legend_notes=totals)
    elif name.startswith("means-"):
        unit_axes = [a for a in means["axes"] if f"means-{_unit_slug(a['unit'])}" == name]
        lo, hi = unit_axes[0]["lo"], unit_axes[0]["hi"]
        y_label = "% of conversations" if unit_axes[0]["unit"] == "%" else "mean score"
        drawing = svg.bar_chart([(a["key"], a["name"]) for a in unit_axes], models, means["values"], lo, hi,
                                title, y_label)
    elif name.startswith("kappa-"):
        heat = figures["kappa"][name.removeprefix("kappa-")]
        drawing = svg.heatmap(heat["raters"], heat["kappa"], heat["n_shared"], title)
    elif name.startswith("confusion-reference-"):
        data = figures["confusion"][name.removeprefix("confusion-reference-")]
        drawing = svg.confusion_heatmap(data["labels"], data["reference"], title,
                                        f"reference ({data['reference_source']})", "rater's label")
    elif name.startswith("confusion-"):
        data = figures["confusion"][name.removeprefix("confusion-")]
        drawing = svg.confusion_heatmap(data["labels"], data["pairs"], title, "one rater", "another rater")
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
