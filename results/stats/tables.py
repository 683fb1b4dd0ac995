"""Pure helpers for the results tables: descriptives, shares and two-group comparisons.

All functions take array-likes, ignore NaN, and return plain dicts (NaN where a figure is undefined).
Model comparisons are meant to run on per-conversation scores: average the raters first
(`unit_means`), so that a conversation rated three times is not counted three times.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[~np.isnan(x)]


def unit_means(matrix) -> np.ndarray:
    """Mean rating per unit across raters (NaN for units nobody rated)."""
    x = np.asarray(matrix, dtype=np.float64)
    present = ~np.isnan(x)
    counts = present.sum(axis=1)
    sums = np.where(present, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def describe(values, confidence: float = 0.95) -> dict:
    """Mean, SD (n - 1), and a t-based confidence interval of the mean."""
    x = _clean(values)
    n = x.size
    out = {"n": int(n), "mean": float("nan"), "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    if n == 0:
        return out
    out["mean"] = float(x.mean())
    if n >= 2:
        sd = float(x.std(ddof=1))
        half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * sd / np.sqrt(n)
        out.update(sd=sd, ci_low=float(x.mean() - half), ci_high=float(x.mean() + half))
    return out


def share_at_least(values, threshold: float, confidence: float = 0.95) -> dict:
    """Share of values >= threshold, with a Wilson score interval.

    For 0/1 labels (e.g. diagnostic accuracy) use threshold 1; multiply by 100 for percentages.
    """
    x = _clean(values)
    n = x.size
    hits = int(np.sum(x >= threshold))
    nan = float("nan")
    out = {"n": int(n), "count": hits, "threshold": float(threshold), "share": nan, "ci_low": nan, "ci_high": nan}
    if n == 0:
        return out
    p = hits / n
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    out.update(share=float(p), ci_low=float(max(0.0, centre - half)), ci_high=float(min(1.0, centre + half)))
    return out


def mann_whitney(a, b) -> dict:
    """Two-sided Mann-Whitney U test of a vs b with the rank-biserial correlation.

    `u` is the statistic of group a; rank_biserial = 2 U_a / (n_a n_b) - 1, in [-1, 1], positive when
    values in a tend to be larger than in b (Kerby 2014). p-value from scipy (exact for small samples
    without ties, normal approximation with tie correction otherwise).
    """
    x, y = _clean(a), _clean(b)
    nan = float("nan")
    out = {
        "n_a": int(x.size),
        "n_b": int(y.size),
        "u": nan,
        "p_value": nan,
        "rank_biserial": nan,
        "median_a": float(np.median(x)) if x.size else nan,
        "median_b": float(np.median(y)) if y.size else nan,
    }
    if x.size == 0 or y.size == 0:
        return out
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    u = float(res.statistic)
    out.update(u=u, p_value=float(res.pvalue), rank_biserial=2.0 * u / (x.size * y.size) - 1.0)
    return out


def welch_t(a, b) -> dict:
    """Welch's two-sample t-test of a vs b with Cohen's d (pooled SD, n - 1 weighting)."""
    x, y = _clean(a), _clean(b)
    nan = float("nan")
    out = {
        "n_a": int(x.size),
        "n_b": int(y.size),
        "mean_a": float(x.mean()) if x.size else nan,
        "mean_b": float(y.mean()) if y.size else nan,
        "t": nan,
        "df": nan,
        "p_value": nan,
        "cohens_d": nan,
    }
    if x.size < 2 or y.size < 2:
        return out
    va, vb = x.var(ddof=1), y.var(ddof=1)
    res = stats.ttest_ind(x, y, equal_var=False)
    se2 = va / x.size + vb / y.size
    if se2 > 0:
        df = se2**2 / ((va / x.size) ** 2 / (x.size - 1) + (vb / y.size) ** 2 / (y.size - 1))
        out.update(t=float(res.statistic), df=float(df), p_value=float(res.pvalue))
    pooled = np.sqrt(((x.size - 1) * va + (y.size - 1) * vb) / (x.size + y.size - 2))
    if pooled > 0:
        out["cohens_d"] = float((x.mean() - y.mean()) / pooled)
    return out
