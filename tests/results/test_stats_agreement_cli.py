"""compute_agreement, the CSV reader and `manage.py agreement`."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from results_stats_data import KRIPPENDORFF_2011

from results.stats import agreement_from_csv, compute_agreement, read_ratings_csv

ROOT = Path(__file__).resolve().parents[2]


def krippendorff_csv() -> str:
    lines = ["item,rater,value"]
    for unit in range(KRIPPENDORFF_2011.shape[0]):
        for rater, name in enumerate("ABCD"):
            value = KRIPPENDORFF_2011[unit, rater]
            if not np.isnan(value):
                lines.append(f"u{unit + 1},{name},{value:g}")
    return "\n".join(lines) + "\n"


def test_compute_agreement_has_every_statistic_and_is_strict_json():
    result = compute_agreement(KRIPPENDORFF_2011, "ordinal", [1, 2, 3, 4, 5], n_boot=200, seed=3)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert round(result["krippendorff_alpha"]["alpha"], 3) == 0.815
    # 11 conversations with two or more ratings: too few for a bootstrap interval, and it says so.
    assert result["krippendorff_alpha"]["ci_low"] is None and result["krippendorff_alpha"]["ci_high"] is None
    assert "11 units with two or more ratings" in result["krippendorff_alpha"]["ci_note"]
    assert round(result["gwet_ac1"]["coefficient"], 3) == 0.775
    assert round(result["gwet_ac2"]["quadratic"]["coefficient"], 3) == 0.914
    assert set(result["gwet_ac2"]) == {"quadratic", "linear", "ordinal"}
    assert round(result["percent_exact_agreement"]["value"], 3) == 0.818
    assert result["percent_within_one"]["n_units"] == 11
    assert len(result["pairwise_kappa"]["kappa"]) == 4 and result["pairwise_kappa"]["kappa"][0][0] is None
    assert result["icc"]["n"] == 8  # units rated by all four raters
    assert [r["rater"] for r in result["raters"]] == [0, 1, 2, 3]
    assert (result["n_units"], result["n_rated_units"], result["n_pairable_units"], result["n_raters"]) == (
        12,
        12,
        11,
        4,
    )
    assert "drift_rule" not in result  # no timestamps given


def test_nominal_axis_leaves_out_what_needs_order():
    x = np.array([[0, 0, 1], [1, 1, 1], [0, 1, np.nan], [1, 1, 0]], dtype=float)
    result = compute_agreement(x, "nominal", [0, 1], n_boot=50)
    assert result["gwet_ac2"] is None and result["percent_within_one"] is None and result["icc"] is None
    assert result["pairwise_kappa"]["weights"] == "quadratic"  # equals unweighted for two categories
    three = compute_agreement(np.array([[0, 2], [1, 1], [2, 2]], dtype=float), "nominal", n_boot=0)
    assert three["pairwise_kappa"]["weights"] == "unweighted"


def test_csv_reproduces_the_matrix_results():
    result = agreement_from_csv(io.StringIO(krippendorff_csv()), "interval", n_boot=100)
    assert round(result["krippendorff_alpha"]["alpha"], 3) == 0.849
    assert result["input"] == {
        "items": 12,
        "raters": 4,
        "ratings": 41,
        "missing_values_skipped": 0,
        "category_labels": None,
    }
    assert result["pairwise_kappa"]["raters"] == ["A", "B", "C", "D"]


def test_csv_text_labels_missing_tokens_and_time_column():
    text = (
        "item,rater,value,time\n"
        "c1,ann,yes,2026-01-01T10:00\n"
        "c1,bob,yes,2026-01-01T11:00\n"
        "c2,ann,no,2026-01-02T10:00\n"
        "c2,bob,NA,2026-01-02T11:00\n"
        "c3,ann,no,5\n"
        "c3,bob,yes,6\n"
        "\n"
    )
    parsed = read_ratings_csv(io.StringIO(text), "nominal", ["no", "yes"])
    assert parsed["labels"] == ["no", "yes"]
    assert parsed["items"] == ["c1", "c2", "c3"] and parsed["raters"] == ["ann", "bob"]
    assert np.array_equal(parsed["matrix"], [[1, 1], [0, np.nan], [0, 1]], equal_nan=True)
    assert parsed["n_skipped_missing"] == 1
    assert parsed["timestamps"][2, 1] == 6.0
    result = agreement_from_csv(io.StringIO(text), "nominal", ["no", "yes"], n_boot=10)
    assert result["input"]["category_labels"] == ["no", "yes"]
    assert "drift_rule" in result


@pytest.mark.parametrize(
    "text, level, categories, message",
    [
        ("", "ordinal", None, "line 1: empty file"),
        ("item,coder,value\n1,A,2\n", "ordinal", None, "line 1: header lacks column\\(s\\) rater"),
        ("item,rater,value\n1,A,2\n1,B\n", "ordinal", None, "line 3: expected 3 fields"),
        ("item,rater,value\n1,A,2\n2,B,good\n", "ordinal", None, "line 3: value 'good' is not a finite number"),
        ("item,rater,value\n1,A,2\n1,A,3\n", "ordinal", None, "line 3: rater 'A' already rated item '1' on line 2"),
        ("item,rater,value\n1,A,2\n1,B,7\n", "ordinal", [1, 2, 3, 4], "line 3: value '7' is not one of the categories"),
        ("item,rater,value\n1,A,yes\n1,B,maybe\n", "nominal", ["yes", "no"], "line 3: value 'maybe'"),
        ("item,rater,value\n,A,2\n", "ordinal", None, "line 2: empty item id"),
        ("item,rater,value\n1,A,inf\n", "interval", None, "line 2: value 'inf' is not a finite number"),
        ("item,rater,value,time\n1,A,2,yesterday\n", "ordinal", None, "line 2: time 'yesterday'"),
        ("item,rater,value\n1,A,NA\n", "ordinal", None, "no ratings in the file"),
        ("item,rater,value\n1,A,2\n", "likert", None, "level must be one of"),
    ],
)
def test_bad_csv_input_gets_a_clear_error_naming_the_line(text, level, categories, message):
    with pytest.raises(ValueError, match=message):
        agreement_from_csv(io.StringIO(text), level, categories, n_boot=0)


def run_command(*args):
    return subprocess.run(
        [sys.executable, "manage.py", "agreement", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_management_command_prints_one_json_object(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(krippendorff_csv())
    proc = run_command(
        str(path), "--level", "ordinal", "--categories", "1,2,3,4,5", "--bootstrap", "500", "--seed", "7"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.count("\n") == 0  # exactly one line, one object
    result = json.loads(out)
    assert round(result["krippendorff_alpha"]["alpha"], 3) == 0.815
    assert result["krippendorff_alpha"]["n_boot"] == 500 and result["krippendorff_alpha"]["seed"] == 7
    assert round(result["gwet_ac1"]["coefficient"], 3) == 0.775
    # Same data and seed: the same interval as the library call.
    direct = agreement_from_csv(path, "ordinal", [1, 2, 3, 4, 5], n_boot=500, seed=7)
    assert result["krippendorff_alpha"]["ci_low"] == direct["krippendorff_alpha"]["ci_low"]


def test_management_command_reports_bad_input(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("item,rater,value\n1,A,2\n1,B,oops\n")
    proc = run_command(str(path), "--level", "interval")
    assert proc.returncode == 1
    assert "line 3: value 'oops' is not a finite number" in proc.stderr
    assert proc.stdout == ""
    proc = run_command(str(path), "--level", "ordinal", "--categories", "1,,3")
    assert proc.returncode == 1 and "--categories" in proc.stderr


def test_command_defaults_to_the_platforms_seed_and_resamples(tmp_path):
    """Without --seed/--bootstrap the command gives the interval the results page shows for the same
    ratings: one constant (results.stats.DEFAULT_SEED) feeds both."""
    from results import services
    from results.stats import DEFAULT_N_BOOT, DEFAULT_SEED

    assert (services.SEED, services.N_BOOT) == (DEFAULT_SEED, DEFAULT_N_BOOT) == (20260521, 1000)
    rng = np.random.default_rng(4)
    truth = rng.integers(1, 5, 60)
    x = np.column_stack([np.clip(truth + rng.integers(-1, 2, 60), 1, 4) for _ in range(3)]).astype(float)
    x[rng.random(x.shape) < 0.2] = np.nan
    lines = ["item,rater,value"] + [
        f"u{i},r{j},{x[i, j]:g}" for i in range(60) for j in range(3) if not np.isnan(x[i, j])
    ]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    proc = run_command(str(path), "--level", "ordinal", "--categories", "1,2,3,4")
    assert proc.returncode == 0, proc.stderr
    alpha = json.loads(proc.stdout)["krippendorff_alpha"]
    assert (alpha["seed"], alpha["n_boot"]) == (services.SEED, services.N_BOOT)
    platform = compute_agreement(x, "ordinal", [1, 2, 3, 4], n_boot=services.N_BOOT, seed=services.SEED)
    assert (alpha["ci_low"], alpha["ci_high"]) == (
        platform["krippendorff_alpha"]["ci_low"], platform["krippendorff_alpha"]["ci_high"])
    assert alpha["ci_low"] is not None
