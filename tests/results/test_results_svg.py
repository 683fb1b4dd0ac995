"""The SVG helpers on their own: well-formed XML, one mark per datum, data text escaped."""
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from results import svg

NS = "{http://www.w3.org/2000/svg}"


def parse(text):
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg" and root.get("role") == "img" and root.find(f"{NS}title") is not None
    return root


def marks(root, tag, cls):
    return [e for e in root.iter(f"{NS}{tag}") if cls in (e.get("class") or "").split()]


def test_bar_chart_has_a_bar_and_error_bar_per_model_and_axis_and_escapes_names():
    values = {
        "a": {"m<1>": [2.5, 2.0, 3.0, 10], 'm&"2"': [3.0, 2.8, 3.2, 12]},
        "b": {"m<1>": [1.5, None, None, 1], 'm&"2"': None},  # n = 1: no interval; missing model: no bar
    }
    root = parse(svg.bar_chart([("a", "Axis <A>"), ("b", "Axis B")], ["m<1>", 'm&"2"'], values, 1, 4, "Means", "mean"))
    assert len(marks(root, "rect", "bar")) == 3
    assert len(marks(root, "line", "err")) == 2
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "m<1>" in texts and 'm&"2"' in texts and "Axis <A>" in texts
    # Bar height follows the value: on a 1-4 axis, 2.5 is 1.5/2 of the height of 3.0.
    heights = [float(b.get("height")) for b in marks(root, "rect", "bar")]
    assert math.isclose(heights[0] / heights[1], (2.5 - 1) / (3.0 - 1), rel_tol=1e-3)


def test_heatmap_draws_n_by_n_cells_with_counts():
    kappa = [[None, 0.5, -0.2], [0.5, None, None], [-0.2, None, None]]
    shared = [[10, 8, 3], [8, 9, 0], [3, 0, 4]]
    root = parse(svg.heatmap(["R-1", "R-2", "R-<3>"], kappa, shared, "Kappa"))
    cells = marks(root, "rect", "cell")
    assert len(cells) == 9 and len(marks(root, "rect", "diag")) == 3
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "0.50" in texts and "-0.20" in texts and "n/a" in texts and "n=0" in texts and "R-<3>" in texts
    # Positive kappa is blue-ish, negative red-ish, undefined grey.
    fills = {(c.get("x"), c.get("y")): c.get("fill") for c in cells}
    assert len(set(fills.values())) >= 4


def test_histogram_and_points_and_time_charts():
    root = parse(svg.histogram([1.0, 2.0, 3.0, 4.0], {"a": [0, 1, 2, 3], "b": [1, 1, 2, 0]}, "Dist", "score"))
    assert len(marks(root, "rect", "bar")) == 8
    root = parse(svg.points_chart({"a": [[4, 2.5, 1], [8, 3.7, 2]], "b": [[20, 1.5, 1]]}, 1, 4, "Len", "n", "mean"))
    assert len(marks(root, "circle", "pt")) == 3
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    series = {"alpha": [(t0, 0.5, 0.4, 0.6), (t0 + timedelta(hours=1), 0.6, None, None), (t0, None, None, None)]}
    root = parse(svg.time_chart(series, "Over time", "alpha"))
    assert len(marks(root, "circle", "pt")) == 2
    # Empty inputs still give a valid (empty) chart.
    parse(svg.time_chart({}, "Nothing yet", "alpha"))
    parse(svg.heatmap([], [], [], "No raters"))
    parse(svg.bar_chart([], [], {}, 1, 4, "No data", "mean"))


def test_nice_ticks():
    # Steps of 1, 2, 2.5 or 5 times a power of ten, the smallest at least (range / 5).
    assert svg.nice_ticks(1, 4) == [1, 2, 3, 4]  # 3/5 = 0.6 -> step 1
    assert svg.nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]  # 20 -> step 20
    assert svg.nice_ticks(-0.2, 1.0) == [0, 0.25, 0.5, 0.75, 1.0]  # 0.24 -> step 0.25, first multiple >= -0.2
    assert svg.nice_ticks(2, 2) == [2]
    assert svg.nice_ticks(3, 21, 8, integer=True) == [5, 10, 15, 20]  # 18/8 = 2.25 -> step 5 (1, 2, 5, 10 only)
    assert svg.nice_ticks(1, 3, 8, integer=True) == [1, 2, 3]  # never a step below 1


def n_texts(root):
    return [t.text for t in marks(root, "text", "n")]


def test_every_chart_prints_its_n_as_visible_text_not_only_in_tooltips():
    values = {"a": {"m1": [2.5, 2.0, 3.0, 10], "m2": [3.0, 2.8, 3.2, 12]}, "b": {"m1": [1.5, None, None, 1]}}
    bars = parse(svg.bar_chart([("a", "Axis A"), ("b", "Axis B")], ["m1", "m2"], values, 1, 4, "Means", "mean"))
    # One n under each bar, and the row's label "n"; none of it inside a <title> tooltip.
    assert n_texts(bars) == ["n", "10", "12", "1"]
    assert all(t.get("class") == "n" for t in bars.iter(f"{NS}text") if t.text in {"10", "12"})

    hist = parse(svg.histogram([1.0, 2.0], {"m1": [3, 1], "m2": [0, 5]}, "Dist", "score"))
    legend = [t.text for t in hist.iter(f"{NS}text")]
    assert "m1 (n = 4 ratings)" in legend and "m2 (n = 5 ratings)" in legend

    points = parse(svg.points_chart({"m1": [[4, 2.5, 3], [8, 3.0, 2]], "m2": [[6, 1.0, 7]]}, 1, 4, "Len", "x", "y"))
    legend = [t.text for t in points.iter(f"{NS}text")]
    assert "m1 (n = 5)" in legend and "m2 (n = 7)" in legend

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    series = {"Flow": [(t0, 0.2, None, None, 12), (t0 + timedelta(hours=2), 0.5, 0.3, 0.7, 40)]}
    chart = parse(svg.time_chart(series, "Alpha", "alpha", n_label="conversations", legend_notes={"Flow": "3 raters"}))
    assert n_texts(chart) == ["n=40"]
    assert "Flow (n = 40 conversations, 3 raters)" in [t.text for t in chart.iter(f"{NS}text")]
