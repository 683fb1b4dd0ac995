"""Result-table helpers against hand-computed values on small fixed data."""

import numpy as np
import pytest

from results.stats import describe, mann_whitney, share_at_least, unit_means, welch_t


def test_describe_by_hand():
    # mean 5; sum of squared deviations 32 -> SD sqrt(32/7) = 2.13809; t(0.975, 7) = 2.36462 (t table);
    # half-width 2.36462 * 2.13809 / sqrt(8) = 1.78749.
    r = describe([2, 4, 4, 4, 5, 5, 7, 9, np.nan])
    assert r["n"] == 8
    assert r["mean"] == pytest.approx(5.0)
    assert r["sd"] == pytest.approx(2.13809, abs=1e-5)
    assert r["ci_low"] == pytest.approx(5 - 1.78749, abs=1e-4)
    assert r["ci_high"] == pytest.approx(5 + 1.78749, abs=1e-4)


def test_describe_small_samples():
    one = describe([3.0])
    assert one["n"] == 1 and one["mean"] == 3.0 and np.isnan(one["sd"]) and np.isnan(one["ci_low"])
    assert describe([])["n"] == 0 and np.isnan(describe([])["mean"])


def test_share_at_least_with_wilson_interval():
    # 3 of 5 ratings are "good" (>= 3). Wilson 95% interval for 3/5: (0.2307, 0.8824).
    r = share_at_least([1, 2, 3, 4, 3, np.nan], 3)
    assert (r["n"], r["count"]) == (5, 3)
    assert r["share"] == pytest.approx(0.6)
    assert r["ci_low"] == pytest.approx(0.2307, abs=1e-4)
    assert r["ci_high"] == pytest.approx(0.8824, abs=1e-4)
    # Binary labels (diagnostic accuracy): threshold 1.
    assert share_at_least([1, 0, 1, 1], 1)["share"] == pytest.approx(0.75)


def test_mann_whitney_by_hand():
    # a = 1, 3, 5 vs b = 2, 4, 6, 8: pairs with a > b: 3 > 2; 5 > 2, 4 -> U_a = 3 of 12.
    # rank-biserial = 2 * 3 / 12 - 1 = -0.5. Exact null distribution of U for sizes 3 and 4 over the
    # 35 arrangements: P(U <= 3) = (1 + 1 + 2 + 3) / 35 = 0.2, two-sided p = 0.4.
    r = mann_whitney([1, 3, 5], [2, 4, 6, 8, np.nan])
    assert (r["n_a"], r["n_b"]) == (3, 4)
    assert r["u"] == 3.0
    assert r["rank_biserial"] == pytest.approx(-0.5)
    assert r["p_value"] == pytest.approx(0.4)
    assert (r["median_a"], r["median_b"]) == (3.0, 5.0)


def test_mann_whitney_published_example_shier_2004():
    """Shier, R. (2004). "Statistics: 2.3 The Mann-Whitney U Test", Mathematics Learning Support Centre
    (the worked example SciPy's mannwhitneyu documentation reproduces): ages at diagnosis of type II
    diabetes, males 19, 22, 16, 29, 24 and females 20, 11, 17, 12. Published: U_M = 17, U_F = 3, exact
    two-sided p = 0.11. The rank-biserial r is not in that source; it is Kerby's (2014) simple
    difference formula applied to the published U by hand: r = f - u = 17/20 - 3/20 = 0.700."""
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    r = mann_whitney(males, females)
    assert (r["n_a"], r["n_b"], r["u"]) == (5, 4, 17.0)
    assert round(r["p_value"], 2) == 0.11
    assert round(r["rank_biserial"], 3) == 0.700
    reverse = mann_whitney(females, males)
    assert reverse["u"] == 3.0 and reverse["rank_biserial"] == pytest.approx(-0.7)
    assert reverse["p_value"] == pytest.approx(r["p_value"])


def test_mann_whitney_tortoises_and_hares():
    """Wikipedia, "Mann-Whitney U test", section "Illustration of calculation methods": 6 tortoises and
    6 hares finish in the order T H H H H H T T T T T H. Published: U_T = 11 (tortoises beat 6, 1, 1, 1,
    1, 1 hares), U_H = 25, U_T + U_H = 36. Our U counts pairs where group a has the larger value, so the
    finishing places go in with their sign flipped (earlier = better). Rank-biserial by hand with Kerby's
    (2014) r = f - u: tortoises (11 - 25)/36 = -0.389, hares +0.389."""
    order = "THHHHHTTTTTH"
    tortoises = [-place for place, who in enumerate(order, start=1) if who == "T"]
    hares = [-place for place, who in enumerate(order, start=1) if who == "H"]
    r = mann_whitney(tortoises, hares)
    assert (r["n_a"], r["n_b"], r["u"]) == (6, 6, 11.0)
    assert mann_whitney(hares, tortoises)["u"] == 25.0
    assert round(r["rank_biserial"], 3) == -0.389


def test_welch_t_and_cohens_d_by_hand():
    # means 3 and 6, variances 2.5 and 10 (n = 5 each): se^2 = 0.5 + 2 = 2.5, t = -3 / 1.58114 = -1.89737,
    # Welch df = 2.5^2 / (0.5^2/4 + 2^2/4) = 5.88235; pooled SD = sqrt((4*2.5 + 4*10)/8) = 2.5, d = -1.2.
    r = welch_t([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert r["t"] == pytest.approx(-1.89737, abs=1e-5)
    assert r["df"] == pytest.approx(5.88235, abs=1e-5)
    assert r["cohens_d"] == pytest.approx(-1.2)
    # Two-sided p from the t distribution with those df (t table interpolation gives about 0.107).
    assert r["p_value"] == pytest.approx(0.107, abs=0.002)
    assert (r["mean_a"], r["mean_b"]) == (3.0, 6.0)


def test_comparisons_with_too_little_data_are_undefined():
    assert np.isnan(welch_t([1.0], [2.0, 3.0])["t"])
    assert np.isnan(mann_whitney([], [1.0])["u"])


def test_unit_means_average_raters_per_conversation():
    x = np.array([[1.0, 3.0, np.nan], [4.0, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    means = unit_means(x)
    assert means[0] == 2.0 and means[1] == 4.0 and np.isnan(means[2])
