"""ICC(2,k): two-way random effects, absolute agreement, reliability of the mean of k raters.

Shrout & Fleiss (1979) ICC(2,k), McGraw & Wong (1996) ICC(A,k), from the two-way ANOVA without
replication on the units x raters table:

    ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)
    ICC(2,k) = (BMS - EMS) / (BMS + (JMS - EMS) / n)

The ANOVA needs a complete table, so only units rated by every rater (every column) are used; `n`
reports how many. When each unit is rated by a different subset of a larger rater pool there may be no
complete units, and the ICC is then undefined (NaN).
"""

from __future__ import annotations

import numpy as np

from ._matrix import as_matrix


def icc2k(matrix) -> dict:
    x = as_matrix(matrix)
    # Raters with no rating at all would make every unit incomplete; they carry no information here.
    x = x[:, (~np.isnan(x)).any(axis=0)] if x.size else x
    complete = x[~np.isnan(x).any(axis=1)] if x.size else x
    n, k = complete.shape if complete.ndim == 2 else (0, 0)
    out = {
        "icc2k": float("nan"),
        "icc21": float("nan"),
        "n": int(n),
        "k": int(k),
        "bms": float("nan"),
        "jms": float("nan"),
        "ems": float("nan"),
        "units_used": "complete units only (rated by every rater)",
    }
    if n < 2 or k < 2:
        return out
    grand = complete.mean()
    ss_rows = k * np.sum((complete.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((complete.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((complete - grand) ** 2)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    out.update(bms=float(bms), jms=float(jms), ems=float(ems))
    den_k = bms + (jms - ems) / n
    den_1 = bms + (k - 1) * ems + k * (jms - ems) / n
    if den_k > 0:
        out["icc2k"] = float((bms - ems) / den_k)
    if den_1 > 0:
        out["icc21"] = float((bms - ems) / den_1)
    return out
