"""Gwet's AC1/AC2 and percent agreement for r raters with missing ratings.

Formulas of Gwet, *Handbook of Inter-Rater Reliability*, 4th ed. (2014), ch. 2-3, as implemented in his
irrCAC package (`gwet.ac1.raw`): with r_ik the number of raters who put unit i in category k, r_i the
number of ratings of unit i, and r*_ik = sum_l w_kl r_il,

    p_a = mean over units with r_i >= 2 of  sum_k r_ik (r*_ik - 1) / (r_i (r_i - 1))
    pi_k = mean over units with r_i >= 1 of  r_ik / r_i
    p_e = T_w / (q (q - 1)) * sum_k pi_k (1 - pi_k),      T_w = sum of all weights, q = number of categories
    AC = (p_a - p_e) / (1 - p_e)

AC1 uses identity weights; AC2 uses weights on the category values as Gwet defines them. Gwet's
"ordinal" weights depend only on category ranks (w_kl = 1 - C(|k-l|+1, 2)/C(q, 2)) and are unrelated to
Krippendorff's ordinal metric, which is built from the marginal frequencies of the data.

q counts every possible category, so listing a category nobody used changes p_e and AC1 (Krippendorff's
alpha is unaffected).
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix, domain, encode

GWET_WEIGHTS = ("identity", "quadratic", "linear", "ordinal")

# Gwet's coefficients work on a unit-by-category table; beyond this many distinct values the ratings
# are not categorical and the table would be mostly empty.
MAX_CATEGORIES = 1000


def gwet_weights(values: np.ndarray, kind: str) -> np.ndarray:
    """Gwet's agreement weights (1 on the diagonal) for the sorted category values."""
    q = values.size
    if kind == "identity":
        return np.eye(q)
    if kind == "ordinal":
        rank_gap = np.abs(np.arange(q)[:, None] - np.arange(q)[None, :]) + 1
        pairs = rank_gap * (rank_gap - 1) / 2.0
        return 1.0 - pairs / pairs.max() if q > 1 else np.ones((1, 1))
    if kind not in ("quadratic", "linear"):
        raise ValueError(f"weights must be one of {', '.join(GWET_WEIGHTS)}; got {kind!r}")
    span = values.max() - values.min() if q else 0.0
    if span == 0:
        return np.ones((q, q))
    diff = np.abs(values[:, None] - values[None, :]) / span
    return 1.0 - diff**2 if kind == "quadratic" else 1.0 - diff


def gwet_ac(matrix, categories=None, weights: str = "identity") -> dict:
    """Gwet's AC1 (identity weights) or AC2 (quadratic, linear or ordinal weights).

    Returns coefficient, pa, pe, q, n_units (units with at least two ratings, those entering p_a) and
    n_rated_units (units with at least one rating, those entering pi_k). With a single category (q = 1)
    p_e is taken as 0, as in Gwet's irrCAC, so AC equals p_a.
    """
    x = as_matrix(matrix)
    values = domain(x, categories)
    if values.size > MAX_CATEGORIES:
        raise ValueError(f"Gwet's AC needs categorical ratings; got {values.size} distinct values")
    w = gwet_weights(values, weights)
    coded = encode(x, values)
    counts, m = coded.counts, coded.m
    rated = m >= 1
    pairable = m >= 2
    q = values.size
    out = {
        "weights": weights,
        "coefficient": float("nan"),
        "pa": float("nan"),
        "pe": float("nan"),
        "q": int(q),
        "n_units": int(pairable.sum()),
        "n_rated_units": int(rated.sum()),
    }
    if not pairable.any():
        return out
    cp = counts[pairable]
    mp = m[pairable]
    weighted = cp @ w  # r*_ik (w is symmetric)
    pa = float(np.mean((cp * (weighted - 1.0)).sum(axis=1) / (mp * (mp - 1.0))))
    pi = (counts[rated] / m[rated][:, None]).mean(axis=0)
    pe = float(w.sum() * np.sum(pi * (1.0 - pi)) / (q * (q - 1))) if q >= 2 else 0.0
    out["pa"], out["pe"] = pa, pe
    out["coefficient"] = (pa - pe) / (1.0 - pe) if pe < 1.0 else float("nan")
    return out


def percent_agreement(matrix, tolerance: float = 0.0) -> dict:
    """Share of agreeing rater pairs, averaged over units with at least two ratings.

    For each unit with m >= 2 ratings, the share of its m(m-1)/2 pairs of ratings that differ by at most
    `tolerance` (0: exact agreement; 1: within one point); the result is the mean of these shares with
    every unit weighted equally. With tolerance 0 this is Gwet's unweighted p_a.
    """
    x = as_matrix(matrix)
    present = ~np.isnan(x)
    m = present.sum(axis=1)
    pairable = m >= 2
    out = {"value": float("nan"), "tolerance": float(tolerance), "n_units": int(pairable.sum())}
    if not pairable.any():
        return out
    xp, pp, mp = x[pairable], present[pairable], m[pairable].astype(np.float64)
    agree = np.zeros(xp.shape[0])
    # Loop over rater columns (not units): each step compares one rater with all later raters at once.
    for a in range(xp.shape[1] - 1):
        both = pp[:, [a]] & pp[:, a + 1 :]
        close = np.abs(xp[:, a + 1 :] - xp[:, [a]]) <= tolerance + 1e-9
        agree += (both & close).sum(axis=1)
    out["value"] = float(np.mean(agree / (mp * (mp - 1.0) / 2.0)))
    return out
