"""Statistics for nominal axes (named categories): Gwet's AC1 with a bootstrap interval, confusion matrices
and high-risk recall against a reference label.

Categories are coded 0..q-1 in the rubric's order, so a reliability matrix of a nominal axis is the usual
units x raters float matrix (NaN = not rated). Krippendorff's nominal alpha and its interval come from
alpha.krippendorff_alpha; the intervals here resample conversations with the same seeded generator
(alpha.resample_weights), so a seed gives the same resamples for every statistic of the platform.
"""

from __future__ import annotations

import math

import numpy as np

from ._matrix import as_matrix, encode
from .alpha import MIN_CI_UNITS, _patterns, resample_weights
from .gwet import gwet_ac

Z95 = 1.959963984540054
# Below this many conversations with a high-risk reference the bootstrap interval of the recall is not
# given (a percentile bootstrap over a handful of conversations under-covers); Wilson's is always given.
MIN_RECALL_CI_UNITS = 10


def _quantiles(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    boot = boot[~np.isnan(boot)]
    if not boot.size:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high)


def gwet_ac1_ci(matrix, q: int, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
                min_units_for_ci: int = MIN_CI_UNITS) -> dict:
    """Gwet's AC1 over categories 0..q-1 (gwet.gwet_ac, identity weights) with a percentile-bootstrap
    interval: conversations with at least one rating resampled with replacement (AC1's p_a uses those with
    two or more, its chance term every rated one). No interval below `min_units_for_ci` conversations with
    two or more ratings, as for alpha."""
    x = as_matrix(matrix)
    categories = np.arange(q, dtype=np.float64)
    out = dict(gwet_ac(x, categories, "identity"))
    out.update(ci_low=math.nan, ci_high=math.nan, confidence=confidence, n_boot=int(n_boot), seed=int(seed),
               n_boot_defined=0, ci_method="percentile bootstrap, conversations resampled with replacement",
               ci_note="")
    if n_boot <= 0 or math.isnan(out["coefficient"]):
        return out
    if out["n_units"] < min_units_for_ci:
        out["ci_note"] = (f"no interval: {out['n_units']} conversations with two or more ratings, fewer than "
                          f"{min_units_for_ci}")
        return out
    rated = (~np.isnan(x)).sum(axis=1) >= 1
    patterns, freq = _patterns(x[rated])
    coded = encode(patterns, categories)
    counts, m = coded.counts, coded.m
    pairable = (m >= 2).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.where(m >= 2, (counts * (counts - 1.0)).sum(axis=1) / (m * (m - 1.0)), 0.0)
    shares = counts / m[:, None]
    # Per pattern: [pairable, p_a contribution, 1 (rated), pi contributions...]; a resample is a weighted sum.
    features = np.column_stack([pairable, agree, np.ones(m.size), shares])
    boot = []
    for w in resample_weights(freq, n_boot, seed):
        agg = w @ features
        with np.errstate(invalid="ignore", divide="ignore"):
            pa = agg[:, 1] / agg[:, 0]
            pi = agg[:, 3:] / agg[:, [2]]
            pe = (pi * (1.0 - pi)).sum(axis=1) / (q - 1) if q >= 2 else np.zeros(len(w))
            boot.append(np.where(pe < 1.0, (pa - pe) / (1.0 - pe), np.nan))
    boot = np.concatenate(boot)
    out["n_boot_defined"] = int((~np.isnan(boot)).sum())
    out["ci_low"], out["ci_high"] = _quantiles(boot, confidence)
    return out


def pair_confusion(matrix, q: int) -> np.ndarray:
    """Rater-vs-rater confusion pooled over conversations: cell (a, b) counts the ordered pairs of ratings of
    one conversation by two different raters with labels a and b. Each pair is counted in both orders, so
    the matrix is symmetric and sums to twice the number of pairs; its diagonal share is the pooled
    share of agreeing pairs."""
    x = as_matrix(matrix)
    out = np.zeros((q, q), dtype=np.int64)
    cols = x.shape[1]
    for a in range(cols):
        for b in range(cols):
            if a == b:
                continue
            both = ~np.isnan(x[:, a]) & ~np.isnan(x[:, b])
            np.add.at(out, (x[both, a].astype(np.int64), x[both, b].astype(np.int64)), 1)
    return out


def reference_confusion(matrix, reference, q: int) -> np.ndarray:
    """Reference-vs-rater confusion: cell (r, c) counts the ratings c given to conversations whose reference
    label is r (every rating counted once; conversations without a reference are left out)."""
    x = as_matrix(matrix)
    ref = np.asarray(reference, dtype=np.float64)
    out = np.zeros((q, q), dtype=np.int64)
    rows, cols = np.nonzero(~np.isnan(x) & ~np.isnan(ref)[:, None])
    np.add.at(out, (ref[rows].astype(np.int64), x[rows, cols].astype(np.int64)), 1)
    return out


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (Wilson 1927); NaN for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def high_risk_recall(matrix, reference, high_risk: list[int], n_boot: int = 1000, seed: int = 0,
                     confidence: float = 0.95, min_units_for_ci: int = MIN_RECALL_CI_UNITS) -> dict:
    """How often raters labelled high-risk the conversations whose reference label is a high-risk category.

    recall: mean over those conversations (with at least one rating) of the share of their raters who chose
    a high-risk category, so each conversation counts once; its interval is a seeded percentile bootstrap
    over the conversations (none below `min_units_for_ci` of them). rating_recall: high-risk labels over
    all ratings of those conversations, with Wilson's interval (which treats ratings as independent).
    """
    x = as_matrix(matrix)
    ref = np.asarray(reference, dtype=np.float64)
    high = np.isin(x, high_risk) & ~np.isnan(x)
    present = ~np.isnan(x)
    target = np.isin(ref, high_risk) & ~np.isnan(ref) & (present.sum(axis=1) >= 1)
    n_ratings = int(present[target].sum())
    hits = int(high[target].sum())
    low_w, high_w = wilson_interval(hits, n_ratings)
    out = {
        "n_conversations": int(target.sum()),
        "n_ratings": n_ratings,
        "n_high_risk_labels": hits,
        "recall": math.nan, "ci_low": math.nan, "ci_high": math.nan,
        "rating_recall": hits / n_ratings if n_ratings else math.nan,
        "wilson_low": low_w, "wilson_high": high_w,
        "confidence": confidence, "n_boot": int(n_boot), "seed": int(seed),
        "ci_method": "percentile bootstrap, conversations resampled with replacement",
        "ci_note": "",
    }
    if not target.any():
        return out
    share = high[target].sum(axis=1) / present[target].sum(axis=1)
    out["recall"] = float(share.mean())
    if n_boot <= 0:
        return out
    if share.size < min_units_for_ci:
        out["ci_note"] = (f"no bootstrap interval: {share.size} conversations with a high-risk reference, fewer "
                          f"than {min_units_for_ci}; Wilson's interval over ratings is given")
        return out
    values, freq = np.unique(share, return_counts=True)
    boot = np.concatenate([(w @ values) / w.sum(axis=1) for w in resample_weights(freq, n_boot, seed)])
    out["ci_low"], out["ci_high"] = _quantiles(boot, confidence)
    return out


def nominal_statistics(matrix, labels: list[str], high_risk: list[int] | None = None, reference=None,
                       n_boot: int = 1000, seed: int = 0) -> dict:
    """What a nominal axis adds to compute_agreement: AC1 with its interval, the rater-vs-rater confusion
    matrix, and, where `reference` (codes per conversation, NaN = none) is given, the reference-vs-rater
    confusion, the share of ratings equal to the reference and the high-risk recall. JSON-ready."""
    from .agreement import to_jsonable

    x = as_matrix(matrix)
    q = len(labels)
    out = {
        "categories": list(labels),
        "high_risk": [labels[i] for i in (high_risk or [])],
        "gwet_ac1": gwet_ac1_ci(x, q, n_boot=n_boot, seed=seed),
        "pair_confusion": pair_confusion(x, q).tolist(),
        "reference": None,
    }
    ref = None if reference is None else np.asarray(reference, dtype=np.float64)
    if ref is not None and (~np.isnan(ref)).any():
        confusion = reference_confusion(x, ref, q)
        total = int(confusion.sum())
        out["reference"] = {
            "n_conversations": int((~np.isnan(ref)).sum()),
            "n_rated_conversations": int(((~np.isnan(ref)) & (~np.isnan(x)).any(axis=1)).sum()),
            "n_ratings": total,
            "confusion": confusion.tolist(),
            "agreement": float(np.trace(confusion) / total) if total else math.nan,
            "high_risk_recall": high_risk_recall(x, ref, high_risk, n_boot=n_boot, seed=seed) if high_risk else None,
        }
    return to_jsonable(out)
