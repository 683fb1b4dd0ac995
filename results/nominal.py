"""What a nominal (categorical) axis adds to a campaign's agreement: shared by the snapshot recomputation
(results.services) and the on-request API figures (results.agreement), so both give the same numbers."""
from __future__ import annotations

from rating.models import RubricAxis

from .stats.nominal import nominal_statistics


def add_nominal_statistics(statistics: dict, axis: RubricAxis, matrix, reference: dict | None, n_boot: int,
                           seed: int) -> dict:
    """`statistics` (compute_agreement's output for the axis) with a "nominal" entry: AC1 with its interval,
    confusion matrices and, where the axis has a reference, agreement with it and high-risk recall.
    Leniency (own minus others' mean) has no meaning between unordered categories, so it is left empty."""
    keys = axis.category_keys()
    high = [keys.index(k) for k in axis.high_risk_keys()]
    extra = nominal_statistics(matrix, keys, high, None if reference is None else reference["codes"],
                               n_boot=n_boot, seed=seed)
    extra["labels"] = [p["label"] for p in axis.points]
    if reference is not None:
        extra["reference_source"] = reference["source"]
        if extra["reference"] is not None:
            extra["reference"]["n_not_a_category"] = reference["n_not_a_category"]
    for rater in statistics.get("raters") or []:
        rater["leniency"] = None
    return {**statistics, "nominal": extra}
