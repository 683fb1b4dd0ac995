"""Pairwise quadratic-weighted Cohen's kappa between raters on the units they share.

Cohen (1968) weighted kappa with quadratic disagreement weights v_ij = (x_i - x_j)^2 on the category
values (for an equally spaced scale such as 1-4 these are the usual Fleiss-Cohen weights (i - j)^2):

    kappa_w = 1 - sum_ij v_ij p_ij / sum_ij v_ij p_i. p_.j

Both sums are moments of the two raters' scores on their shared units, so with population moments

    kappa_w = 2 cov(a, b) / (var(a) + var(b) + (mean(a) - mean(b))^2)

and every cell of the rater-by-rater matrix comes from a few matrix products over all units at once.
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix


def pairwise_quadratic_kappa(matrix) -> dict:
    """Rater-by-rater quadratic-weighted kappa and number of shared units.

    `kappa[a][b]` is NaN when raters a and b share fewer than 2 units or kappa is undefined (both raters
    gave one and the same score throughout). The diagonal holds NaN for kappa and, for n_shared, the
    number of units the rater rated.
    """
    x = as_matrix(matrix)
    present = ~np.isnan(x)
    p = present.astype(np.float64)
    # Centre on the overall mean: kappa is shift invariant and the moments stay well conditioned.
    center = np.nanmean(x) if present.any() else 0.0
    v = np.where(present, x - center, 0.0)
    n = p.T @ p  # n[a, b]: units rated by both a and b
    s_a = v.T @ p  # sum of a's scores over the units shared with b
    s_aa = (v * v).T @ p
    s_ab = v.T @ v
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a = s_a / n
        mean_b = mean_a.T
        var_a = s_aa / n - mean_a**2
        var_b = var_a.T
        cov = s_ab / n - mean_a * mean_b
        denom = var_a + var_b + (mean_a - mean_b) ** 2
        kappa = 2.0 * cov / denom
    undefined = (n < 2) | ~(denom > 1e-12 * max(1.0, float(np.max(np.abs(v), initial=0.0))) ** 2)
    kappa = np.where(undefined, np.nan, kappa)
    np.fill_diagonal(kappa, np.nan)
    return {"weights": "quadratic", "kappa": kappa, "n_shared": n.astype(np.int64)}


def pairwise_unweighted_kappa(matrix) -> dict:
    """Rater-by-rater Cohen's (1960) unweighted kappa, for nominal scales with more than two categories.

    Same layout and NaN rules as `pairwise_quadratic_kappa`. For two categories the two coincide.
    """
    x = as_matrix(matrix)
    present = ~np.isnan(x)
    p = present.astype(np.float64)
    n = p.T @ p
    observed = np.zeros_like(n)
    expected = np.zeros_like(n)
    # Loop over categories (few), each a product over all units and rater pairs at once.
    for value in np.unique(x[present]):
        h = (present & (x == value)).astype(np.float64)
        observed += h.T @ h
        expected += (h.T @ p) * (p.T @ h)  # [a, b]: a's count of value on shared units x b's count
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = observed / n
        p_e = expected / n**2
        kappa = (p_o - p_e) / (1.0 - p_e)
    kappa = np.where((n < 2) | ~(1.0 - p_e > 1e-12), np.nan, kappa)
    np.fill_diagonal(kappa, np.nan)
    return {"weights": "unweighted", "kappa": kappa, "n_shared": n.astype(np.int64)}
