"""Per-rater statistics: agreement with the other raters, leniency, agreement with gold, drift.

Definitions (every one restricted to the units the rater rated):

- exact_agreement: of all (this rater, other rater) rating pairs on the same unit, the share with the
  same value. within_one_agreement: the share differing by at most one point (not for nominal axes).
- mean_kappa: mean of this rater's quadratic-weighted kappas with the other raters (defined cells only).
- leniency: mean over units with at least one other rating of (this rating - mean of the other ratings
  on the unit). Positive: this rater scores higher than colleagues on the same conversations.
- gold_*: against the expected score of gold units (exact, within one point, mean signed offset, mean
  absolute error), over the gold units this rater rated.
- drift: see `DRIFT_RULE`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ._matrix import as_matrix, check_level

DRIFT_WINDOW = 100  # most recent scored ratings forming the "recent" window
DRIFT_MIN_BASELINE = 100  # earlier scored ratings needed before a rater can be judged
# Agreement must have fallen by at least this much (absolute; exact agreement for nominal axes,
# quadratic-weighted agreement otherwise) ...
DRIFT_MIN_DROP = {"nominal": 0.10, "ordinal": 0.05, "interval": 0.05, "ratio": 0.05}
DRIFT_P_VALUE = 0.01  # ... and the fall be significant in a one-sided Welch t-test at this level

DRIFT_RULE = (
    "Each of the rater's ratings on a conversation that others also rated gets an agreement score a: for "
    "nominal axes the share of the other raters' ratings there that equal it; for ordinal, interval and ratio "
    "axes the mean over the other ratings of 1 - (difference / scale range)^2 (quadratic agreement weights, "
    "which separate a careless rater from noise better than exact agreement on a 1-4 scale). Where at least "
    "two others rated the conversation, the same score among those others (their agreement without this "
    "rater) is the peer score p. A low a alone does not say who drifted: if one of three raters starts rating "
    "carelessly, the other two also agree less with 'the others'. So the test uses a - p, which drops only "
    "for the rater who changed. Taking the rater's peer-scored ratings in time order, the recent window is the "
    f"last {DRIFT_WINDOW} and the baseline all earlier ones (at least {DRIFT_MIN_BASELINE}). The rater is "
    "flagged when mean a and mean a - p both fell from baseline to recent by at least 0.10 (nominal) or 0.05 "
    f"(other levels), and a one-sided Welch t-test of recent < baseline on a - p gives p < {DRIFT_P_VALUE}. "
    "When too few ratings have peers (e.g. two raters per conversation) the same rule runs on a alone (method "
    "'unadjusted'): a drop is then shared by both raters of a pair and both are flagged for review. Raters "
    f"with fewer than {DRIFT_WINDOW + DRIFT_MIN_BASELINE} scored ratings are 'insufficient data', never "
    "flagged. Simulated (benchmarks/drift_detector.py: 3 raters, 600 conversations, 10% missing), the flag "
    "fired on 0 of 3,000 stable 1-4 raters and 2 of 3,000 stable binary raters, and caught a rater who turned "
    "random for the last 100 ratings in 99% (1-4 scale) and 71% (binary) of campaigns."
)


def _agreement_scores(x: np.ndarray, present: np.ndarray, level: str, span: float):
    """Per rating (N x R): number of other ratings on the unit and the summed agreement with them."""
    others = present.sum(axis=1, keepdims=True) - present
    agree_sum = np.zeros(x.shape)
    within_sum = np.zeros(x.shape)
    exact_sum = np.zeros(x.shape)
    # Loop over rater columns, vectorised over units: R passes over an N x R array.
    for r in range(x.shape[1]):
        both = present & present[:, [r]]
        both[:, r] = False
        diff = np.abs(x - x[:, [r]])
        exact = both & (diff < 1e-9)
        exact_sum[:, r] = exact.sum(axis=1)
        within_sum[:, r] = (both & (diff <= 1.0 + 1e-9)).sum(axis=1)
        if level != "nominal" and span > 0:
            agree_sum[:, r] = np.where(both, 1.0 - np.minimum(1.0, (diff / span) ** 2), 0.0).sum(axis=1)
        else:
            agree_sum[:, r] = exact_sum[:, r]
    others = np.where(present, others, 0)
    return others, exact_sum, within_sum, agree_sum


def _window_test(base: np.ndarray, recent: np.ndarray) -> float:
    """One-sided Welch t-test p-value for mean(recent) < mean(base)."""
    se = np.sqrt(base.var(ddof=1) / base.size + recent.var(ddof=1) / recent.size)
    if se > 0:
        return float(stats.ttest_ind(recent, base, equal_var=False, alternative="less").pvalue)
    return 0.0 if recent.mean() < base.mean() else 1.0  # both windows constant: the difference is exact


def _drift(times: np.ndarray, scores: np.ndarray, relative: np.ndarray, min_drop: float) -> dict:
    """`scores`: a per scored rating; `relative`: a - p, NaN where the unit has fewer than two others."""
    order = np.argsort(times, kind="stable")
    a, rel, t = scores[order], relative[order], times[order]
    series = []
    for start in range(0, a.size, DRIFT_WINDOW):
        chunk = a[start : start + DRIFT_WINDOW]
        end_time = float(t[start + chunk.size - 1])
        series.append({"end_time": end_time, "agreement": float(chunk.mean()), "n": int(chunk.size)})
    nan = float("nan")
    out = {
        "status": "insufficient data",
        "flagged": False,
        "method": None,
        "baseline_agreement": nan,
        "recent_agreement": nan,
        "baseline_relative": nan,
        "recent_relative": nan,
        "n_baseline": 0,
        "n_recent": 0,
        "p_value": nan,
        "series": series,
    }
    needed = DRIFT_WINDOW + DRIFT_MIN_BASELINE
    peered = ~np.isnan(rel)
    if peered.sum() >= needed:
        a_used, test_scores, method = a[peered], rel[peered], "peer-adjusted"
    elif a.size >= needed:
        a_used, test_scores, method = a, a, "unadjusted"
    else:
        return out
    base, recent = slice(None, -DRIFT_WINDOW), slice(-DRIFT_WINDOW, None)
    drop_a = a_used[base].mean() - a_used[recent].mean()
    drop_test = test_scores[base].mean() - test_scores[recent].mean()
    p = _window_test(test_scores[base], test_scores[recent])
    flagged = bool(drop_a >= min_drop and drop_test >= min_drop and p < DRIFT_P_VALUE)
    out.update(
        status="drifting" if flagged else "stable",
        flagged=flagged,
        method=method,
        baseline_agreement=float(a_used[base].mean()),
        recent_agreement=float(a_used[recent].mean()),
        n_baseline=int(a_used.size - DRIFT_WINDOW),
        n_recent=DRIFT_WINDOW,
        p_value=p,
    )
    if method == "peer-adjusted":
        out.update(baseline_relative=float(test_scores[base].mean()), recent_relative=float(test_scores[recent].mean()))
    return out


def rater_statistics(
    matrix, level: str, kappa: np.ndarray | None = None, gold=None, timestamps=None, span: float | None = None
) -> list[dict]:
    """One dict per rater column; see the module docstring for the definitions.

    `gold`: optional (N,) expected scores, NaN for non-gold units. `timestamps`: optional (N x R) times of
    the ratings (any increasing number), needed for drift. `span`: scale range for the quadratic drift
    scores of non-nominal axes (defaults to the observed range).
    """
    check_level(level)
    x = as_matrix(matrix)
    present = ~np.isnan(x)
    n_units, n_raters = x.shape
    if span is None:
        span = float(np.nanmax(x) - np.nanmin(x)) if present.any() else 0.0
    others, exact_sum, within_sum, agree_sum = _agreement_scores(x, present, level, span)
    pair_agree = agree_sum.sum(axis=1) / 2.0  # agreement summed over the unordered pairs of each unit

    row_sum = np.where(present, x, 0.0).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        others_mean = (row_sum - np.where(present, x, 0.0)) / others
        offset = np.where(present & (others > 0), x - others_mean, np.nan)

    if gold is not None:
        g = np.asarray(gold, dtype=np.float64).reshape(-1)
        if g.size != n_units:
            raise ValueError(f"gold has {g.size} entries for {n_units} units")
    if timestamps is not None:
        ts = np.asarray(timestamps, dtype=np.float64)
        if ts.shape != x.shape:
            raise ValueError(f"timestamps have shape {ts.shape}, ratings {x.shape}")
        if np.isnan(ts[present]).any():
            raise ValueError("every rating needs a timestamp")

    result = []
    for r in range(n_raters):
        pr = present[:, r]
        comp = pr & (others[:, r] > 0)
        n_pairs = float(others[comp, r].sum())
        item = {
            "rater": r,
            "n_rated": int(pr.sum()),
            "n_compared": int(comp.sum()),
            "exact_agreement": float(exact_sum[comp, r].sum() / n_pairs) if n_pairs else float("nan"),
            "within_one_agreement": float("nan"),
            "mean_kappa": float("nan"),
            "n_kappa_partners": 0,
            "leniency": float(np.mean(offset[comp, r])) if comp.any() else float("nan"),
        }
        if level != "nominal" and n_pairs:
            item["within_one_agreement"] = float(within_sum[comp, r].sum() / n_pairs)
        if kappa is not None:
            row = np.delete(np.asarray(kappa, dtype=np.float64)[r], r)
            defined = row[~np.isnan(row)]
            item["n_kappa_partners"] = int(defined.size)
            if defined.size:
                item["mean_kappa"] = float(defined.mean())
        if gold is not None:
            on_gold = pr & ~np.isnan(g)
            d = x[on_gold, r] - g[on_gold]
            numeric = d.size > 0 and level != "nominal"
            item["gold"] = {
                "n": int(on_gold.sum()),
                "exact": float(np.mean(np.abs(d) < 1e-9)) if d.size else float("nan"),
                "within_one": float(np.mean(np.abs(d) <= 1.0 + 1e-9)) if numeric else float("nan"),
                "mean_offset": float(d.mean()) if numeric else float("nan"),
                "mean_abs_error": float(np.abs(d).mean()) if numeric else float("nan"),
            }
        if timestamps is not None:
            scores = agree_sum[comp, r] / others[comp, r]
            k = others[comp, r]
            with np.errstate(divide="ignore", invalid="ignore"):
                # Agreement among the others on the unit: all agreeing pairs minus those involving r.
                peer = (pair_agree[comp] - agree_sum[comp, r]) / (k * (k - 1) / 2.0)
            relative = np.where(k >= 2, scores - peer, np.nan)
            item["drift"] = _drift(ts[comp, r], scores, relative, DRIFT_MIN_DROP[level])
        result.append(item)
    return result
