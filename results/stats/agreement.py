"""One entry point for every agreement statistic of one axis, and the same from a CSV file."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from pathlib import Path

import numpy as np

from ._matrix import as_matrix, check_level, domain
from .alpha import MIN_CI_UNITS, krippendorff_alpha
from .gwet import MAX_CATEGORIES, gwet_ac, percent_agreement
from .icc import intraclass_correlation
from .kappa import pairwise_quadratic_kappa, pairwise_unweighted_kappa
from .raters import DRIFT_RULE, rater_statistics

# One seed and one bootstrap size for the platform, the API and `manage.py agreement`, so the same
# ratings give the same interval wherever they are computed.
DEFAULT_SEED = 20260521
DEFAULT_N_BOOT = 1000

DEFINITIONS = {
    "n_units": "rows of the matrix (conversations)",
    "n_pairable_units": "conversations with at least two ratings; only these enter alpha, agreement and AC's p_a",
    "krippendorff_alpha": "Krippendorff (2011) via the coincidence matrix, metric of the axis's level; ordinal uses "
    "Krippendorff's ordinal metric from marginal frequencies; 95% CI: percentile bootstrap, conversations with "
    "two or more ratings resampled with replacement (n_boot resamples, fixed seed, so the same ratings give "
    f"the same interval); no CI below {MIN_CI_UNITS} such conversations, where the interval under-covers",
    "gwet_ac1": "Gwet AC1 (identity weights), Gwet (2014) ch. 2-3 formulas for r raters with missing ratings",
    "gwet_ac2": "Gwet AC2 with Gwet's quadratic, linear and ordinal weights (Gwet's 'ordinal' weights are "
    "rank based and differ from Krippendorff's ordinal metric)",
    "percent_exact_agreement": "per conversation, share of pairs of ratings that are equal; averaged over "
    "conversations with at least two ratings (each conversation weighted equally)",
    "percent_within_one": "as exact agreement, counting pairs that differ by at most one point",
    "pairwise_kappa": "Cohen's weighted kappa with quadratic weights between each pair of raters on their shared "
    "conversations (unweighted kappa for nominal axes with more than two categories); n_shared per cell",
    "icc": "reliability of the mean of k ratings (Shrout & Fleiss 1979), with the model of the design (`model`, "
    "`design`, `k`): 'crossed' (the same raters rate at least half of the conversations with two or more "
    "ratings) gives ICC(2,k), two-way random, absolute agreement, on the conversations rated by every rater, "
    "k = their number; 'overlap' (k raters per conversation from a larger pool, the platform's usual design) "
    "gives ICC(1,k), one-way random with raters nested in conversations, on every conversation with at "
    "least two ratings, k = the most common number of ratings per conversation (unbalanced ANOVA, "
    "effective group size k0). ICC(2,.) cannot be estimated in the overlap design and is left empty",
    "raters": "per rater: exact/within-one agreement with the other raters on the same conversations, mean "
    "pairwise kappa, leniency = mean(own rating - mean of the others' ratings), gold agreement, drift",
}


def to_jsonable(obj):
    """Recursively turn numpy values into plain Python, and NaN/inf into None, for json.dumps."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def compute_agreement(
    matrix,
    level: str,
    categories=None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    *,
    gold=None,
    timestamps=None,
    rater_ids=None,
) -> dict:
    """Every agreement statistic of one axis, as a JSON-serialisable dict (NaN -> None).

    matrix: units x raters, NaN where missing. level: nominal | ordinal | interval | ratio. categories:
    the possible values (so unused ones count where the statistic depends on them, e.g. AC1).
    gold: optional expected score per unit (NaN where not gold). timestamps: optional units x raters
    times of the ratings, for the drift check. rater_ids: labels of the columns.
    """
    check_level(level)
    x = as_matrix(matrix)
    values = domain(x, categories)
    present = ~np.isnan(x)
    m = present.sum(axis=1)
    observed = np.unique(x[present])
    n_raters = x.shape[1]
    if rater_ids is None:
        rater_ids = list(range(n_raters))
    if len(rater_ids) != n_raters:
        raise ValueError(f"{len(rater_ids)} rater ids for {n_raters} rater columns")

    out = {
        "level": level,
        "categories": values.tolist() if categories is not None else None,
        "observed_values": observed.tolist() if observed.size <= 100 else None,  # not thousands of scores
        "n_units": int(x.shape[0]),
        "n_rated_units": int((m >= 1).sum()),
        "n_pairable_units": int((m >= 2).sum()),
        "n_raters": int(present.any(axis=0).sum()),
        "n_ratings": int(present.sum()),
        "krippendorff_alpha": krippendorff_alpha(x, level, values, n_boot=n_boot, seed=seed),
        "gwet_ac1": None,
        "gwet_ac2": None,
        "percent_exact_agreement": percent_agreement(x, 0.0),
        "percent_within_one": None if level == "nominal" else percent_agreement(x, 1.0),
        "icc": None if level == "nominal" else intraclass_correlation(x),
    }
    if values.size <= MAX_CATEGORIES:
        out["gwet_ac1"] = gwet_ac(x, values, "identity")
        if level != "nominal":
            out["gwet_ac2"] = {w: gwet_ac(x, values, w) for w in ("quadratic", "linear", "ordinal")}

    if level == "nominal" and values.size > 2:
        kap = pairwise_unweighted_kappa(x)
    else:
        kap = pairwise_quadratic_kappa(x)
    out["pairwise_kappa"] = {"raters": list(rater_ids), **kap}

    span = float(values.max() - values.min()) if values.size else 0.0
    per_rater = rater_statistics(x, level, kap["kappa"], gold=gold, timestamps=timestamps, span=span)
    for item in per_rater:
        item["rater"] = rater_ids[item["rater"]]
    out["raters"] = per_rater
    if timestamps is not None:
        out["drift_rule"] = DRIFT_RULE
    out["definitions"] = DEFINITIONS
    return to_jsonable(out)


MISSING_TOKENS = {"", "na", "nan", "null", "none"}


def _parse_time(raw: str, line: int) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise ValueError(f"line {line}: time {raw!r} is neither a number nor an ISO 8601 date-time") from None


def _natural_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def read_ratings_csv(path_or_file, level: str, categories=None) -> dict:
    """Parse a CSV with header `item,rater,value` (optional `time` column) into a reliability matrix.

    Blank value, NA, NaN, null or none mean "not rated" and are skipped. Numeric levels need numbers;
    nominal values may be labels. A bad row raises ValueError naming its line. Returns the matrix, item
    ids (first-appearance order), rater ids (sorted), categories (numeric values, or label codes),
    labels for nominal text labels, timestamps or None, and counts.
    """
    check_level(level)
    if isinstance(path_or_file, str | Path):
        with open(path_or_file, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    else:
        text = path_or_file.read()
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ValueError("line 1: empty file; expected the header item,rater,value")
    names = [h.strip().lower() for h in header]
    missing_cols = [c for c in ("item", "rater", "value") if c not in names]
    if missing_cols:
        raise ValueError(f"line 1: header lacks column(s) {', '.join(missing_cols)}; expected item,rater,value")
    i_item, i_rater, i_value = names.index("item"), names.index("rater"), names.index("value")
    i_time = names.index("time") if "time" in names else None
    needed = max(i for i in (i_item, i_rater, i_value, i_time) if i is not None) + 1

    rows = []  # (line, item, rater, raw value, time)
    seen: dict[tuple[str, str], int] = {}
    skipped = 0
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < needed:
            raise ValueError(f"line {line}: expected {needed} fields (item,rater,value...), got {len(row)}")
        item, rater, raw = row[i_item].strip(), row[i_rater].strip(), row[i_value].strip()
        if not item:
            raise ValueError(f"line {line}: empty item id")
        if not rater:
            raise ValueError(f"line {line}: empty rater id")
        if raw.lower() in MISSING_TOKENS:
            skipped += 1
            continue
        key = (item, rater)
        if key in seen:
            raise ValueError(f"line {line}: rater {rater!r} already rated item {item!r} on line {seen[key]}")
        seen[key] = line
        when = None
        if i_time is not None:
            raw_time = row[i_time].strip()
            if not raw_time:
                raise ValueError(f"line {line}: empty time")
            when = _parse_time(raw_time, line)
        rows.append((line, item, rater, raw, when))
    if not rows:
        raise ValueError("no ratings in the file")

    def number(raw):
        try:
            value = float(raw)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    numbers = [number(r[3]) for r in rows]
    labels = None
    if any(v is None for v in numbers):
        bad = next(r for r, v in zip(rows, numbers, strict=True) if v is None)
        if level != "nominal":
            raise ValueError(f"line {bad[0]}: value {bad[3]!r} is not a finite number (level {level} needs numbers)")
        # Nominal text labels: code them 0..L-1, in the order of `categories` when given.
        labels = list(categories) if categories is not None else sorted({r[3] for r in rows})
        code = {label: i for i, label in enumerate(labels)}
        for r in rows:
            if r[3] not in code:
                raise ValueError(f"line {r[0]}: value {r[3]!r} is not one of the categories {labels}")
        numbers = [float(code[r[3]]) for r in rows]
        categories = list(range(len(labels)))
    elif categories is not None:
        try:
            allowed = {float(c) for c in categories}
        except (TypeError, ValueError):
            raise ValueError(f"categories {list(categories)} must be numbers when the values are numbers") from None
        for r, v in zip(rows, numbers, strict=True):
            if v not in allowed:
                raise ValueError(f"line {r[0]}: value {r[3]!r} is not one of the categories {sorted(allowed)}")

    items: dict[str, int] = {}
    for r in rows:
        items.setdefault(r[1], len(items))
    # Raters in a fixed order (numbers numerically, then names) so the kappa matrix layout does not
    # depend on the order of the rows.
    rater_names = sorted({r[2] for r in rows}, key=_natural_key)
    raters = {name: i for i, name in enumerate(rater_names)}
    matrix = np.full((len(items), len(raters)), np.nan)
    times = np.full(matrix.shape, np.nan) if i_time is not None else None
    for r, v in zip(rows, numbers, strict=True):
        matrix[items[r[1]], raters[r[2]]] = v
        if times is not None:
            times[items[r[1]], raters[r[2]]] = r[4]
    return {
        "matrix": matrix,
        "items": list(items),
        "raters": list(raters),
        "categories": categories,
        "labels": labels,
        "timestamps": times,
        "n_rows": len(rows),
        "n_skipped_missing": skipped,
    }


def agreement_from_csv(
    path_or_file, level: str, categories=None, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED
) -> dict:
    """`compute_agreement` on a CSV of item,rater,value (see `read_ratings_csv`)."""
    parsed = read_ratings_csv(path_or_file, level, categories)
    result = compute_agreement(
        parsed["matrix"],
        level,
        parsed["categories"],
        n_boot=n_boot,
        seed=seed,
        timestamps=parsed["timestamps"],
        rater_ids=parsed["raters"],
    )
    result["input"] = {
        "items": len(parsed["items"]),
        "raters": len(parsed["raters"]),
        "ratings": parsed["n_rows"],
        "missing_values_skipped": parsed["n_skipped_missing"],
        "category_labels": parsed["labels"],
    }
    return result
