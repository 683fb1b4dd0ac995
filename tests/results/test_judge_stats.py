"""Judge-vs-clinician statistics (results.stats.judge): hand-computed values, the `krippendorff` package,
Gwet's formulas, the paired bootstrap and the edge cases."""
import math
from fractions import Fraction

import krippendorff
import numpy as np
import pytest

from results.stats import gwet_ac, krippendorff_alpha, percent_agreement, unit_means
from results.stats.alpha import MIN_CI_UNITS
from results.stats.judge import (
    bootstrap_statistics,
    judge_agreement,
    judge_as_rater,
    judge_first_sample,
    judge_vs_mean,
    paired_categories,
    self_consistency,
)

NAN = np.nan
SEED = 20260521


def synthetic(n=400, raters=3, samples=2, seed=1, binary=False):
    """Clinicians and a lenient judge who see the same latent quality of each conversation."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(0.0, 1.0, n)
    if binary:
        humans = (latent[:, None] + rng.normal(0, 0.7, (n, raters)) > 0).astype(float)
        judge = (latent[:, None] + rng.normal(0.2, 0.6, (n, samples)) > 0).astype(float)
    else:
        humans = np.digitize(latent[:, None] + rng.normal(0, 0.6, (n, raters)), [-0.8, 0.2, 1.1]) + 1.0
        judge = np.digitize(latent[:, None] + rng.normal(0.3, 0.5, (n, samples)), [-0.8, 0.2, 1.1]) + 1.0
    humans[rng.random(humans.shape) < 0.15] = NAN
    return humans, judge


def test_judge_value_against_clinicians_mean_by_hand():
    # Six conversations: judge values and clinicians' means on a 1-4 scale.
    j = np.array([1, 2, 3, 4, 2, 3], dtype=float)
    h = np.array([1.5, 2, 2.5, 4, 3, 3])
    r = judge_vs_mean(j, h, [1, 2, 3, 4], n_boot=0)
    assert r["n_units"] == 6 and r["metric"] == "interval"
    # Bias = mean(j - h) = (-0.5 + 0 + 0.5 + 0 - 1 + 0) / 6.
    assert r["bias"]["value"] == pytest.approx(-1 / 6)
    assert r["mean_abs_difference"]["value"] == pytest.approx(2 / 6)
    sd = np.std(j - h, ddof=1)
    assert r["sd_difference"]["value"] == pytest.approx(sd)
    assert (r["loa_low"]["value"], r["loa_high"]["value"]) == pytest.approx((-1 / 6 - 1.96 * sd, -1 / 6 + 1.96 * sd))
    assert r["mean_judge"]["value"] == pytest.approx(2.5) and r["mean_humans"]["value"] == pytest.approx(16 / 6)
    # Alpha, interval metric: the krippendorff package on the two "raters".
    expected = krippendorff.alpha(reliability_data=np.vstack([j, h]), level_of_measurement="interval")
    assert r["alpha"]["value"] == pytest.approx(expected, abs=1e-12)
    # AC2, quadratic weights over {1, 1.5, 2, 2.5, 3, 4} (span 3), by hand with fractions:
    # p_a = mean weight of the pairs = (35/36 + 1 + 35/36 + 1 + 8/9 + 1) / 6 = 210/216;
    # pi = (1/12, 1/12, 1/4, 1/12, 1/3, 1/6), sum pi(1 - pi) = 7/9; T_w = 36 - 70/9 = 254/9; q = 6;
    # p_e = T_w / (q (q - 1)) * 7/9.
    pa = Fraction(210, 216)
    pe = Fraction(254, 9) / 30 * Fraction(7, 9)
    assert r["gwet_pa"]["value"] == pytest.approx(float(pa))
    assert r["gwet_pe"]["value"] == pytest.approx(float(pe))
    assert r["gwet_ac2"]["value"] == pytest.approx(float((pa - pe) / (1 - pe)))
    assert r["ac2_categories"] == 6
    # ... which is the platform's Gwet AC2 on the same two columns with those categories (irrCAC's formula).
    cats = paired_categories(np.concatenate([j, h]), [1, 2, 3, 4])
    assert r["gwet_ac2"]["value"] == pytest.approx(gwet_ac(np.column_stack([j, h]), cats, "quadratic")["coefficient"])


def test_binary_labels_compare_shares_and_reduce_to_nominal_alpha_and_ac1():
    # One judge sample and one clinician per conversation, 0/1 labels: interval alpha equals nominal alpha
    # and quadratic AC2 equals AC1, so binary axes are handled at the right level.
    j = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1], dtype=float)
    h = np.array([1, 0, 0, 0, 1, 1, 1, 1, 0, 1], dtype=float)
    r = judge_vs_mean(j, h, [0, 1], n_boot=0)
    nominal = krippendorff.alpha(reliability_data=np.vstack([j, h]), level_of_measurement="nominal")
    assert r["alpha"]["value"] == pytest.approx(nominal)
    ac1 = gwet_ac(np.column_stack([j, h]), [0, 1], "identity")["coefficient"]
    assert r["gwet_ac2"]["value"] == pytest.approx(ac1)
    assert r["bias"]["value"] == pytest.approx(0.0)


def test_judge_as_one_more_rater_matches_the_krippendorff_package():
    humans, judge = synthetic()
    first = judge_first_sample(judge)
    r = judge_as_rater(humans, first, "ordinal", [1, 2, 3, 4], n_boot=0)
    keep = (~np.isnan(humans)).sum(axis=1) >= 2
    assert r["n_units"] == int(keep.sum())
    alone = krippendorff.alpha(reliability_data=humans[keep].T, level_of_measurement="ordinal",
                               value_domain=[1, 2, 3, 4])
    with_judge = krippendorff.alpha(reliability_data=np.column_stack([humans, first])[keep].T,
                                    level_of_measurement="ordinal", value_domain=[1, 2, 3, 4])
    assert r["humans_only"]["value"] == pytest.approx(alone, abs=1e-12)
    assert r["with_judge"]["value"] == pytest.approx(with_judge, abs=1e-12)
    assert r["difference"]["value"] == pytest.approx(with_judge - alone, abs=1e-12)
    # Binary labels: the nominal metric.
    hb, jb = synthetic(binary=True)
    rb = judge_as_rater(hb, judge_first_sample(jb), "nominal", [0, 1], n_boot=0)
    keep = (~np.isnan(hb)).sum(axis=1) >= 2
    expected = krippendorff.alpha(reliability_data=np.column_stack([hb, jb[:, 0]])[keep].T,
                                  level_of_measurement="nominal")
    assert rb["with_judge"]["value"] == pytest.approx(expected, abs=1e-12)


def test_first_sample_skips_failed_samples():
    judge = np.array([[3, 4], [NAN, 2], [NAN, NAN]], dtype=float)
    assert np.array_equal(judge_first_sample(judge), [3, 2, NAN], equal_nan=True)


def test_self_consistency_is_alpha_and_exact_agreement_among_samples():
    _, judge = synthetic(samples=3)
    r = self_consistency(judge, "ordinal", [1, 2, 3, 4], n_boot=0)
    expected = krippendorff.alpha(reliability_data=judge.T, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4])
    assert r["alpha"]["alpha"] == pytest.approx(expected, abs=1e-12)
    assert r["exact_agreement"] == pytest.approx(percent_agreement(judge)["value"])
    assert r["n_samples"] == 3 and r["n_units"] == judge.shape[0]
    # Exact agreement by hand: three samples (3, 3, 4) agree on 1 of 3 pairs; (2, 2, 2) on all three.
    small = self_consistency(np.array([[3, 3, 4], [2, 2, 2]], dtype=float), "ordinal", [1, 2, 3, 4], n_boot=0)
    assert small["exact_agreement"] == pytest.approx((1 / 3 + 1) / 2)
    # One sample per conversation: nothing to report.
    assert self_consistency(judge[:, :1], "ordinal", [1, 2, 3, 4]) is None


def test_everything_for_one_axis_uses_the_mean_of_samples_and_the_platform_bootstrap():
    humans, judge = synthetic(n=300, samples=3)
    r = judge_agreement(humans, judge, "ordinal", [1, 2, 3, 4], n_boot=500, seed=SEED)
    assert r["judge_value"] == "mean_of_samples" and r["n_samples"] == 3
    direct = judge_vs_mean(judge.mean(axis=1), unit_means(humans), [1, 2, 3, 4], n_boot=500, seed=SEED)
    assert r["paired"] == direct
    assert r["self_consistency"]["alpha"]["ci_low"] < r["self_consistency"]["alpha"]["alpha"]
    for block in (r["paired"]["alpha"], r["paired"]["gwet_ac2"], r["paired"]["bias"],
                  r["one_more_rater"]["humans_only"], r["one_more_rater"]["with_judge"],
                  r["one_more_rater"]["difference"]):
        assert block["ci_low"] <= block["value"] <= block["ci_high"]
        assert block["n_boot_defined"] == 500
    # The lenient judge (it sees the latent quality shifted up) has a positive bias, and its interval says so.
    assert r["paired"]["bias"]["ci_low"] > 0
    # Same inputs, same seed: the same intervals; another seed moves them.
    again = judge_agreement(humans, judge, "ordinal", [1, 2, 3, 4], n_boot=500, seed=SEED)
    assert again == r
    other = judge_agreement(humans, judge, "ordinal", [1, 2, 3, 4], n_boot=500, seed=SEED + 1)
    assert other["paired"]["alpha"]["ci_low"] != r["paired"]["alpha"]["ci_low"]
    assert other["paired"]["alpha"]["value"] == r["paired"]["alpha"]["value"]


def test_bootstrap_interval_matches_a_naive_resampling_of_conversations():
    """The pattern-collapsed bootstrap is the ordinary one: resampling conversations one by one with another
    random stream gives nearly the same percentile interval."""
    humans, judge = synthetic(n=250, samples=1)
    h, j = unit_means(humans), judge[:, 0]
    ok = ~np.isnan(h)
    h, j = h[ok], j[ok]
    r = judge_vs_mean(j, h, [1, 2, 3, 4], n_boot=2000, seed=SEED)
    rng = np.random.default_rng(99)
    naive_alpha, naive_bias = [], []
    for _ in range(2000):
        idx = rng.integers(0, h.size, h.size)
        naive_alpha.append(krippendorff_alpha(np.column_stack([j[idx], h[idx]]), "interval", n_boot=0)["alpha"])
        naive_bias.append(float(np.mean(j[idx] - h[idx])))
    for name, naive in (("alpha", naive_alpha), ("bias", naive_bias)):
        low, high = np.quantile(naive, [0.025, 0.975])
        width = high - low
        assert r[name]["ci_low"] == pytest.approx(low, abs=0.1 * width)
        assert r[name]["ci_high"] == pytest.approx(high, abs=0.1 * width)


def test_paired_difference_interval_uses_the_same_resamples():
    """With the judge a copy of one clinician, alpha with the judge is above alpha alone on every resample,
    so a paired interval of the difference stays above 0 even where the two intervals overlap."""
    humans, _ = synthetic(n=200, raters=3)
    copy = humans[:, 0].copy()
    copy[np.isnan(copy)] = humans[np.isnan(copy), 1]
    r = judge_as_rater(humans, copy, "ordinal", [1, 2, 3, 4], n_boot=1000, seed=SEED)
    assert r["difference"]["ci_low"] > 0
    assert r["humans_only"]["ci_high"] > r["with_judge"]["ci_low"]  # the unpaired intervals overlap


def test_no_interval_below_thirty_conversations_and_undefined_values_are_nan():
    humans, judge = synthetic(n=MIN_CI_UNITS - 1)
    r = judge_agreement(humans, judge, "ordinal", [1, 2, 3, 4], n_boot=1000, seed=SEED)
    assert math.isnan(r["paired"]["alpha"]["ci_low"]) and "no interval" in r["paired"]["ci_note"]
    assert not math.isnan(r["paired"]["alpha"]["value"])
    # A judge that scored nothing: no units, nothing to compute, no error.
    empty = judge_agreement(humans, np.full_like(judge, NAN), "ordinal", [1, 2, 3, 4], n_boot=100, seed=SEED)
    assert empty["paired"]["n_units"] == 0 and empty["one_more_rater"]["n_units"] == 0
    assert empty["self_consistency"] is None
    # Every score the same: alpha is undefined (no variation), not a number made up.
    flat = judge_vs_mean(np.full(40, 3.0), np.full(40, 3.0), [1, 2, 3, 4], n_boot=100, seed=SEED)
    assert math.isnan(flat["alpha"]["value"]) and flat["bias"]["value"] == 0


def test_misaligned_inputs_are_refused():
    with pytest.raises(ValueError, match="aligned"):
        judge_agreement(np.ones((3, 2)), np.ones((4, 1)), "ordinal")
    with pytest.raises(ValueError, match="level"):
        judge_agreement(np.ones((3, 2)), np.ones((3, 1)), "likert")


def test_bootstrap_statistics_reports_each_statistic_from_the_same_resamples():
    keys = np.column_stack([np.arange(60) % 4, np.arange(60) % 3]).astype(float)

    def stats(patterns, w):
        n = w.sum(axis=1)
        return {"a": (w @ patterns[:, 0]) / n, "b": (w @ patterns[:, 1]) / n}

    out = bootstrap_statistics(keys, stats, 300, SEED)
    assert out["n_units"] == 60 and out["a"]["value"] == pytest.approx(keys[:, 0].mean())
    assert out["a"]["n_boot_defined"] == out["b"]["n_boot_defined"] == 300


def test_unit_patterns_are_the_distinct_rows_in_order_with_their_counts():
    from results.stats.judge import _unit_patterns

    rng = np.random.default_rng(3)
    rows = rng.integers(1, 5, (2000, 4)).astype(float)
    rows[rng.random(rows.shape) < 0.2] = NAN
    patterns, freq = _unit_patterns(rows)
    expected, counts = np.unique(np.nan_to_num(rows, nan=np.inf), axis=0, return_counts=True)
    assert np.array_equal(patterns, np.where(np.isinf(expected), NAN, expected), equal_nan=True)
    assert np.array_equal(freq, counts) and freq.sum() == 2000


def test_bias_interval_covers_the_true_bias_about_95_percent_of_the_time():
    """Simulated: 200 data sets of 60 conversations, a judge whose true mean offset from the clinicians'
    mean is known; the seeded percentile interval should hold it in about 95% of data sets."""
    rng = np.random.default_rng(2026)
    true_bias, hits, trials = 0.3, 0, 200
    for t in range(trials):
        quality = rng.normal(2.5, 0.7, 60)
        human = quality + rng.normal(0, 0.4, 60)
        judge = quality + true_bias + rng.normal(0, 0.5, 60)
        r = judge_vs_mean(judge, human, None, n_boot=300, seed=SEED + t)
        hits += r["bias"]["ci_low"] <= true_bias <= r["bias"]["ci_high"]
    assert 0.90 <= hits / trials <= 0.99
