"""Nominal axes: alpha and AC1 on category codes, AC1's bootstrap interval, confusion matrices, Wilson's
interval and high-risk recall, checked against values computed by hand below and published ones."""

import math

import numpy as np
import pytest
from results_stats_data import KRIPPENDORFF_2011

from results.stats import gwet_ac, krippendorff_alpha
from results.stats.alpha import _patterns, resample_weights
from results.stats.nominal import (
    gwet_ac1_ci,
    high_risk_recall,
    nominal_statistics,
    pair_confusion,
    reference_confusion,
    wilson_interval,
)

nan = math.nan
LABELS = ["none", "low", "high"]  # codes 0, 1, 2; "high" is the high-risk category
# Two raters, five conversations.
SMALL = np.array([[0, 0], [1, 1], [2, 2], [2, 1], [0, 1]], dtype=float)
REFERENCE = np.array([0, 1, 2, 2, nan])


def test_small_example_alpha_and_ac1_by_hand():
    # Coincidences (each ordered pair of a unit's two ratings, weight 1/(m-1) = 1): o00 = o11 = o22 = 2,
    # o01 = o10 = 1 (unit 5), o12 = o21 = 1 (unit 4); n0 = 3, n1 = 4, n2 = 3, n = 10.
    # D_o = 4/10; D_e = (10^2 - 3^2 - 4^2 - 3^2) / (10 x 9) = 66/90; alpha = 1 - 0.4 / (66/90) = 5/11.
    alpha = krippendorff_alpha(SMALL, "nominal", [0, 1, 2], n_boot=0)
    assert alpha["alpha"] == pytest.approx(5 / 11)
    # AC1: p_a = 3/5 units agree. pi = mean of per-unit shares = (1.5, 2, 1.5)/5 = (0.3, 0.4, 0.3);
    # p_e = (0.21 + 0.24 + 0.21) / (q - 1 = 2) = 0.33; AC1 = (0.6 - 0.33) / (1 - 0.33) = 0.27/0.67.
    ac1 = gwet_ac1_ci(SMALL, 3, n_boot=0)
    assert (ac1["pa"], ac1["pe"]) == (pytest.approx(0.6), pytest.approx(0.33))
    assert ac1["coefficient"] == pytest.approx(0.27 / 0.67)


def test_an_unused_category_changes_ac1_but_not_alpha():
    # q counts every category of the rubric: a fourth, never chosen, lowers p_e to 0.66/3 = 0.22.
    assert gwet_ac1_ci(SMALL, 4, n_boot=0)["coefficient"] == pytest.approx((0.6 - 0.22) / 0.78)
    assert krippendorff_alpha(SMALL, "nominal", [0, 1, 2, 3], n_boot=0)["alpha"] == pytest.approx(5 / 11)


def test_published_example_through_category_codes():
    # Krippendorff (2011): nominal alpha 0.743; Gwet (irrCAC, same data): AC1 0.775. Categories 1-5 coded 0-4.
    coded = KRIPPENDORFF_2011 - 1  # units x raters
    stats = nominal_statistics(coded, ["a", "b", "c", "d", "e"], n_boot=0)
    assert stats["gwet_ac1"]["coefficient"] == pytest.approx(0.775, abs=5e-4)
    assert krippendorff_alpha(coded, "nominal", range(5), n_boot=0)["alpha"] == pytest.approx(0.743, abs=5e-4)


def test_confusion_matrices_by_hand():
    # Rater pairs in both orders: units 1-3 add 2 on their diagonal cell, unit 4 (high, low) and unit 5
    # (none, low) one each way.
    assert pair_confusion(SMALL, 3).tolist() == [[2, 1, 0], [1, 2, 1], [0, 1, 2]]
    # Reference rows: none <- (none, none); low <- (low, low); high <- (high, high) and (high, low).
    # Unit 5 has no reference and is left out.
    assert reference_confusion(SMALL, REFERENCE, 3).tolist() == [[2, 0, 0], [0, 2, 0], [0, 1, 3]]


def test_wilson_interval_matches_published_values():
    # Wilson (1927) score interval, 95%: 8/10 -> 0.490-0.943 and 3/4 -> 0.301-0.954 (e.g. Newcombe 1998,
    # Table I lists 0.4902-0.9433 for 8/10).
    assert wilson_interval(8, 10) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson_interval(3, 4) == (pytest.approx(0.3006, abs=1e-4), pytest.approx(0.9544, abs=1e-4))
    assert wilson_interval(0, 5)[0] == 0.0 and all(math.isnan(v) for v in wilson_interval(0, 0))


def test_high_risk_recall_by_hand():
    # High-risk reference: units 3 (both raters said high: share 1) and 4 (one of two: 0.5) -> recall 0.75.
    # Over ratings: 3 high labels of 4 ratings, Wilson 0.301-0.954. Too few conversations for a bootstrap CI.
    out = high_risk_recall(SMALL, REFERENCE, [2], n_boot=100, seed=1)
    assert out["recall"] == pytest.approx(0.75) and out["n_conversations"] == 2
    assert (out["n_high_risk_labels"], out["n_ratings"]) == (3, 4) and out["rating_recall"] == 0.75
    assert out["wilson_low"] == pytest.approx(0.3006, abs=1e-4)
    assert math.isnan(out["ci_low"]) and "no bootstrap interval" in out["ci_note"]


def test_recall_bootstrap_resamples_conversations_with_the_platform_seed():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(40, 3)).astype(float)
    ref = np.full(40, 2.0)
    out = high_risk_recall(x, ref, [2], n_boot=500, seed=7)
    share = (x == 2).mean(axis=1)
    values, freq = np.unique(share, return_counts=True)
    boot = np.concatenate([(w @ values) / w.sum(axis=1) for w in resample_weights(freq, 500, 7)])
    assert out["recall"] == pytest.approx(share.mean())
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(np.quantile(boot, 0.025)),
                                               pytest.approx(np.quantile(boot, 0.975)))
    assert out["ci_low"] < out["recall"] < out["ci_high"]
    assert high_risk_recall(x, ref, [2], n_boot=500, seed=7) == out  # seeded: the same interval again


def test_ac1_interval_equals_ac1_recomputed_on_every_resample():
    rng = np.random.default_rng(11)
    x = rng.choice([0.0, 1.0, 2.0, 3.0], size=(45, 4), p=[0.5, 0.2, 0.2, 0.1])
    x[rng.random(x.shape) < 0.3] = nan
    out = gwet_ac1_ci(x, 4, n_boot=200, seed=3)
    assert out["coefficient"] == pytest.approx(gwet_ac(x, [0, 1, 2, 3])["coefficient"])
    rated = (~np.isnan(x)).sum(axis=1) >= 1
    patterns, freq = _patterns(x[rated])
    slow = []
    for block in resample_weights(freq, 200, 3):
        for w in block:
            resample = np.repeat(patterns, w.astype(int), axis=0)
            slow.append(gwet_ac(resample, [0, 1, 2, 3])["coefficient"])
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(np.quantile(slow, 0.025)),
                                               pytest.approx(np.quantile(slow, 0.975)))
    assert out["n_boot_defined"] == 200


def test_ac1_gives_no_interval_on_too_few_conversations():
    out = gwet_ac1_ci(SMALL, 3, n_boot=100)
    assert math.isnan(out["ci_low"]) and "no interval" in out["ci_note"]


def test_nominal_statistics_bundle_with_and_without_reference():
    stats = nominal_statistics(SMALL, LABELS, [2], REFERENCE, n_boot=0)
    assert stats["categories"] == LABELS and stats["high_risk"] == ["high"]
    ref = stats["reference"]
    assert ref["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 1, 3]]
    assert ref["agreement"] == pytest.approx(7 / 8) and ref["n_conversations"] == 4
    assert ref["high_risk_recall"]["recall"] == pytest.approx(0.75)
    assert nominal_statistics(SMALL, LABELS, [2], np.full(5, nan), n_boot=0)["reference"] is None
