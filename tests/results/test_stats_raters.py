"""Per-rater statistics and the drift detector, checked against hand computation."""

import numpy as np
import pytest

from results.stats import rater_statistics
from results.stats.raters import DRIFT_MIN_BASELINE, DRIFT_WINDOW

nan = np.nan

# 4 units x 3 raters. Unit 3 has a single rating and is compared with nobody.
SMALL = np.array([[1.0, 1.0, 2.0], [2.0, 2.0, 2.0], [3.0, 4.0, nan], [1.0, nan, nan]])


def test_agreement_and_leniency_by_hand():
    r0, r1, r2 = rater_statistics(SMALL, "ordinal")
    # Rater 0: unit 0 agrees with 1 of 2 others, unit 1 with 2 of 2, unit 2 with 0 of 1 -> 3/5.
    assert (r0["n_rated"], r0["n_compared"]) == (4, 3)
    assert r0["exact_agreement"] == pytest.approx(3 / 5)
    assert r0["within_one_agreement"] == pytest.approx(5 / 5)
    # Leniency: (1 - 1.5) + (2 - 2) + (3 - 4) over 3 units.
    assert r0["leniency"] == pytest.approx((-0.5 + 0 - 1) / 3)
    assert r1["exact_agreement"] == pytest.approx(3 / 5)
    assert r1["leniency"] == pytest.approx((-0.5 + 0 + 1) / 3)
    # Rater 2: unit 0 agrees with 0 of 2, unit 1 with 2 of 2.
    assert r2["exact_agreement"] == pytest.approx(2 / 4)
    assert r2["leniency"] == pytest.approx((1 + 0) / 2)
    # Leniencies of a balanced design sum to zero when every unit has all raters; here they need not.
    assert r2["n_compared"] == 2


def test_gold_agreement_by_hand():
    gold = np.array([1.0, 2.0, nan, 2.0])
    r0 = rater_statistics(SMALL, "ordinal", gold=gold)[0]["gold"]
    assert r0["n"] == 3
    assert r0["exact"] == pytest.approx(2 / 3)
    assert r0["within_one"] == pytest.approx(1.0)
    assert r0["mean_offset"] == pytest.approx(-1 / 3)
    assert r0["mean_abs_error"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="gold has 2 entries for 4 units"):
        rater_statistics(SMALL, "ordinal", gold=[1.0, 2.0])


def test_mean_kappa_uses_defined_cells():
    kappa = np.array([[nan, 0.5, nan], [0.5, nan, 0.1], [nan, 0.1, nan]])
    stats = rater_statistics(SMALL, "ordinal", kappa=kappa)
    assert stats[0]["mean_kappa"] == pytest.approx(0.5) and stats[0]["n_kappa_partners"] == 1
    assert stats[1]["mean_kappa"] == pytest.approx(0.3) and stats[1]["n_kappa_partners"] == 2


def test_nominal_axes_have_no_within_one():
    stats = rater_statistics(SMALL, "nominal")
    assert np.isnan(stats[0]["within_one_agreement"])


def _campaign(n_units, drifting_after=None, seed=0):
    """3 raters on a 1-4 scale; raters 1 and 2 track the truth, rater 0 stops doing so after a point."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 5, n_units).astype(float)
    x = np.column_stack([truth, truth, truth])
    noise = rng.random(x.shape) < 0.1
    x[noise] = rng.integers(1, 5, noise.sum())
    if drifting_after is not None:
        late = np.arange(n_units) >= drifting_after
        x[late, 0] = rng.integers(1, 5, late.sum())  # rater 0 now rates at random
    times = np.tile(np.arange(n_units, dtype=float)[:, None], (1, 3))
    return x, times


def test_drift_flags_a_rater_whose_recent_agreement_fell():
    n = 400
    x, times = _campaign(n, drifting_after=n - DRIFT_WINDOW)
    stats = rater_statistics(x, "ordinal", timestamps=times)
    drift = stats[0]["drift"]
    assert drift["flagged"] and drift["status"] == "drifting" and drift["method"] == "peer-adjusted"
    assert drift["baseline_relative"] - drift["recent_relative"] >= 0.10
    assert drift["baseline_agreement"] - drift["recent_agreement"] >= 0.10
    assert drift["p_value"] < 0.05
    assert drift["n_recent"] == DRIFT_WINDOW and drift["n_baseline"] == n - DRIFT_WINDOW
    # Colleagues' agreement with "the others" also falls (rater 0 is one of their others), but their
    # agreement relative to their peers does not: they are not flagged.
    assert stats[1]["drift"]["baseline_agreement"] - stats[1]["drift"]["recent_agreement"] >= 0.05
    assert not stats[1]["drift"]["flagged"] and stats[1]["drift"]["status"] == "stable"
    # The series for the "agreement over time" plot: one point per window of DRIFT_WINDOW ratings.
    assert [p["n"] for p in drift["series"]] == [DRIFT_WINDOW] * (n // DRIFT_WINDOW)
    assert drift["series"][-1]["agreement"] < drift["series"][0]["agreement"]


def test_drift_uses_time_order_not_row_order():
    n = 400
    x, times = _campaign(n, drifting_after=n - DRIFT_WINDOW)
    # Rater 0 did the bad late rows first: in time order the bad ratings are the oldest, so no drift.
    times[:, 0] = times[::-1, 0]
    assert not rater_statistics(x, "ordinal", timestamps=times)[0]["drift"]["flagged"]


def test_no_drift_for_a_steady_rater_and_none_without_enough_history():
    x, times = _campaign(600)
    assert not any(s["drift"]["flagged"] for s in rater_statistics(x, "ordinal", timestamps=times))
    short = DRIFT_WINDOW + DRIFT_MIN_BASELINE - 1
    x, times = _campaign(short, drifting_after=short - DRIFT_WINDOW)
    drift = rater_statistics(x, "ordinal", timestamps=times)[0]["drift"]
    assert drift["status"] == "insufficient data" and not drift["flagged"]


def test_timestamps_are_validated():
    with pytest.raises(ValueError, match="timestamps have shape"):
        rater_statistics(SMALL, "ordinal", timestamps=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="every rating needs a timestamp"):
        rater_statistics(SMALL, "ordinal", timestamps=np.full(SMALL.shape, nan))


def test_two_raters_per_unit_fall_back_to_the_unadjusted_rule():
    n = 400
    x, times = _campaign(n, drifting_after=n - DRIFT_WINDOW)
    x, times = x[:, :2], times[:, :2]  # only raters 0 and 1: nobody has peers
    stats = rater_statistics(x, "ordinal", timestamps=times)
    # Who drifted cannot be told apart with two raters: the pair's drop flags both for review.
    assert [s["drift"]["method"] for s in stats] == ["unadjusted", "unadjusted"]
    assert all(s["drift"]["flagged"] for s in stats)
    assert np.isnan(stats[0]["drift"]["baseline_relative"])
