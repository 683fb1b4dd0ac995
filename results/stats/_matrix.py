"""Validation and integer coding of reliability matrices.

A reliability matrix has one row per unit (conversation) and one column per rater, float64, with NaN
where the rater did not rate the unit. Every statistic in this package starts from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    return level


def as_matrix(matrix) -> np.ndarray:
    """Return `matrix` as a 2-D float64 array (units x raters); NaN marks a missing rating."""
    try:
        x = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ratings must be numbers or NaN: {exc}") from exc
    if x.ndim != 2:
        raise ValueError(f"ratings must be a 2-D matrix (units x raters); got {x.ndim} dimension(s)")
    if np.isinf(x).any():
        raise ValueError("ratings contain an infinite value")
    return x


def domain(x: np.ndarray, categories=None) -> np.ndarray:
    """Sorted possible values: `categories` when given (every rating must be one), else the observed values."""
    observed = np.unique(x[~np.isnan(x)])
    if categories is None:
        return observed
    try:
        cats = np.unique(np.asarray(list(categories), dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"categories must be numbers: {exc}") from exc
    if np.isnan(cats).any() or np.isinf(cats).any():
        raise ValueError("categories must be finite numbers")
    outside = np.setdiff1d(observed, cats)
    if outside.size:
        shown = ", ".join(f"{v:g}" for v in outside[:10])
        raise ValueError(f"ratings outside the given categories: {shown}")
    return cats


@dataclass(frozen=True)
class Coded:
    """A reliability matrix with its values replaced by indices into `values`."""

    values: np.ndarray  # (V,) sorted possible values
    codes: np.ndarray  # (N, R) int64 index into values, -1 where missing
    counts: np.ndarray  # (N, V) float64: how many raters gave each value to each unit
    m: np.ndarray  # (N,) float64: ratings per unit


def encode(x: np.ndarray, values: np.ndarray) -> Coded:
    present = ~np.isnan(x)
    codes = np.full(x.shape, -1, dtype=np.int64)
    codes[present] = np.searchsorted(values, x[present])
    n_units, n_values = x.shape[0], values.size
    # One bincount over (unit, value) cells builds the unit-by-value table without a loop over units.
    flat = (np.nonzero(present)[0] * n_values + codes[present]).astype(np.int64)
    counts = np.bincount(flat, minlength=n_units * n_values).reshape(n_units, n_values).astype(np.float64)
    return Coded(values=values, codes=codes, counts=counts, m=counts.sum(axis=1))
