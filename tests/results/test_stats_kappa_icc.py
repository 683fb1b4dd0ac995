"""Pairwise weighted kappa and ICC(2,k): published examples and definitions."""

import numpy as np
import pytest
from results_stats_data import ABSTRACTORS_TABLE, SHROUT_FLEISS_1979, table_to_matrix

from results.stats import icc2k, pairwise_quadratic_kappa, pairwise_unweighted_kappa


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


def test_shrout_fleiss_1979_icc_2k():
    # Shrout & Fleiss (1979), Table 3: BMS = 11.24, JMS = 32.49, EMS = 1.02; Table 4: ICC(2,1) = .29,
    # ICC(2,4) = .62. To three decimals the same mean squares give ICC(2,4) = 0.620, ICC(2,1) = 0.290.
    result = icc2k(SHROUT_FLEISS_1979)
    assert round(result["bms"], 2) == 11.24
    assert round(result["jms"], 2) == 32.49
    assert round(result["ems"], 2) == 1.02
    assert round(result["icc2k"], 2) == 0.62
    assert round(result["icc2k"], 3) == 0.620
    assert round(result["icc21"], 2) == 0.29
    # Table 4, one-way model: ICC(1,4) = .44 (WMS = 6.26).
    assert round(result["icc1k"], 2) == 0.44
    assert (result["n"], result["k"], result["design"]) == (6, 4, "crossed")


def test_icc_uses_complete_units_only():
    x = np.vstack([SHROUT_FLEISS_1979, [[1.0, np.nan, 3.0, 4.0], [np.nan, np.nan, 2.0, 2.0]]])
    result = icc2k(x)
    assert result["n"] == 6
    assert result["icc2k"] == pytest.approx(icc2k(SHROUT_FLEISS_1979)["icc2k"])
    sparse = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan]])
    assert np.isnan(icc2k(sparse)["icc2k"]) and icc2k(sparse)["n"] == 0


def test_icc_with_k_raters_per_unit_drawn_from_a_larger_pool():
    """The platform's design: each unit gets k = 4 of 9 raters, so no unit is rated by everyone. The
    Shrout & Fleiss ratings spread over the pool (each unit's four in rater order) must give the
    published figures: the slots are the table."""
    rng = np.random.default_rng(7)
    pool = np.full((6, 9), np.nan)
    for unit, ratings in enumerate(np.asarray(SHROUT_FLEISS_1979, dtype=float)):
        columns = np.sort(rng.choice(9, size=4, replace=False))
        pool[unit, columns] = ratings
    # One unit with only two ratings (below the modal k) stays out of the table.
    pool = np.vstack([pool, [[np.nan] * 7 + [2.0, 3.0]]])
    result = icc2k(pool)
    assert (result["design"], result["n"], result["k"]) == ("overlap", 6, 4)
    assert round(result["icc2k"], 3) == 0.620 and round(result["icc1k"], 2) == 0.44
    assert "first 4 ratings" in result["units_used"]


def test_icc_is_one_for_identical_raters():
    truth = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    assert icc2k(np.column_stack([truth, truth, truth]))["icc2k"] == pytest.approx(1.0)
