"""Pairwise weighted kappa and the ICC: published examples and definitions."""

import numpy as np
import pytest
from results_stats_data import ABSTRACTORS_TABLE, SHROUT_FLEISS_1979, table_to_matrix

from results.stats import intraclass_correlation, pairwise_quadratic_kappa, pairwise_unweighted_kappa


def test_quadratic_kappa_published_example():
    # Gwet, irrCAC vignette "Weighted Chance-corrected Agreement Coefficients" (2021):
    # kappa2.table(cont3x3abstractors, weights = quadratic.weights(1:3)) = 0.8921569.
    result = pairwise_quadratic_kappa(table_to_matrix(ABSTRACTORS_TABLE))
    assert round(result["kappa"][0, 1], 3) == 0.892
    assert result["kappa"][0, 1] == pytest.approx(0.8921569, abs=5e-8)
    assert result["kappa"][1, 0] == result["kappa"][0, 1]
    assert result["n_shared"][0, 1] == 100


def test_unweighted_kappa_published_example():
    # Same source, overview vignette: kappa2.table(cont3x3abstractors) = 0.7964094.
    result = pairwise_unweighted_kappa(table_to_matrix(ABSTRACTORS_TABLE))
    assert result["kappa"][0, 1] == pytest.approx(0.7964094, abs=5e-8)


def _kappa_from_table(a, b):
    """Textbook Cohen (1968): 1 - sum v p_obs / sum v p_exp over the contingency table, v = (i-j)^2."""
    cats = np.unique(np.concatenate([a, b]))
    idx = {c: i for i, c in enumerate(cats)}
    table = np.zeros((cats.size, cats.size))
    for x, y in zip(a, b, strict=True):
        table[idx[x], idx[y]] += 1
    p = table / table.sum()
    v = (cats[:, None] - cats[None, :]) ** 2
    expected = np.outer(p.sum(axis=1), p.sum(axis=0))
    return 1 - (v * p).sum() / (v * expected).sum()


def test_moment_formula_equals_the_contingency_table_definition_with_missing_ratings():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 5, size=(400, 5)).astype(float)
    x[:, 1] = np.where(rng.random(400) < 0.6, x[:, 0], x[:, 1])
    x[rng.random(x.shape) < 0.35] = np.nan
    result = pairwise_quadratic_kappa(x)
    for a in range(5):
        for b in range(5):
            if a == b:
                assert np.isnan(result["kappa"][a, b])
                assert result["n_shared"][a, a] == (~np.isnan(x[:, a])).sum()
                continue
            shared = ~np.isnan(x[:, a]) & ~np.isnan(x[:, b])
            assert result["n_shared"][a, b] == shared.sum()
            expected = _kappa_from_table(x[shared, a], x[shared, b])
            assert result["kappa"][a, b] == pytest.approx(expected, abs=1e-10)


def test_kappa_nan_when_too_few_shared_units_or_undefined():
    x = np.array(
        [
            [1.0, 1.0, np.nan, 3.0],
            [2.0, np.nan, 4.0, 3.0],
            [3.0, np.nan, np.nan, 3.0],
        ]
    )
    result = pairwise_quadratic_kappa(x)
    assert result["n_shared"][0, 1] == 1 and np.isnan(result["kappa"][0, 1])  # one shared unit
    assert result["n_shared"][1, 2] == 0 and np.isnan(result["kappa"][1, 2])  # none shared
    # Rater 3 always gives 3 while rater 0 varies: no covariance, so kappa is defined and 0.
    assert result["kappa"][0, 3] == pytest.approx(0.0)
    const = np.array([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    assert np.isnan(pairwise_quadratic_kappa(const)["kappa"][0, 1])  # 0/0: both constant and equal


def test_quadratic_equals_unweighted_for_two_categories():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 2, size=(300, 4)).astype(float)
    x[rng.random(x.shape) < 0.3] = np.nan
    q, u = pairwise_quadratic_kappa(x)["kappa"], pairwise_unweighted_kappa(x)["kappa"]
    assert np.allclose(q, u, equal_nan=True)


def test_shrout_fleiss_1979_crossed_design():
    """Shrout & Fleiss (1979), Table 2 data (6 targets x 4 judges). Published to two decimals: Table 3
    BMS = 11.24, JMS = 32.49, EMS = 1.02 (WMS = 6.26); Table 4 ICC(1,1) = .17, ICC(2,1) = .29,
    ICC(1,4) = .44, ICC(2,4) = .62. The same data is the example of DescTools' ICC() help
    page (`ICC(sf)`, which prints no output there), so no third-decimal value is published that we know
    of: the three-decimal figures below are our hand computation from the table, e.g. row means 6, 3,
    6.5, 4, 7.5, 4.75, grand mean 127/24; BMS = 4 x 14.052083 / 5 = 11.241667; WMS = 112.75 / 18 =
    6.263889; ICC(1,4) = (11.241667 - 6.263889) / 11.241667 = 0.4428; ICC(2,4) = 10.222222 / 16.486111
    = 0.6201; ICC(2,1) = 10.222222 / 35.277778 = 0.2898; ICC(1,1) = 4.977778 / 30.033333 = 0.1657."""
    result = intraclass_correlation(SHROUT_FLEISS_1979)
    assert (result["design"], result["model"], result["n"], result["k"]) == ("crossed", "ICC(2,k)", 6, 4)
    published = {"bms": 11.24, "jms": 32.49, "ems": 1.02, "wms": 6.26, "icc11": 0.17, "icc21": 0.29,
                 "icc1k": 0.44, "icc2k": 0.62}
    for key, value in published.items():
        assert round(result[key], 2) == value, key
    by_hand = {"icc2k": 0.620, "icc21": 0.290, "icc1k": 0.443, "icc11": 0.166}
    for key, value in by_hand.items():
        assert round(result[key], 3) == value, key
    assert result["value"] == result["icc2k"]


def test_icc_crossed_design_uses_complete_units_only():
    x = np.vstack([SHROUT_FLEISS_1979, [[1.0, np.nan, 3.0, 4.0], [np.nan, np.nan, 2.0, 2.0]]])
    result = intraclass_correlation(x)
    assert (result["design"], result["n"]) == ("crossed", 6)
    assert result["icc2k"] == pytest.approx(intraclass_correlation(SHROUT_FLEISS_1979)["icc2k"])
    sparse = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan]])
    assert np.isnan(intraclass_correlation(sparse)["value"]) and intraclass_correlation(sparse)["n"] == 0


def test_icc_one_way_with_missing_ratings_by_hand():
    """Unequal numbers of ratings per conversation (no published example found; a hand computation in
    exact fractions). Conversations with >= 2 ratings: (1, 2), (3, 3, 4), (5, 6); the last row has one
    rating and is left out. N = 7 ratings, n = 3, grand mean 24/7, group means 3/2, 10/3, 11/2.
    BMS = [2 (3/2 - 24/7)^2 + 3 (10/3 - 24/7)^2 + 2 (11/2 - 24/7)^2] / 2 = (337/21) / 2 = 337/42;
    WMS = (1/2 + 2/3 + 1/2) / (7 - 3) = 5/12; k0 = (7 - (4 + 9 + 4)/7) / 2 = 16/7;
    ICC(1,1) = (337/42 - 5/12) / (337/42 + (9/7)(5/12)) = 639/719 = 0.889; k = 2 (the most common count):
    ICC(1,2) = 2 (639/719) / (1 + 639/719) = 639/679 = 0.941."""
    x = np.array([[1, 2, np.nan], [3, 3, 4], [5, np.nan, 6], [2, np.nan, np.nan]], dtype=float)
    result = intraclass_correlation(x)
    assert (result["design"], result["model"], result["n"], result["n_ratings"], result["k"]) == (
        "overlap", "ICC(1,k)", 3, 7, 2)
    assert result["bms"] == pytest.approx(337 / 42) and result["wms"] == pytest.approx(5 / 12)
    assert result["k0"] == pytest.approx(16 / 7)
    assert result["icc11"] == pytest.approx(639 / 719) and round(result["icc11"], 3) == 0.889
    assert result["value"] == result["icc1k"] == pytest.approx(639 / 679) and round(result["value"], 3) == 0.941
    assert np.isnan(result["icc2k"])  # no rater effect can be estimated without a crossed table


def test_icc_one_way_equals_shrout_fleiss_when_k_raters_come_from_a_larger_pool():
    """Each target's four ratings spread over a pool of nine raters (nobody rates everything): raters
    are nested in targets, and the one-way model gives Shrout & Fleiss's ICC(1,4) = .44 (0.443 by the
    hand computation above) whichever columns the ratings land in."""
    rng = np.random.default_rng(7)
    pool = np.full((6, 9), np.nan)
    for unit, ratings in enumerate(np.asarray(SHROUT_FLEISS_1979, dtype=float)):
        pool[unit, np.sort(rng.choice(9, size=4, replace=False))] = ratings
    result = intraclass_correlation(pool)
    assert (result["design"], result["model"], result["n"], result["k"]) == ("overlap", "ICC(1,k)", 6, 4)
    assert round(result["value"], 3) == 0.443 and round(result["icc11"], 3) == 0.166
    assert result["k0"] == pytest.approx(4.0)
    assert np.isnan(result["icc2k"]) and np.isnan(result["icc21"])
    shuffled = intraclass_correlation(pool[:, rng.permutation(9)])
    assert shuffled["value"] == pytest.approx(result["value"], abs=1e-12)


def test_icc_simulated_overlap_design_recovers_the_reliability_of_the_mean():
    """The platform's design: 2,000 conversations, each rated by k = 3 of 40 raters who differ in
    leniency (SD 0.8) on top of noise (SD 0.5), true scores SD 1. The one-way model treats leniency as
    error, so the reliability of a conversation's mean is s_t^2 / (s_t^2 + (s_r^2 + s_e^2) / k) (about
    0.75 here). The estimate lands within sampling error (0.03 here); it does not depend on the order of
    the rater columns, which the old "first k ratings in rater order" table did."""
    rng = np.random.default_rng(3)
    n, pool, k = 2000, 40, 3
    truth = rng.normal(0.0, 1.0, n)
    leniency = rng.normal(0.0, 0.8, pool)
    columns = np.argsort(rng.random((n, pool)), axis=1)[:, :k]
    x = np.full((n, pool), np.nan)
    np.put_along_axis(x, columns, truth[:, None] + leniency[columns] + rng.normal(0.0, 0.5, (n, k)), axis=1)
    result = intraclass_correlation(x)
    assert (result["design"], result["model"], result["k"], result["n"]) == ("overlap", "ICC(1,k)", 3, n)
    s2t, s2w = truth.var(ddof=1), leniency.var(ddof=1) + 0.25
    expected = s2t / (s2t + s2w / k)
    assert abs(result["value"] - expected) < 0.03
    reordered = intraclass_correlation(x[:, rng.permutation(pool)])
    assert reordered["value"] == pytest.approx(result["value"], abs=1e-12)


def test_icc_is_one_for_identical_raters():
    truth = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    assert intraclass_correlation(np.column_stack([truth, truth, truth]))["value"] == pytest.approx(1.0)
    pooled = np.full((5, 6), np.nan)
    for i, v in enumerate(truth):
        pooled[i, [i % 6, (i + 2) % 6]] = v
    assert intraclass_correlation(pooled)["value"] == pytest.approx(1.0)


def test_agreement_output_names_the_icc_model_design_and_k():
    from results.stats import compute_agreement

    x = np.array([[1, 2, np.nan], [3, 3, 4], [5, np.nan, 6], [2, np.nan, np.nan]], dtype=float)
    icc = compute_agreement(x, "interval", n_boot=0)["icc"]
    assert (icc["model"], icc["design"], icc["k"]) == ("ICC(1,k)", "overlap", 2)
    assert icc["icc2k"] is None  # NaN -> None in the JSON output
