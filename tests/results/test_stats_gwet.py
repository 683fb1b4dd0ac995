"""Gwet's AC1/AC2 and percent agreement: published results, properties."""

import numpy as np
import pytest
from results_stats_data import ABSTRACTORS_TABLE, KRIPPENDORFF_2011, table_to_matrix

from results.stats import gwet_ac, gwet_weights, krippendorff_alpha, percent_agreement

# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120 data (4 raters x 12 subjects with
# missing ratings, irrCAC's `cac.raw4raters`, identical to Krippendorff's 2011 example). Published by Gwet
# himself (irrCAC R package documentation, `gwet.ac1.raw(cac.raw4raters, weights=...)$est`):
#  - unweighted AC1 = 0.775, pa = 0.818, pe = 0.190 (irrCAC overview vignette);
#  - quadratic AC2 = 0.914, pa = 0.9753788, pe = 0.7137044 ("Weighted Chance-corrected Agreement
#    Coefficients", irrCAC vignette, section "Weighting for a dataset of raw ratings").
GWET_PUBLISHED = {
    "identity": (0.775, 0.818, 0.190),
    "quadratic": (0.914, 0.975, 0.714),
}
# Gwet's documentation shows no linear or ordinal AC2 for these data (the vignette only says "replace
# 'quadratic' with 'ordinal', 'linear', ..."). These values are NOT from Gwet: they are the ones the
# third-party Python port of irrCAC asserts in its tests (afergadis/irrCAC,
# test/unit/irrCAC/raw/test_gwet.py), and `test_weighted_ac2_equals_the_handbook_formula_term_by_term`
# below recomputes them independently from Gwet's formulas and his printed weight matrices.
GWET_PORT = {
    "linear": (0.859, 0.939, 0.571),
    "ordinal": (0.899, 0.968, 0.685),
}

# Gwet's irrCAC data set `distrib.6raters`: 6 psychiatrists put 15 patients into 5 diagnostic categories
# (Fleiss 1971), given as the number of raters per patient and category. Gwet's weighting vignette
# prints gwet.ac1.dist(distrib.6raters, weights = quadratic.weights(1:5)): AC2 = 0.4837438,
# pa = 0.8544444, pe = 0.7180556. (The counts are those of inst/extdata/xdist6x5psy.csv in Gwet's
# repository; that they reproduce all seven printed decimals confirms they are the same data.)
DISTRIB_6RATERS = np.array([
    [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
])


def distribution_to_matrix(counts: np.ndarray) -> np.ndarray:
    """Units x raters matrix (categories 1..q) from a units x categories table of rater counts."""
    return np.array([np.repeat(np.arange(1, counts.shape[1] + 1), row) for row in counts], dtype=float)


@pytest.mark.parametrize("weights", list(GWET_PUBLISHED))
def test_gwet_handbook_example_with_missing_ratings(weights):
    coefficient, pa, pe = GWET_PUBLISHED[weights]
    result = gwet_ac(KRIPPENDORFF_2011, weights=weights)
    assert round(result["coefficient"], 3) == coefficient
    assert round(result["pa"], 3) == pa
    assert round(result["pe"], 3) == pe
    assert result["n_units"] == 11  # p_a uses units with >= 2 ratings
    assert result["n_rated_units"] == 12  # pi_k uses every rated unit
    assert result["q"] == 5


def test_gwet_quadratic_ac2_six_raters_published_example():
    result = gwet_ac(distribution_to_matrix(DISTRIB_6RATERS), categories=[1, 2, 3, 4, 5], weights="quadratic")
    assert result["coefficient"] == pytest.approx(0.4837438, abs=5e-8)
    assert result["pa"] == pytest.approx(0.8544444, abs=5e-8)
    assert result["pe"] == pytest.approx(0.7180556, abs=5e-8)
    assert (result["n_units"], result["q"]) == (15, 5)


def _ac2_term_by_term(x: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Gwet (2014) ch. 3 written out with loops, independently of results.stats.gwet (categories 1..q)."""
    q = weights.shape[0]
    pa_terms, pi = [], np.zeros(q)
    rated = 0
    for row in x:
        ratings = [int(v) - 1 for v in row if not np.isnan(v)]
        if not ratings:
            continue
        rated += 1
        r_i = len(ratings)
        r_ik = [ratings.count(k) for k in range(q)]
        for k in range(q):
            pi[k] += r_ik[k] / r_i
        if r_i >= 2:
            pa_terms.append(sum(r_ik[k] * (sum(weights[k, m] * r_ik[m] for m in range(q)) - 1)
                                for k in range(q)) / (r_i * (r_i - 1)))
    pi /= rated
    pa = sum(pa_terms) / len(pa_terms)
    pe = weights.sum() / (q * (q - 1)) * sum(p * (1 - p) for p in pi)
    return (pa - pe) / (1 - pe), pa, pe


@pytest.mark.parametrize("weights", list(GWET_PORT))
def test_weighted_ac2_equals_the_handbook_formula_term_by_term(weights):
    # Gwet's own weights for 5 categories: linear 1 - |k-l|/4; ordinal 1 - C(|k-l|+1, 2)/C(5, 2)
    # (the 3-category matrices Gwet prints in his weighting vignette are checked in
    # test_gwet_weight_definitions).
    gap = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :])
    w = 1 - gap / 4 if weights == "linear" else 1 - (gap + 1) * gap / 2 / 10
    expected = _ac2_term_by_term(KRIPPENDORFF_2011, w)
    result = gwet_ac(KRIPPENDORFF_2011, weights=weights)
    assert (result["coefficient"], result["pa"], result["pe"]) == pytest.approx(expected, abs=1e-12)
    coefficient, pa, pe = GWET_PORT[weights]  # the third-party port's figures, see above
    assert (round(result["coefficient"], 3), round(result["pa"], 3), round(result["pe"], 3)) == (coefficient, pa, pe)


def test_quadratic_ac2_to_the_published_seven_decimals():
    result = gwet_ac(KRIPPENDORFF_2011, weights="quadratic")
    assert result["pa"] == pytest.approx(0.9753788, abs=5e-8)
    assert result["pe"] == pytest.approx(0.7137044, abs=5e-8)


def test_ac1_two_raters_contingency_table():
    # Gwet's irrCAC overview vignette: gwet.ac1.table(cont3x3abstractors) = 0.8493305, percent
    # agreement 0.89. The same table expanded to 100 units x 2 raters must give the same AC1.
    x = table_to_matrix(ABSTRACTORS_TABLE)
    assert gwet_ac(x)["coefficient"] == pytest.approx(0.8493305, abs=5e-8)
    assert percent_agreement(x)["value"] == pytest.approx(0.89)


def test_gwet_weight_definitions():
    v = np.array([1.0, 2.0, 3.0])
    # Values printed in the irrCAC weighting vignette for categories 1:3.
    assert np.allclose(gwet_weights(v, "quadratic"), [[1, 0.75, 0], [0.75, 1, 0.75], [0, 0.75, 1]])
    assert np.allclose(gwet_weights(v, "linear"), [[1, 0.5, 0], [0.5, 1, 0.5], [0, 0.5, 1]])
    assert np.allclose(gwet_weights(v, "ordinal"), [[1, 2 / 3, 0], [2 / 3, 1, 2 / 3], [0, 2 / 3, 1]])
    # Gwet's ordinal weights depend on ranks only, not on the values or on the data.
    assert np.allclose(gwet_weights(np.array([1.0, 2.0, 10.0]), "ordinal"), gwet_weights(v, "ordinal"))
    with pytest.raises(ValueError, match="weights must be one of"):
        gwet_weights(v, "cubic")


def test_unrated_category_changes_ac1_but_not_alpha():
    x = KRIPPENDORFF_2011
    ac1 = gwet_ac(x, categories=[1, 2, 3, 4, 5])["coefficient"]
    ac1_extra = gwet_ac(x, categories=[1, 2, 3, 4, 5, 6])["coefficient"]
    alpha = krippendorff_alpha(x, "nominal", categories=[1, 2, 3, 4, 5], n_boot=0)["alpha"]
    alpha_extra = krippendorff_alpha(x, "nominal", categories=[1, 2, 3, 4, 5, 6], n_boot=0)["alpha"]
    assert ac1_extra != pytest.approx(ac1, abs=1e-6)
    # q grows from 5 to 6: pe = sum pi(1-pi)/(q-1) shrinks, so AC1 rises.
    assert ac1_extra > ac1
    assert alpha_extra == pytest.approx(alpha, abs=1e-12)


def test_ac1_stays_high_when_almost_everyone_gives_the_same_score():
    # The "kappa paradox": 95% agreement on a skewed binary label. Alpha collapses, AC1 does not.
    x = np.array([[1.0, 1.0]] * 95 + [[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 2)
    alpha = krippendorff_alpha(x, "nominal", n_boot=0)["alpha"]
    ac1 = gwet_ac(x, categories=[0, 1])["coefficient"]
    assert percent_agreement(x)["value"] == pytest.approx(0.95)
    assert alpha < 0.0 < 0.9 < ac1


def test_percent_agreement_by_hand():
    # Unit 1: ratings 1,1,2 -> pairs (1,1) agree, (1,2) x2 disagree: 1/3 exact, 3/3 within one.
    # Unit 2: ratings 1,3 -> 0/1 exact, 0/1 within one. Unit 3: one rating, not pairable.
    x = np.array([[1.0, 1.0, 2.0], [1.0, np.nan, 3.0], [4.0, np.nan, np.nan]])
    exact = percent_agreement(x, 0)
    within = percent_agreement(x, 1)
    assert exact["value"] == pytest.approx((1 / 3 + 0) / 2)
    assert within["value"] == pytest.approx((1 + 0) / 2)
    assert exact["n_units"] == within["n_units"] == 2
    # Exact percent agreement is Gwet's unweighted p_a.
    assert percent_agreement(KRIPPENDORFF_2011)["value"] == pytest.approx(gwet_ac(KRIPPENDORFF_2011)["pa"])


def test_nothing_pairable_gives_nan():
    x = np.array([[1.0, np.nan], [np.nan, 2.0]])
    assert np.isnan(gwet_ac(x)["coefficient"])
    assert np.isnan(percent_agreement(x)["value"])
