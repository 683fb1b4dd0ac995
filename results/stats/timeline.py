"""Agreement as the ratings came in: Krippendorff's alpha on the ratings submitted up to each moment.

The moments are chosen on the ratings themselves, not on when the platform happened to recompute:
the submission times are split into `points` steps of about equal numbers of ratings, and alpha (with
its interval) is computed on every rating submitted up to the end of each step. The last point uses
every rating, so it equals the campaign's headline alpha.
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix, check_level, domain
from .alpha import MIN_CI_UNITS, krippendorff_alpha

TIMELINE_POINTS = 12


def alpha_over_time(
    matrix, times, level: str, categories=None, *, points: int = TIMELINE_POINTS, n_boot: int = 1000,
    seed: int = 0, min_units_for_ci: int = MIN_CI_UNITS,
) -> list[dict]:
    """Cumulative alpha by submission time: a list of {time, n_ratings, n_units, n_raters, alpha, ci_low,
    ci_high}, oldest first. `times` has the shape of `matrix` (any increasing number, e.g. epoch seconds;
    NaN where there is no rating)."""
    check_level(level)
    x = as_matrix(matrix)
    t = np.asarray(times, dtype=np.float64)
    if t.shape != x.shape:
        raise ValueError(f"times have shape {t.shape}, ratings {x.shape}")
    present = ~np.isnan(x)
    if np.isnan(t[present]).any():
        raise ValueError("every rating needs a time")
    stamps = np.sort(t[present])
    if stamps.size == 0:
        return []
    # Fixed categories for every point, so the ordinal metric's marginals are built on the same scale.
    values = domain(x, categories)
    steps = min(points, stamps.size)
    cuts = np.unique(stamps[np.ceil(np.arange(1, steps + 1) * stamps.size / steps).astype(int) - 1])
    out = []
    for cut in cuts:
        upto = present & (t <= cut)
        a = krippendorff_alpha(np.where(upto, x, np.nan), level, values, n_boot=n_boot, seed=seed,
                               min_units_for_ci=min_units_for_ci)
        out.append({
            "time": float(cut),
            "n_ratings": int(upto.sum()),
            "n_units": a["n_units"],
            "n_raters": int(upto.any(axis=0).sum()),
            "alpha": a["alpha"],
            "ci_low": a["ci_low"],
            "ci_high": a["ci_high"],
        })
    return out
