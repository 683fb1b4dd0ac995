"""Agreement between an LLM judge and the clinicians on one axis: pure functions on arrays, no Django.

Inputs, aligned on the same units (conversations):
- `humans`: units x clinicians, NaN where a clinician did not rate the unit (submitted ratings only);
- `judge`: units x samples, NaN where that sample has no score (not run, or the call failed).

Which judge value is compared (the choices are stated again in JUDGE_DEFINITIONS):
- against the clinicians' MEAN, the judge's mean over its samples: both sides are then averages of
  repeated scores of the same conversation, and the judge's own sampling noise is averaged out as the
  clinicians' is;
- as "one more rater", the judge's FIRST sample (lowest sample index with a score): a single rating,
  like each clinician's, so the judge enters alpha exactly as one more clinician would.

Every interval is the platform's seeded percentile bootstrap over conversations (DEFAULT_SEED, 1,000
resamples, no interval below MIN_CI_UNITS conversations). Within one comparison all statistics come from
the SAME resampled sets of conversations, so e.g. the difference "alpha with the judge minus alpha of
the clinicians alone" gets a paired interval. Units with the same values are interchangeable, so they are
collapsed into patterns and a resample is a vector of pattern multiplicities (as in alpha.py).
"""

from __future__ import annotations

import math

import numpy as np

from ._matrix import as_matrix, check_level, domain
from .alpha import MAX_BLOCK, MIN_CI_UNITS, alpha_parts, krippendorff_alpha, resample_weights
from .gwet import MAX_CATEGORIES, gwet_weights, percent_agreement
from .tables import unit_means

LOA_Z = 1.96  # Bland-Altman limits of agreement: bias +/- 1.96 SD of the differences
CONFIDENCE = 0.95

JUDGE_DEFINITIONS = {
    "judge_value": "against the clinicians' mean: the judge's mean over its samples of the conversation; as "
    "one more rater: the judge's first sample (lowest sample index with a score), a single rating like each "
    "clinician's",
    "human_mean": "mean of the clinicians' submitted ratings of the conversation (the judge is never one of them)",
    "paired.n_units": "conversations with a judge score and at least one clinician's rating",
    "paired.alpha": "Krippendorff's alpha between the judge's value and the clinicians' mean, two values per "
    "conversation, interval metric: a mean of ratings is not a category; on 0/1 labels the interval metric "
    "equals the nominal one, so binary axes compare shares of 'yes' consistently",
    "paired.gwet_ac2": "Gwet's AC2 with quadratic weights between the same two values; its categories are the "
    "axis's scale points plus every value that occurs (means fall between scale points), the weights' span is "
    "the scale's; equals irrCAC gwet.ac1.raw(weights='quadratic') with those category labels; on 0/1 labels "
    "it is AC1",
    "paired.bias": "mean over conversations of (judge value - clinicians' mean); positive: the judge scores "
    "higher than the clinicians",
    "paired.mean_abs_difference": "mean over conversations of |judge value - clinicians' mean|",
    "paired.limits_of_agreement": "Bland-Altman: bias +/- 1.96 x SD of the per-conversation differences (where "
    "95% of the differences are expected to fall)",
    "one_more_rater": "alpha at the axis's own level (Krippendorff's ordinal metric for Likert axes, nominal "
    "for binary labels) of the clinicians alone and of the clinicians plus the judge's first sample as one more "
    "rater, on the same conversations: those the judge scored that have at least two clinicians' ratings; "
    "difference = with judge - clinicians alone, with a paired bootstrap interval (the same resamples for both)",
    "self_consistency": "only with two or more samples per conversation: alpha at the axis's level among the "
    "judge's samples (samples as raters), and exact agreement (share of equal pairs of samples, averaged over "
    "conversations with at least two samples); 1 means the judge always repeats itself",
    "bootstrap": f"percentile bootstrap over conversations, fixed seed; {int(CONFIDENCE * 100)}% intervals; no "
    f"interval below {MIN_CI_UNITS} conversations",
}


# --- the bootstrap shared by every comparison ----------------------------------------------------------


def _unit_patterns(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `keys` (NaN allowed, compared as equal) in lexicographic order, and how many units
    have each: the rows as np.unique(axis=0) gives them, but through one integer per row (mixed radix of
    the columns' value codes), which sorts ten times faster than rows."""
    coded = np.nan_to_num(keys, nan=np.inf)
    key = np.zeros(coded.shape[0], dtype=np.int64)
    radix = 1
    for column in coded.T:
        values, code = np.unique(column, return_inverse=True)
        radix *= max(1, values.size)
        if radix >= 2**62:  # too many distinct rows for one integer: sort the rows themselves
            patterns, freq = np.unique(coded, axis=0, return_counts=True)
            return np.where(np.isinf(patterns), np.nan, patterns), freq
        key = key * values.size + code.reshape(-1)
    _, first, freq = np.unique(key, return_index=True, return_counts=True)
    patterns = coded[first]
    return np.where(np.isinf(patterns), np.nan, patterns), freq


def _interval(boot: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, int]:
    """Percentile interval of the defined bootstrap values: (low, high, how many were defined)."""
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return math.nan, math.nan, 0
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high), int(boot.size)


def bootstrap_statistics(keys: np.ndarray, statistics, n_boot: int, seed: int,
                         min_units_for_ci: int = MIN_CI_UNITS) -> dict:
    """Point estimates and percentile intervals of several statistics over the same resampled units.

    keys: units x d, the values that decide every statistic (units with equal rows are interchangeable).
    statistics(patterns, w) -> {name: array of len(w)}: each statistic computed for each row of pattern
    multiplicities w (b x P). Returns {name: {"value", "ci_low", "ci_high", "n_boot_defined"}} plus
    "n_units" and "ci_note"."""
    n_units = int(keys.shape[0])
    out: dict = {"n_units": n_units, "ci_note": ""}
    if n_units == 0:
        return out
    patterns, freq = _unit_patterns(keys)
    point = statistics(patterns, freq[None, :].astype(np.float64))
    if n_boot > 0 and n_units < min_units_for_ci:
        out["ci_note"] = (f"no interval: {n_units} conversations, fewer than the {min_units_for_ci} a percentile "
                          "bootstrap needs to cover as it claims")
        n_boot = 0
    boots: dict[str, list[np.ndarray]] = {name: [] for name in point}
    if n_boot > 0:
        block = int(max(1, min(MAX_BLOCK, 2_000_000 // max(1, freq.size))))
        for w in resample_weights(freq, n_boot, seed, block):
            for name, values in statistics(patterns, w).items():
                boots[name].append(np.asarray(values, dtype=np.float64))
    for name, values in point.items():
        value = float(np.asarray(values, dtype=np.float64)[0])
        low, high, defined = _interval(np.concatenate(boots[name])) if boots[name] else (math.nan, math.nan, 0)
        out[name] = {"value": value, "ci_low": low, "ci_high": high, "n_boot_defined": defined}
    return out


# --- judge value per conversation ----------------------------------------------------------------------


def judge_first_sample(judge: np.ndarray) -> np.ndarray:
    """The judge's first scored sample per unit (lowest column with a value; NaN where none)."""
    judge = as_matrix(judge)
    present = ~np.isnan(judge)
    first = np.argmax(present, axis=1)
    value = judge[np.arange(judge.shape[0]), first] if judge.shape[1] else np.full(judge.shape[0], np.nan)
    return np.where(present.any(axis=1), value, np.nan)


# --- judge against the clinicians' mean ----------------------------------------------------------------


def paired_categories(values: np.ndarray, scale=None) -> np.ndarray:
    """Gwet's categories for per-conversation means: the scale's points plus every value that occurs."""
    observed = np.unique(values[~np.isnan(values)])
    if scale is None:
        return observed
    return np.unique(np.concatenate([np.asarray(list(scale), dtype=np.float64), observed]))


def judge_vs_mean(judge_value: np.ndarray, human_mean: np.ndarray, scale=None, n_boot: int = 1000,
                  seed: int = 0, min_units_for_ci: int = MIN_CI_UNITS) -> dict:
    """Judge value against the clinicians' mean per conversation (units where both exist).

    Krippendorff's alpha (interval metric), Gwet's AC2 (quadratic weights), bias, mean absolute difference
    and Bland-Altman limits of agreement, each with a percentile bootstrap interval from the same resamples.
    scale: the axis's possible ratings (e.g. 1..4, or 0/1), added to AC2's categories."""
    j = np.asarray(judge_value, dtype=np.float64)
    h = np.asarray(human_mean, dtype=np.float64)
    both = ~np.isnan(j) & ~np.isnan(h)
    keys = np.column_stack([j[both], h[both]])
    cats = paired_categories(keys.ravel(), scale)
    use_ac2 = 1 <= cats.size <= MAX_CATEGORIES
    weights = gwet_weights(cats, "quadratic") if use_ac2 else None
    q = cats.size
    chance_scale = weights.sum() / (q * (q - 1)) if use_ac2 and q >= 2 else 0.0

    def statistics(patterns: np.ndarray, w: np.ndarray) -> dict:
        n = w.sum(axis=1)
        diff = patterns[:, 0] - patterns[:, 1]
        bias = (w @ diff) / n
        spread = np.sqrt(np.maximum(w @ (diff * diff) - n * bias * bias, 0.0) / np.maximum(n - 1.0, 1.0))
        aggregate, finish, _ = alpha_parts(patterns, cats, "interval")
        stats = {
            "alpha": finish(aggregate(w)),
            "bias": bias,
            "mean_abs_difference": (w @ np.abs(diff)) / n,
            "sd_difference": np.where(n > 1, spread, np.nan),
            "loa_low": bias - LOA_Z * spread,
            "loa_high": bias + LOA_Z * spread,
            "mean_judge": (w @ patterns[:, 0]) / n,
            "mean_humans": (w @ patterns[:, 1]) / n,
        }
        if use_ac2:
            # Two ratings per unit: its weighted agreement is w(judge, mean); each value fills half the unit.
            code_j, code_h = np.searchsorted(cats, patterns[:, 0]), np.searchsorted(cats, patterns[:, 1])
            agree = weights[code_j, code_h]
            share = np.zeros((patterns.shape[0], q))
            np.add.at(share, (np.arange(patterns.shape[0]), code_j), 0.5)
            np.add.at(share, (np.arange(patterns.shape[0]), code_h), 0.5)
            pa = (w @ agree) / n
            pi = (w @ share) / n[:, None]
            pe = chance_scale * (pi * (1.0 - pi)).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                stats["gwet_ac2"] = np.where(pe < 1.0, (pa - pe) / (1.0 - pe), np.nan)
            stats["gwet_pa"], stats["gwet_pe"] = pa, pe
        return stats

    out = bootstrap_statistics(keys, statistics, n_boot, seed, min_units_for_ci)
    out.update(metric="interval", ac2_weights="quadratic", ac2_categories=int(q) if use_ac2 else None)
    if not use_ac2 and out["n_units"]:
        out["gwet_ac2"] = None
    return out


# --- the judge as one more rater -----------------------------------------------------------------------


def judge_as_rater(humans: np.ndarray, judge_rating: np.ndarray, level: str, categories=None,
                   n_boot: int = 1000, seed: int = 0, min_units_for_ci: int = MIN_CI_UNITS) -> dict:
    """Alpha of the clinicians alone and with the judge as one more rater, on the same conversations (the
    judge scored them and at least two clinicians rated them), with a paired interval of the difference."""
    check_level(level)
    h = as_matrix(humans)
    j = np.asarray(judge_rating, dtype=np.float64)
    keep = (~np.isnan(h)).sum(axis=1) >= 2
    keep &= ~np.isnan(j)
    values = domain(np.column_stack([h, j[:, None]]) if h.size else j[:, None], categories)
    # A unit's key: its clinicians' ratings as a multiset (order of raters is irrelevant to alpha) and the judge's.
    keys = np.column_stack([np.sort(h[keep], axis=1), j[keep]]) if keep.any() else np.empty((0, h.shape[1] + 1))
    width = keys.shape[1]

    def statistics(patterns: np.ndarray, w: np.ndarray) -> dict:
        humans_only = alpha_parts(patterns[:, : width - 1], values, level)
        with_judge = alpha_parts(patterns, values, level)
        a_h = humans_only[1](humans_only[0](w))
        a_j = with_judge[1](with_judge[0](w))
        return {"humans_only": a_h, "with_judge": a_j, "difference": a_j - a_h}

    out = bootstrap_statistics(keys, statistics, n_boot, seed, min_units_for_ci)
    out["level"] = level
    return out


# --- judge self-consistency ----------------------------------------------------------------------------


def self_consistency(judge: np.ndarray, level: str, categories=None, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """Agreement of the judge with itself across its samples (None with fewer than two samples per unit)."""
    x = as_matrix(judge)
    if x.shape[1] < 2 or not ((~np.isnan(x)).sum(axis=1) >= 2).any():
        return None
    alpha = krippendorff_alpha(x, level, categories, n_boot=n_boot, seed=seed)
    exact = percent_agreement(x, 0.0)
    return {
        "n_samples": int(x.shape[1]),
        "n_units": exact["n_units"],
        "level": level,
        "alpha": alpha,
        "exact_agreement": exact["value"],
    }


# --- everything for one axis ---------------------------------------------------------------------------


def judge_agreement(humans, judge, level: str, categories=None, n_boot: int = 1000, seed: int = 0,
                    judge_all=None) -> dict:
    """Every judge-vs-clinician statistic of one axis (see JUDGE_DEFINITIONS); plain floats, NaN for undefined.

    humans: units x clinicians; judge: units x samples (the same units, e.g. the conversations with a
    clinician's rating). level: the axis's level (nominal for binary labels, ordinal for Likert, interval for
    numbers). categories: the axis's possible ratings. judge_all: units x samples over every conversation
    the judge scored, for self-consistency, which needs no clinician (default: `judge`)."""
    check_level(level)
    h = as_matrix(humans)
    j = as_matrix(judge)
    if h.shape[0] != j.shape[0]:
        raise ValueError(f"humans have {h.shape[0]} units, the judge {j.shape[0]}; they must be aligned")
    m = (~np.isnan(h)).sum(axis=1)
    human_mean = unit_means(h)
    value = unit_means(j)
    both = ~np.isnan(value) & (m > 0)
    return {
        "level": level,
        "n_units": int(h.shape[0]),
        "n_judged": int((~np.isnan(value)).sum()),
        "n_samples": int(j.shape[1]),
        "mean_clinicians_per_unit": float(m[both].mean()) if both.any() else math.nan,
        "judge_value": "mean_of_samples",
        "paired": judge_vs_mean(value, human_mean, categories, n_boot=n_boot, seed=seed),
        "one_more_rater": judge_as_rater(h, judge_first_sample(j), level, categories, n_boot=n_boot, seed=seed),
        "self_consistency": self_consistency(j if judge_all is None else judge_all, level, categories,
                                             n_boot=n_boot, seed=seed),
        "n_boot": int(n_boot),
        "seed": int(seed),
        "min_units_for_ci": MIN_CI_UNITS,
    }


def judge_agreement_from_csv(path_or_file, judge_raters: list[str], level: str, categories=None,
                             n_boot: int = 1000, seed: int = 0) -> dict:
    """`judge_agreement` on a CSV of item,rater,value in which the columns named in `judge_raters` are the
    judge's samples (in that order: the first is the judge's "first sample") and every other rater is a
    clinician. The clinicians' own agreement (results.stats.compute_agreement) is reported beside it."""
    from .agreement import compute_agreement, read_ratings_csv

    parsed = read_ratings_csv(path_or_file, level, categories)
    names = parsed["raters"]
    if not judge_raters:
        raise ValueError("name the judge's rater column(s)")
    unknown = [n for n in judge_raters if n not in names]
    if unknown:
        raise ValueError(f"no rater named {', '.join(map(repr, unknown))} in the file; raters are {names}")
    if len(set(judge_raters)) != len(judge_raters):
        raise ValueError("a judge rater is named twice")
    clinicians = [n for n in names if n not in judge_raters]
    if not clinicians:
        raise ValueError("every rater is the judge: at least one clinician's column is needed")
    matrix = parsed["matrix"]
    humans = matrix[:, [names.index(n) for n in clinicians]]
    judge = matrix[:, [names.index(n) for n in judge_raters]]
    return {
        "judge_raters": list(judge_raters),
        "clinician_raters": clinicians,
        "judge_agreement": judge_agreement(humans, judge, level, parsed["categories"], n_boot=n_boot, seed=seed),
        "clinicians_agreement": compute_agreement(humans, level, parsed["categories"], n_boot=n_boot, seed=seed,
                                                  rater_ids=clinicians),
        "judge_definitions": dict(JUDGE_DEFINITIONS),
        "input": {"items": len(parsed["items"]), "raters": len(names), "ratings": parsed["n_rows"],
                  "missing_values_skipped": parsed["n_skipped_missing"], "category_labels": parsed["labels"]},
    }
