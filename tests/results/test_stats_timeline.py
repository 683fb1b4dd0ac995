"""Alpha by rating submission time (results.stats.alpha_over_time)."""

import numpy as np
import pytest

from results.stats import alpha_over_time, krippendorff_alpha


def test_alpha_over_time_is_cumulative_by_submission_time():
    rng = np.random.default_rng(2)
    truth = rng.integers(1, 5, 120)
    x = np.column_stack([np.clip(truth + rng.integers(-1, 2, 120), 1, 4) for _ in range(3)]).astype(float)
    x[rng.random(x.shape) < 0.2] = np.nan
    # Ratings arrive over a day, each rater at their own pace.
    times = np.where(np.isnan(x), np.nan, rng.uniform(0, 86_400, x.shape))
    points = alpha_over_time(x, times, "ordinal", [1, 2, 3, 4], points=6, n_boot=200, seed=1)
    assert len(points) == 6
    stamps = np.sort(times[~np.isnan(times)])
    assert [p["time"] for p in points] == sorted(p["time"] for p in points)
    assert all(p["time"] in stamps for p in points)  # real submission times, not recomputation times
    # Steps of about equal numbers of ratings; the last point is every rating, i.e. the headline alpha.
    counts = [p["n_ratings"] for p in points]
    assert counts[-1] == stamps.size and np.allclose(np.diff([0, *counts]), stamps.size / 6, atol=1)
    everything = krippendorff_alpha(x, "ordinal", [1, 2, 3, 4], n_boot=200, seed=1)
    assert (points[-1]["alpha"], points[-1]["ci_low"], points[-1]["ci_high"]) == (
        everything["alpha"], everything["ci_low"], everything["ci_high"])
    # Each earlier point is alpha on exactly the ratings submitted by then.
    third = points[2]
    upto = np.where(times <= third["time"], x, np.nan)
    assert third["alpha"] == pytest.approx(krippendorff_alpha(upto, "ordinal", [1, 2, 3, 4], n_boot=0)["alpha"])
    assert third["n_units"] == int(((~np.isnan(upto)).sum(axis=1) >= 2).sum())
    assert [p["n_units"] for p in points] == sorted(p["n_units"] for p in points)


def test_alpha_over_time_edge_cases():
    assert alpha_over_time(np.full((3, 2), np.nan), np.full((3, 2), np.nan), "nominal") == []
    x = np.array([[1.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="every rating needs a time"):
        alpha_over_time(x, np.array([[1.0, np.nan], [2.0, 3.0]]), "nominal")
    with pytest.raises(ValueError, match="shape"):
        alpha_over_time(x, np.zeros((3, 2)), "nominal")
    # Two ratings at the same moment share a point.
    same = alpha_over_time(x, np.array([[5.0, 5.0], [7.0, 7.0]]), "nominal", points=4, n_boot=0)
    assert [p["time"] for p in same] == [5.0, 7.0] and [p["n_ratings"] for p in same] == [2, 4]
