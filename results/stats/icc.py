"""Intraclass correlation for the reliability of the mean score, with the model that fits the design.

Two designs occur in a campaign, and each has its own exact model (Shrout & Fleiss 1979; McGraw & Wong
1996):

* crossed: the same raters rate (nearly) every conversation. Two-way random effects, absolute
  agreement, on the conversations rated by every rater (the ANOVA needs a complete table):

      ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)
      ICC(2,k) = (BMS - EMS) / (BMS + (JMS - EMS) / n)          <- headline

* overlap: each conversation gets k raters from a larger pool (the platform's usual design), so almost
  no conversation is rated by everyone and there is no rater x conversation table to estimate a rater
  effect from. Raters are nested in conversations: one-way random effects, where rater differences are
  part of the error. Every conversation with at least two ratings is used, whatever its number of
  ratings m_i (N ratings, n conversations):

      BMS = sum m_i (mean_i - mean)^2 / (n - 1),   WMS = sum (x_ij - mean_i)^2 / (N - n)
      k0  = (N - sum m_i^2 / N) / (n - 1)            (the effective group size; = k when balanced)
      ICC(1,1) = (BMS - WMS) / (BMS + (k0 - 1) WMS)
      ICC(1,k) = k ICC(1,1) / (1 + (k - 1) ICC(1,1))  <- headline, k = the most common number of
                                                        ratings per conversation

  With every conversation rated k times this is Shrout & Fleiss's ICC(1,k) = (BMS - WMS) / BMS. It does
  not depend on which rater is in which column.

The design is "crossed" when at least two conversations, and at least half of those with two or more
ratings, are rated by every rater who rated anything; otherwise "overlap". `model` names the headline
coefficient and `value` holds it; ICC(2,.) is not estimable in the overlap design and is NaN there.
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix

MODELS = {"crossed": "ICC(2,k)", "overlap": "ICC(1,k)"}


def _empty(design: str) -> dict:
    nan = float("nan")
    return {
        "model": MODELS[design],
        "value": nan,
        "design": design,
        "k": 0,
        "k0": nan,
        "n": 0,
        "n_ratings": 0,
        "icc2k": nan,
        "icc21": nan,
        "icc1k": nan,
        "icc11": nan,
        "bms": nan,
        "wms": nan,
        "jms": nan,
        "ems": nan,
        "units_used": "",
    }


def _crossed(table: np.ndarray) -> dict:
    out = _empty("crossed")
    n, k = table.shape
    out.update(n=int(n), k=int(k), k0=float(k), n_ratings=int(table.size),
               units_used="conversations rated by every rater")
    if n < 2 or k < 2:
        return out
    grand = table.mean()
    ss_rows = k * np.sum((table.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((table.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((table - grand) ** 2)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    wms = (ss_total - ss_rows) / (n * (k - 1))
    out.update(bms=float(bms), jms=float(jms), ems=float(ems), wms=float(wms))
    den_k = bms + (jms - ems) / n
    den_1 = bms + (k - 1) * ems + k * (jms - ems) / n
    if den_k > 0:
        out["icc2k"] = float((bms - ems) / den_k)
    if den_1 > 0:
        out["icc21"] = float((bms - ems) / den_1)
    if bms > 0:
        out["icc1k"] = float((bms - wms) / bms)
    if bms + (k - 1) * wms > 0:
        out["icc11"] = float((bms - wms) / (bms + (k - 1) * wms))
    out["value"] = out["icc2k"]
    return out


def _one_way(x: np.ndarray) -> dict:
    out = _empty("overlap")
    present = ~np.isnan(x)
    m = present.sum(axis=1)
    rows = m >= 2
    x, present, m = x[rows], present[rows], m[rows].astype(np.float64)
    n, total = int(m.size), float(m.sum())
    if n:
        values, freq = np.unique(m, return_counts=True)
        out["k"] = int(values[np.argmax(freq)])  # the most common count (the smaller on a tie)
    out.update(n=n, n_ratings=int(total),
               units_used="every conversation with at least two ratings (raters nested in conversations)")
    if n < 2:
        return out
    filled = np.where(present, x, 0.0)
    means = filled.sum(axis=1) / m
    grand = filled.sum() / total
    bms = float(np.sum(m * (means - grand) ** 2) / (n - 1))
    wms = float(np.sum(np.where(present, x - means[:, None], 0.0) ** 2) / (total - n))
    k0 = float((total - np.sum(m * m) / total) / (n - 1))
    out.update(bms=bms, wms=wms, k0=k0)
    den = bms + (k0 - 1.0) * wms
    if den > 0:
        icc11 = (bms - wms) / den
        k = out["k"]
        out["icc11"] = float(icc11)
        if 1.0 + (k - 1.0) * icc11 != 0:
            out["icc1k"] = float(k * icc11 / (1.0 + (k - 1.0) * icc11))
    out["value"] = out["icc1k"]
    return out


def intraclass_correlation(matrix) -> dict:
    """ICC of a units x raters matrix (NaN = not rated); see the module docstring."""
    x = as_matrix(matrix)
    if x.size == 0:
        return _empty("overlap")
    # Raters with no rating at all would make every unit incomplete; they carry no information here.
    x = x[:, (~np.isnan(x)).any(axis=0)]
    complete = x[~np.isnan(x).any(axis=1)]
    n_rated = int(((~np.isnan(x)).sum(axis=1) >= 2).sum())
    if complete.shape[0] >= 2 and complete.shape[0] * 2 >= n_rated and x.shape[1] >= 2:
        return _crossed(complete)
    return _one_way(x)
