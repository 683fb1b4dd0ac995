"""Gwet's AC1/AC2 and percent agreement: published results, properties."""

import numpy as np
import pytest
from results_stats_data import ABSTRACTORS_TABLE, KRIPPENDORFF_2011, table_to_matrix

from results.stats import gwet_ac, gwet_weights, krippendorff_alpha, percent_agreement

# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120 data (4 raters x 12 subjects with
# missing ratings, irrCAC's `cac.raw4raters`, identical to Krippendorff's 2011 example). Published
# results of Gwet's irrCAC R package, `gwet.ac1.raw(cac.raw4raters, weights=...)`:
#  - unweighted AC1 = 0.775, pa = 0.818, pe = 0.190 (irrCAC overview vignette);
#  - quadratic AC2 = 0.914, pa = 0.9753788, pe = 0.7137044 (Gwet, "Weighted Chance-corrected Agreement
#    Coefficients", irrCAC vignette, 2021-08-15);
#  - linear AC2 = 0.859 (pa 0.939, pe 0.571), ordinal AC2 = 0.899 (pa 0.968, pe 0.685), as reproduced by
#    the irrCAC Python port's tests (afergadis/irrCAC, test/unit/irrCAC/raw/test_gwet.py).
GWET_PUBLISHED = {
    "identity": (0.775, 0.818, 0.190),
    "quadratic": (0.914, 0.975, 0.714),
    "linear": (0.859, 0.939, 0.571),
    "ordinal": (0.899, 0.968, 0.685),
}


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
