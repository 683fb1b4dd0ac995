"""Pure statistics for agreement and results: numpy/scipy only, no Django.

Data representation: a reliability matrix (units x raters, float64, NaN = not rated), a level of
measurement ('nominal' | 'ordinal' | 'interval' | 'ratio') and optionally the list of possible values.
"""

from .agreement import (
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    DEFINITIONS,
    agreement_from_csv,
    compute_agreement,
    read_ratings_csv,
    to_jsonable,
)
from .alpha import krippendorff_alpha
from .gwet import gwet_ac, gwet_weights, percent_agreement
from .icc import intraclass_correlation
from .kappa import pairwise_quadratic_kappa, pairwise_unweighted_kappa
from .raters import DRIFT_RULE, rater_statistics
from .tables import describe, mann_whitney, share_at_least, unit_means, welch_t
from .timeline import alpha_over_time

__all__ = [
    "DEFAULT_N_BOOT",
    "DEFAULT_SEED",
    "DEFINITIONS",
    "DRIFT_RULE",
    "agreement_from_csv",
    "alpha_over_time",
    "compute_agreement",
    "describe",
    "gwet_ac",
    "gwet_weights",
    "intraclass_correlation",
    "krippendorff_alpha",
    "mann_whitney",
    "pairwise_quadratic_kappa",
    "pairwise_unweighted_kappa",
    "percent_agreement",
    "rater_statistics",
    "read_ratings_csv",
    "share_at_least",
    "to_jsonable",
    "unit_means",
    "welch_t",
]
