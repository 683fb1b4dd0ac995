"""ICC(2,k): two-way random effects, absolute agreement, reliability of the mean of k raters.

Shrout & Fleiss (1979) ICC(2,k), McGraw & Wong (1996) ICC(A,k), from the two-way ANOVA without
replication on the units x raters table:

    ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)
    ICC(2,k) = (BMS - EMS) / (BMS + (JMS - EMS) / n)

The one-way model is reported beside it, ICC(1,k) = (BMS - WMS) / BMS, because it is the textbook
model when each unit has its own raters.

The ANOVA needs a complete table. Two designs occur in a campaign:

* crossed: the same raters rate (nearly) every unit. Units rated by every rater are used.
* overlap k from a larger pool (the platform's usual design: each conversation gets k of many
  raters). Almost no unit is rated by every rater, so the table is built from *slots* instead: the
  first k ratings of each unit (in rater order), for every unit with at least k ratings, where k is
  the most common number of ratings per unit. Slots stand in for raters; ICC(1,k) is then the model
  that matches the design exactly, and ICC(2,k) its usual approximation.

`design` and `units_used` say which was used; `n` is the number of units in the table.
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix


def _slot_table(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(units x k table of each unit's first k ratings, k) for the modal number of ratings k >= 2."""
    counts = (~np.isnan(x)).sum(axis=1)
    rated = counts[counts >= 2]
    if rated.size == 0:
        return np.empty((0, 0)), 0
    values, freq = np.unique(rated, return_counts=True)
    k = int(values[np.argmax(freq)])  # the most common count (the smaller on a tie)
    rows = x[counts >= k]
    # Stable sort of "is missing" puts each row's ratings first, in rater order.
    order = np.argsort(np.isnan(rows), axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1)[:, :k], k


def icc2k(matrix) -> dict:
    x = as_matrix(matrix)
    # Raters with no rating at all would make every unit incomplete; they carry no information here.
    x = x[:, (~np.isnan(x)).any(axis=0)] if x.size else x
    complete = x[~np.isnan(x).any(axis=1)] if x.size else np.empty((0, 0))
    n_rated = int(((~np.isnan(x)).sum(axis=1) >= 2).sum()) if x.size else 0
    if complete.shape[0] >= 2 and complete.shape[0] * 2 >= n_rated:
        table, design, used = complete, "crossed", "complete units only (rated by every rater)"
    else:
        table, k_slots = _slot_table(x) if x.size else (np.empty((0, 0)), 0)
        design = "overlap"
        used = f"the first {k_slots} ratings of each unit with at least {k_slots} (slots stand in for raters)"
    n, k = table.shape if table.ndim == 2 and table.size else (0, 0)
    out = {
        "icc2k": float("nan"),
        "icc21": float("nan"),
        "icc1k": float("nan"),
        "n": int(n),
        "k": int(k),
        "bms": float("nan"),
        "jms": float("nan"),
        "ems": float("nan"),
        "design": design,
        "units_used": used,
    }
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
    out.update(bms=float(bms), jms=float(jms), ems=float(ems))
    den_k = bms + (jms - ems) / n
    den_1 = bms + (k - 1) * ems + k * (jms - ems) / n
    if den_k > 0:
        out["icc2k"] = float((bms - ems) / den_k)
    if den_1 > 0:
        out["icc21"] = float((bms - ems) / den_1)
    if bms > 0:
        out["icc1k"] = float((bms - wms) / bms)
    return out
