"""The study's results tables and the data behind the plots, from arrays (no database access here).

Conventions, stated on the results page too:
- Ratings are averaged per conversation across its raters FIRST; every table and model comparison
  below is over those per-conversation means, so a conversation counts once however many rated it.
- Rated axes cover the campaign's conversations with at least one submitted rating. Figures that need
  no rater cover every conversation of the campaign: SMOG grade in the per-model tables and its t-test,
  and the stage-length table (the paper's Table 1). In the breakdown tables, whose rows are rated
  conversations, the SMOG column is over the same rated conversations and says so.
- Binary axes (diagnostic accuracy) are shown as percentages: 100 x the mean of the 0/1 labels.
- "Good" is a per-conversation mean in the upper half of the scale: >= 3 on 1-4, as in the paper.
- SMOG grade is the conversation's computed grade (no rater involved); compared by Welch's t-test.
  The rated axes are compared with the two-sided Mann-Whitney U test (rank-biserial effect size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations

import numpy as np

from .stats import describe, mann_whitney, share_at_least, to_jsonable, welch_t
from .stats.alpha import MIN_CI_UNITS
from .stats.nominal import MIN_RECALL_CI_UNITS
from .stats.raters import DRIFT_WINDOW

TABLES_VERSION = 1
LENGTH_BINS = [("<=5", 0, 5), ("6-10", 6, 10), ("11-15", 11, 15), (">15", 16, math.inf)]
TRAIT_ORDER = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]
LITERACY_ORDER = ["basic", "functional", "advanced"]
STAGES = [1, 2, 3, 4, 5, 6]
SMOG_KEY = "smog"
SMOG_ALL = "SMOG grade (computed, every conversation)"
SMOG_RATED = "SMOG grade (rated conversations)"


@dataclass(frozen=True)
class AxisInfo:
    key: str
    name: str
    kind: str  # "ordinal" | "binary" (rated axes)
    level: str
    scale_min: int | None
    scale_max: int | None

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    @property
    def unit(self) -> str:
        return "%" if self.is_binary else f"{self.scale_min}-{self.scale_max}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})"

    @property
    def scale(self) -> float:
        """Multiplier from the stored value to the displayed one (percent for 0/1 labels)."""
        return 100.0 if self.is_binary else 1.0

    @property
    def good_threshold(self) -> float | None:
        """Upper half of the scale: 3 on 1-4 (the paper's "good performance"), 4 on 1-6."""
        if self.is_binary or self.scale_min is None or self.scale_max is None:
            return None
        return float(self.scale_min + math.ceil((self.scale_max - self.scale_min) / 2))

    @classmethod
    def from_axis(cls, axis, level: str) -> AxisInfo:
        return cls(axis.key, axis.name, axis.kind, level, axis.scale_min, axis.scale_max)


def table(title: str, columns, rows, note: str = "") -> dict:
    """A table as stored in a snapshot: columns are (label, format) with format one of text, int,
    num (2 decimals), num3 (3 decimals), pct (already in percent), p (p-value)."""
    return {"title": title, "note": note, "columns": [{"label": c, "fmt": f} for c, f in columns], "rows": rows}


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def _n(x: np.ndarray) -> int:
    return int((~np.isnan(x)).sum())


def length_bin(count: int) -> str:
    for label, low, high in LENGTH_BINS:
        if low <= count <= high:
            return label
    return LENGTH_BINS[-1][0]


def _ordered(values, order) -> list[str]:
    present = set(values)
    known = [v for v in order if v in present]
    return known + sorted(present - set(order))


def build_results(
    axes: list[AxisInfo],
    means: dict[str, np.ndarray],
    matrices: dict[str, np.ndarray],
    facts,
    rated_rows: np.ndarray,
    stage_counts: list[tuple[str, int | None, int]],
) -> dict:
    """Every results table and the data of the plots.

    axes: the rated axes. means/matrices: per axis, aligned on the rated conversations (rows of the
    reliability matrices). facts: ConversationFacts of ALL conversations of the campaign; rated_rows:
    the position in `facts` of each rated conversation. stage_counts: (model, stage, messages).
    """
    study = _Study.of(axes, means, matrices, facts, rated_rows)
    by_model, means_figure = _by_model(study)
    score_length, length_figure = _score_against_length(study)
    distribution, distribution_figure = _distributions(study)
    tables = {
        "by_model": by_model,
        "summary": _summary(study),
        "comparisons": _comparisons(study),
        "trait_literacy": _by_trait_and_literacy(study),
        "condition": _by_condition(study),
        "length": _by_length(study),
        "score_length": score_length,
        "distribution": distribution,
        "stages": _stages(study, stage_counts),
    }
    figures = {"means": means_figure, "length": length_figure, "distribution": distribution_figure}
    return to_jsonable({"version": TABLES_VERSION, "models": study.models, "tables": tables, "figures": figures})


@dataclass(frozen=True)
class _Study:
    """The arrays every table reads. Per rated conversation (aligned with `means`): model, smog, length,
    trait, literacy, condition and the displayed values `shown`; per conversation of the campaign:
    all_models and the facts."""

    axes: list[AxisInfo]
    means: dict[str, np.ndarray]
    matrices: dict[str, np.ndarray]
    shown: dict[str, np.ndarray]
    facts: object
    model: np.ndarray
    smog: np.ndarray
    length: np.ndarray
    trait: np.ndarray
    literacy: np.ndarray
    condition: np.ndarray
    all_models: np.ndarray
    simulated: frozenset
    models: list[str]

    @classmethod
    def of(cls, axes, means, matrices, facts, rated_rows) -> _Study:
        def rated(values) -> np.ndarray:
            return np.array(values, dtype=object)[rated_rows] if rated_rows.size else np.array([], dtype=object)

        model = rated(facts.model)
        return cls(
            axes=axes, means=means, matrices=matrices, shown={a.key: means[a.key] * a.scale for a in axes},
            facts=facts, model=model, smog=facts.smog[rated_rows], length=facts.sensemaker_messages[rated_rows],
            trait=rated(facts.trait), literacy=rated(facts.literacy), condition=rated(facts.condition),
            all_models=np.array(facts.model, dtype=object),
            simulated=frozenset(m for m, sim in zip(facts.model, facts.simulated, strict=True) if sim),
            models=sorted(set(model.tolist())),
        )

    def origin(self, m: str) -> str:
        return "simulated" if m in self.simulated else "model"

    def smog_of(self, m: str) -> np.ndarray:
        """SMOG grades of every conversation of model `m` (rated or not)."""
        return self.facts.smog[self.all_models == m]


def _by_model(study: _Study) -> tuple[dict, dict]:
    """Per model and axis: mean, SD, CI, n, share good; and the bar chart's data."""
    rows, bars = [], {}
    for m in study.models:
        in_model = study.model == m
        for a in study.axes:
            d = describe(study.shown[a.key][in_model])
            good = (share_at_least(study.means[a.key][in_model], a.good_threshold)
                    if a.good_threshold is not None else None)
            rows.append([
                m, study.origin(m), a.name, a.unit, d["n"], int((~np.isnan(study.matrices[a.key][in_model])).sum()),
                d["mean"], d["sd"], d["ci_low"], d["ci_high"],
                None if good is None else good["count"],
                None if good is None else 100.0 * good["share"],
                None if good is None else 100.0 * good["ci_low"],
                None if good is None else 100.0 * good["ci_high"],
            ])
            bars.setdefault(a.key, {})[m] = [d["mean"], d["ci_low"], d["ci_high"], d["n"]]
        d = describe(study.smog_of(m))
        rows.append([m, study.origin(m), SMOG_ALL, "grade", d["n"], None, d["mean"], d["sd"], d["ci_low"],
                     d["ci_high"], None, None, None, None])
    by_model = table(
        "Per model and axis",
        [("Model", "text"), ("Output", "text"), ("Axis", "text"), ("Unit", "text"), ("Conversations", "int"),
         ("Ratings", "int"),
         ("Mean", "num"), ("SD", "num"), ("95% CI low", "num"), ("95% CI high", "num"), ("Good (n)", "int"),
         ("Good (%)", "pct"), ("Good 95% CI low (%)", "pct"), ("Good 95% CI high (%)", "pct")],
        rows,
        "Over per-conversation means (ratings averaged across raters first). CI of the mean: t distribution. "
        "Binary axes in percent (hard/soft diagnostic accuracy). Good = conversation mean in the upper half of "
        "the scale (>= 3 on 1-4), with a Wilson interval. Rated axes: conversations with a submitted rating; "
        "SMOG grade (computed, no rater): every conversation of the campaign with a grade. Output 'simulated': "
        "conversations made with the offline simulator (rule-based text, not a language model), kept apart "
        "from the real model's and marked [simulated] in every table and figure.",
    )
    figure = {
        "axes": [{"key": a.key, "name": a.name, "unit": a.unit, "lo": 0.0 if a.is_binary else float(a.scale_min),
                  "hi": 100.0 if a.is_binary else float(a.scale_max)} for a in study.axes],
        "models": study.models,
        "values": bars,
    }
    return by_model, figure


def _summary(study: _Study) -> dict:
    """The paper's summary layout: one row per metric, mean and SD per model."""
    summary_rows = []
    for a in study.axes:
        row = [a.label]
        for m in study.models:
            d = describe(study.shown[a.key][study.model == m])
            row += [d["mean"], d["sd"], d["n"]]
        summary_rows.append(row)
    row = [SMOG_ALL]
    for m in study.models:
        d = describe(study.smog_of(m))
        row += [d["mean"], d["sd"], d["n"]]
    summary_rows.append(row)
    cols = [("Metric", "text")]
    for m in study.models:
        cols += [(f"{m} mean", "num"), (f"{m} SD", "num"), (f"{m} n", "int")]
    return table(
        "Summary by model (the paper's layout)", cols, summary_rows,
        "Ordinal axes on their scale, diagnostic accuracy in percent (conversations with a submitted rating); "
        "SMOG as a grade level, over every conversation of the campaign.",
    )


def _comparisons(study: _Study) -> dict:
    """Each pair of models: Mann-Whitney U per rated axis, Welch's t on SMOG."""
    comp_rows = []
    for m_a, m_b in combinations(study.models, 2):
        in_a, in_b = study.model == m_a, study.model == m_b
        for a in study.axes:
            r = mann_whitney(study.shown[a.key][in_a], study.shown[a.key][in_b])
            comp_rows.append([a.name, m_a, m_b, "Mann-Whitney U", r["n_a"], r["n_b"], r["u"], None, r["p_value"],
                              r["rank_biserial"], "rank-biserial r", r["median_a"], r["median_b"]])
        r = welch_t(study.smog_of(m_a), study.smog_of(m_b))
        comp_rows.append([SMOG_ALL, m_a, m_b, "Welch t-test", r["n_a"], r["n_b"], r["t"], r["df"], r["p_value"],
                          r["cohens_d"], "Cohen's d", r["mean_a"], r["mean_b"]])
    return table(
        "Model comparisons",
        [("Axis", "text"), ("Model A", "text"), ("Model B", "text"), ("Test", "text"), ("n A", "int"), ("n B", "int"),
         ("Statistic (U or t)", "num"), ("df", "num"), ("p", "p"), ("Effect size", "num3"), ("Effect measure", "text"),
         ("A: median (U) / mean (t)", "num"), ("B: median (U) / mean (t)", "num")],
        comp_rows,
        "Two-sided tests on per-conversation means (SMOG: every conversation of the campaign). Rank-biserial "
        "r = 2U/(n_A n_B) - 1, positive when A scores higher. p-values are not adjusted for multiple comparisons.",
    )


def _breakdown_columns(study: _Study) -> list[tuple[str, str]]:
    return [(a.label, "num") for a in study.axes] + [(SMOG_RATED, "num")]


def _breakdown_rows(study: _Study, keys: list[tuple], masks: list[np.ndarray]) -> list[list]:
    """One row per non-empty cell: its key, conversations, the mean per axis and the SMOG mean."""
    out = []
    for key, mask in zip(keys, masks, strict=True):
        if not mask.any():
            continue
        row = list(key) + [int(mask.sum())]
        row += [_mean(study.shown[a.key][mask]) for a in study.axes]
        row.append(_mean(study.smog[mask]))
        out.append(row)
    return out


def _by_trait_and_literacy(study: _Study) -> dict:
    trait, literacy, model = study.trait, study.literacy, study.model
    has_persona = trait != ""
    keys, masks = [], []
    for t in _ordered(trait[has_persona].tolist(), TRAIT_ORDER):
        lits = _ordered(literacy[has_persona & (trait == t)].tolist(), LITERACY_ORDER)
        for lit in [*lits, "all"]:
            for m in study.models:
                mask = has_persona & (trait == t) & (model == m)
                if lit != "all":
                    mask &= literacy == lit
                keys.append((t, lit, m))
                masks.append(mask)
    return table(
        "Dominant trait x health literacy x model (the paper's Table 2 layout)",
        [("Dominant trait", "text"), ("Health literacy", "text"), ("Model", "text"), ("Conversations", "int"),
         *_breakdown_columns(study)],
        _breakdown_rows(study, keys, masks),
        "Mean of per-conversation means in each cell. Rows 'all' pool the literacy levels. Conversations without "
        "a persona (e.g. imported ones) are not in this table.",
    )


def _by_condition(study: _Study) -> dict:
    keys, masks = [], []
    for c in sorted(set(study.condition.tolist())):
        for m in study.models:
            keys.append((c or "(none)", m))
            masks.append((study.condition == c) & (study.model == m))
    return table(
        "By condition and model",
        [("Condition", "text"), ("Model", "text"), ("Conversations", "int"), *_breakdown_columns(study)],
        _breakdown_rows(study, keys, masks),
        "Condition as recorded with the case study.",
    )


def _by_length(study: _Study) -> dict:
    keys, masks = [], []
    for label, low, high in LENGTH_BINS:
        for m in study.models:
            keys.append((label, m))
            masks.append((study.length >= low) & (study.length <= high) & (study.model == m))
    return table(
        "By conversation length (sensemaker messages) and model",
        [("Sensemaker messages", "text"), ("Model", "text"), ("Conversations", "int"), *_breakdown_columns(study)],
        _breakdown_rows(study, keys, masks),
        "Bins of the number of sensemaker messages in the conversation.",
    )


def _score_against_length(study: _Study) -> tuple[dict, dict]:
    """Mean score per exact conversation length and model: plot data, and the same as a table."""
    length = study.length
    length_rows, length_fig = [], {}
    for a in study.axes:
        per_model = {}
        for m in study.models:
            in_model = (study.model == m) & ~np.isnan(study.shown[a.key])
            points = []
            for count in np.unique(length[in_model]).tolist():
                sel = in_model & (length == count)
                points.append([int(count), _mean(study.shown[a.key][sel]), int(sel.sum())])
                length_rows.append([a.name, m, int(count), int(sel.sum()), _mean(study.shown[a.key][sel])])
            per_model[m] = points
        length_fig[a.key] = per_model
    score_length = table(
        "Score against conversation length",
        [("Axis", "text"), ("Model", "text"), ("Sensemaker messages", "int"), ("Conversations", "int"),
         ("Mean score", "num")],
        length_rows,
        "Mean of per-conversation means for each exact number of sensemaker messages (percent for binary axes).",
    )
    return score_length, length_fig


def _distributions(study: _Study) -> tuple[dict, dict]:
    """How often each score was given, per axis and model (individual ratings, not means)."""
    dist_rows, dist_fig = [], {}
    for a in study.axes:
        values = [float(v) for v in range(a.scale_min, a.scale_max + 1)] if a.scale_min is not None else []
        counts = {}
        for m in study.models:
            x = study.matrices[a.key][study.model == m]
            x = x[~np.isnan(x)]
            c = [int((x == v).sum()) for v in values]
            counts[m] = c
            total = sum(c)
            for v, k in zip(values, c, strict=True):
                dist_rows.append([a.name, m, v, k, 100.0 * k / total if total else None])
        dist_fig[a.key] = {"values": values, "counts": counts}
    distribution = table(
        "Score distributions (individual ratings)",
        [("Axis", "text"), ("Model", "text"), ("Score", "num"), ("Ratings", "int"), ("Share of ratings (%)", "pct")],
        dist_rows,
        "Every submitted rating counted once (not averaged per conversation).",
    )
    return distribution, dist_fig


def _stages(study: _Study, stage_counts: list[tuple[str, int | None, int]]) -> dict:
    """Messages per stage and model (the paper's Table 1), over every conversation of the campaign."""
    all_models = study.all_models
    stage_rows = []
    per_stage: dict[str, dict] = {}
    for m, stage, n in stage_counts:
        per_stage.setdefault(m, {})
        per_stage[m][stage] = per_stage[m].get(stage, 0) + n
    has_unstaged = any(None in v for v in per_stage.values())
    for m in sorted(set(all_models.tolist())):
        n_conv = int((all_models == m).sum())
        counts = per_stage.get(m, {})
        total = sum(counts.values())
        row = [m, study.origin(m), n_conv, total / n_conv if n_conv else None,
               float(study.facts.sensemaker_messages[all_models == m].mean()) if n_conv else None]
        row += [counts.get(s, 0) / n_conv if n_conv else None for s in STAGES]
        if has_unstaged:
            row.append(counts.get(None, 0) / n_conv if n_conv else None)
        stage_rows.append(row)
    stage_cols = [("Model", "text"), ("Output", "text"), ("Conversations", "int"), ("Messages per conversation", "num"),
                  ("Sensemaker messages per conversation", "num")]
    stage_cols += [(f"Stage {s}", "num") for s in STAGES]
    if has_unstaged:
        stage_cols.append(("No stage recorded", "num"))
    return table(
        "Messages per stage and model (the paper's Table 1)", stage_cols, stage_rows,
        "Average messages per conversation in each stage, patient and sensemaker together, over every "
        "conversation of the campaign (rated or not). Stages: 1 fostering the relationship, 2 gathering "
        "information, 3 providing information, 4 decision making, 5 responding to emotions, 6 exit. Output "
        "'simulated': made with the offline simulator, kept apart from the model's real output.",
    )


def bootstrap_note(n_boot: int, seed: int) -> str:
    """How alpha's interval was made, for every place that shows it."""
    return (f"95% CI: percentile bootstrap, conversations with two or more ratings resampled with replacement, "
            f"{n_boot:,} resamples, seed {seed} (the same ratings always give the same interval); no interval "
            f"with fewer than {MIN_CI_UNITS} such conversations, where a bootstrap interval under-covers.")


def agreement_tables(axes: list[AxisInfo], statistics: dict[str, dict | None], n_boot: int, seed: int) -> dict:
    """Agreement per axis, and the pairwise kappa matrices in long form."""
    rows, kappa_rows, heat = [], [], {}
    for a in axes:
        s = statistics.get(a.key)
        if not s:
            rows.append([a.name, a.level] + [0, 0, 0] + [None] * 12)
            continue
        alpha = s["krippendorff_alpha"]
        ac2 = (s.get("gwet_ac2") or {}).get("quadratic") or {}
        icc = s.get("icc") or {}
        rows.append([
            a.name, a.level, s["n_pairable_units"], s["n_raters"], s["n_ratings"], alpha.get("alpha"),
            alpha.get("ci_low"), alpha.get("ci_high"), (s.get("gwet_ac1") or {}).get("coefficient"),
            ac2.get("coefficient"),
            _pct((s.get("percent_exact_agreement") or {}).get("value")),
            _pct((s.get("percent_within_one") or {}).get("value")),
            icc.get("value"), icc.get("model"), icc.get("design"), icc.get("k") if icc else None,
            icc.get("n") if icc else None,
        ])
        pk = s["pairwise_kappa"]
        heat[a.key] = {"raters": pk["raters"], "kappa": pk["kappa"], "n_shared": pk["n_shared"], "name": a.name}
        for i, j in combinations(range(len(pk["raters"])), 2):
            kappa_rows.append([a.name, pk["raters"][i], pk["raters"][j], pk["kappa"][i][j], pk["n_shared"][i][j]])
    return {
        "agreement": table(
            "Inter-rater agreement per axis",
            [("Axis", "text"), ("Level", "text"), ("Conversations with >= 2 ratings", "int"), ("Raters", "int"),
             ("Ratings", "int"), ("Krippendorff's alpha", "num3"), ("alpha 95% CI low (bootstrap)", "num3"),
             ("alpha 95% CI high (bootstrap)", "num3"), ("Gwet AC1", "num3"), ("Gwet AC2 (quadratic)", "num3"),
             ("Exact agreement (%)", "pct"), ("Within one point (%)", "pct"), ("ICC", "num3"),
             ("ICC model", "text"), ("ICC design", "text"), ("ICC k (ratings averaged)", "int"),
             ("ICC conversations", "int")],
            rows,
            "Alpha with the metric of the axis's level (Krippendorff's ordinal metric for Likert axes, nominal for "
            f"binary labels). {bootstrap_note(n_boot, seed)} ICC (numeric axes only): "
            "reliability of the mean of k ratings with the model of the design: ICC(2,k), two-way random, on the "
            "conversations rated by every rater when the same raters rate most conversations (crossed); ICC(1,k), "
            "one-way random with raters nested in conversations, on every conversation with two or more ratings "
            "when each gets k raters from a larger pool (overlap).",
        ),
        "kappa": table(
            "Pairwise Cohen's kappa between raters",
            [("Axis", "text"), ("Rater A", "text"), ("Rater B", "text"), ("Kappa", "num3"),
             ("Shared conversations", "int")],
            kappa_rows,
            "Quadratic-weighted kappa on the conversations both raters rated (empty where undefined).",
        ),
    }, heat


def _pct(value):
    return None if value is None else 100.0 * value


def rater_tables(axes: list[AxisInfo], statistics: dict[str, dict | None], rater_ids, rater_labels):
    """Per-rater statistics across axes, the rows of the rater tables, and the drift-flag list."""
    label_to_id = dict(zip(rater_labels, rater_ids, strict=True))
    per_rater = {label: {"id": label_to_id[label], "pseudonym": label, "axes": {}} for label in rater_labels}
    detail_rows, flagged = [], []
    for a in axes:
        s = statistics.get(a.key)
        if not s:
            continue
        for r in s["raters"]:
            if r["n_rated"] == 0:
                continue
            label = r["rater"]
            per_rater[label]["axes"][a.key] = r
            gold = r.get("gold") or {}
            drift = r.get("drift") or {}
            detail_rows.append([
                label, a.name, r["n_rated"], r["n_compared"], _pct(r["exact_agreement"]),
                _pct(r["within_one_agreement"]), r["mean_kappa"], r["leniency"], gold.get("n"),
                _pct(gold.get("exact")), gold.get("mean_offset"), drift.get("status"),
                _pct(drift.get("baseline_agreement")), _pct(drift.get("recent_agreement")), drift.get("p_value"),
            ])
            if drift.get("flagged"):
                flagged.append({
                    "rater_id": label_to_id[label], "rater": label, "axis": a.key, "axis_name": a.name,
                    "method": drift.get("method"), "baseline_agreement": drift.get("baseline_agreement"),
                    "recent_agreement": drift.get("recent_agreement"), "p_value": drift.get("p_value"),
                    "n_recent": drift.get("n_recent"), "n_baseline": drift.get("n_baseline"),
                })

    summary_rows, stored = [], []
    for label in rater_labels:
        info = per_rater[label]
        axes_stats = info["axes"]

        def avg(values):
            v = [x for x in values if x is not None]
            return sum(v) / len(v) if v else None

        summary = {
            "n_rated": max((r["n_rated"] for r in axes_stats.values()), default=0),
            "exact_agreement": avg([r["exact_agreement"] for r in axes_stats.values()]),
            "within_one_agreement": avg([r["within_one_agreement"] for r in axes_stats.values()]),
            "mean_kappa": avg([r["mean_kappa"] for r in axes_stats.values()]),
            "leniency": avg([axes_stats[a.key]["leniency"] for a in axes if not a.is_binary and a.key in axes_stats]),
            "gold_n": max(((r.get("gold") or {}).get("n", 0) for r in axes_stats.values()), default=0),
            "gold_exact": avg([(r.get("gold") or {}).get("exact") for r in axes_stats.values()]),
            "drift_axes": [f["axis"] for f in flagged if f["rater"] == label],
        }
        info["summary"] = summary
        stored.append(info)
        summary_rows.append([
            label, summary["n_rated"], _pct(summary["exact_agreement"]), _pct(summary["within_one_agreement"]),
            summary["mean_kappa"], summary["leniency"], summary["gold_n"], _pct(summary["gold_exact"]),
            ", ".join(summary["drift_axes"]) or "no",
        ])
    tables = {
        "raters": table(
            "Raters: agreement, leniency, gold, drift",
            [("Rater", "text"), ("Conversations rated", "int"), ("Exact agreement with others (%)", "pct"),
             ("Within one point (%)", "pct"), ("Mean kappa", "num3"), ("Leniency", "num"),
             ("Gold conversations", "int"), ("Gold exact (%)", "pct"), ("Drifting on", "text")],
            summary_rows,
            "Averages over axes of the per-axis figures below. Leniency: mean of (own score - mean of the other "
            "raters' scores on the same conversation), over ordinal axes; positive = scores higher than colleagues.",
        ),
        "rater_axes": table(
            "Raters per axis",
            [("Rater", "text"), ("Axis", "text"), ("Rated", "int"), ("Compared", "int"), ("Exact agreement (%)", "pct"),
             ("Within one (%)", "pct"), ("Mean kappa", "num3"), ("Leniency", "num"), ("Gold n", "int"),
             ("Gold exact (%)", "pct"), ("Gold mean offset", "num"), ("Drift", "text"),
             ("Earlier agreement (%)", "pct"), ("Recent agreement (%)", "pct"), ("Drift p", "p")],
            detail_rows,
            "Drift compares the rater's most recent ratings with their earlier ones (see the drift rule below).",
        ),
    }
    return to_jsonable(tables), to_jsonable(stored), to_jsonable(flagged)


def utc_iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")


def timeline_tables(axes: list[AxisInfo], timelines: dict[str, list[dict]], n_boot: int, seed: int):
    """Alpha by rating submission time (results.stats.alpha_over_time per axis): the table and the plot data."""
    rows, fig = [], {}
    for a in axes:
        points = timelines.get(a.key) or []
        if not any(p["alpha"] is not None and math.isfinite(p["alpha"]) for p in points):
            continue
        fig[a.key] = points
        for p in points:
            rows.append([a.name, utc_iso(p["time"]), p["n_ratings"], p["n_units"], p["n_raters"], p["alpha"],
                         p["ci_low"], p["ci_high"]])
    return to_jsonable({"alpha_over_time": table(
        "Krippendorff's alpha as the ratings came in",
        [("Axis", "text"), ("Ratings submitted up to (UTC)", "text"), ("Ratings", "int"),
         ("Conversations with >= 2 ratings", "int"), ("Raters", "int"), ("alpha", "num3"),
         ("alpha 95% CI low (bootstrap)", "num3"), ("alpha 95% CI high (bootstrap)", "num3")],
        rows,
        "Alpha on every rating submitted up to each time; the times split the ratings into steps of about equal "
        f"size, and the last row of an axis uses every rating (the headline alpha). {bootstrap_note(n_boot, seed)}",
    )}), to_jsonable(fig)


def drift_tables(axes: list[AxisInfo], rater_stats: list[dict]):
    """Each rater's agreement with the others in successive windows of their ratings (the drift series of
    results.stats.raters): the table and the plot data {axis: {pseudonym: [window, ...]}}."""
    rows, fig = [], {}
    for a in axes:
        for r in rater_stats:
            series = ((r["axes"].get(a.key) or {}).get("drift") or {}).get("series") or []
            if not series:
                continue
            fig.setdefault(a.key, {})[r["pseudonym"]] = series
            for i, w in enumerate(series, start=1):
                rows.append([r["pseudonym"], a.name, i, w["n"], utc_iso(w["end_time"]), w["agreement"]])
    return to_jsonable({"rater_drift": table(
        "Raters' agreement with the others over time",
        [("Rater", "text"), ("Axis", "text"), ("Window", "int"), ("Ratings in window", "int"),
         ("Window ends (UTC)", "text"), ("Agreement with the others", "num3")],
        rows,
        f"Each rater's ratings that others also rated, in time order, in windows of {DRIFT_WINDOW}; agreement is the "
        "drift rule's score (exact agreement for nominal axes, quadratic agreement weights otherwise).",
    )}), to_jsonable(fig)


def nominal_tables(axes: list[AxisInfo], statistics: dict[str, dict | None], n_boot: int, seed: int):
    """Tables of the nominal (categorical) axes: agreement with AC1's interval, the confusion matrices in
    long form, high-risk recall; and the data of the confusion heat maps."""
    agree_rows, confusion_rows, recall_rows, figure = [], [], [], {"axes": []}
    for a in axes:
        s = statistics.get(a.key)
        if not s or not s.get("nominal"):
            agree_rows.append([a.name, None, 0, 0, 0] + [None] * 8)
            continue
        nominal, alpha = s["nominal"], s["krippendorff_alpha"]
        ac1, ref = nominal["gwet_ac1"], nominal.get("reference") or {}
        labels = nominal["labels"]
        agree_rows.append([
            a.name, len(labels), s["n_pairable_units"], s["n_raters"], s["n_ratings"], alpha.get("alpha"),
            alpha.get("ci_low"), alpha.get("ci_high"), ac1.get("coefficient"), ac1.get("ci_low"), ac1.get("ci_high"),
            _pct((s.get("percent_exact_agreement") or {}).get("value")), _pct(ref.get("agreement")),
        ])
        pairs = (("rater vs rater", nominal["pair_confusion"]), ("reference vs rater", ref.get("confusion")))
        for kind, matrix in pairs:
            for i, row in enumerate(matrix or []):
                confusion_rows += [[a.name, kind, labels[i], labels[j], count] for j, count in enumerate(row)]
        recall = ref.get("high_risk_recall")
        if recall:
            high = ", ".join(labels[nominal["categories"].index(k)] for k in nominal["high_risk"])
            recall_rows.append([
                a.name, high, nominal.get("reference_source", ""), recall["n_conversations"], recall["n_ratings"],
                recall["n_high_risk_labels"], _pct(recall["recall"]), _pct(recall["ci_low"]), _pct(recall["ci_high"]),
                _pct(recall["rating_recall"]), _pct(recall["wilson_low"]), _pct(recall["wilson_high"]),
                recall["ci_note"],
            ])
        figure["axes"].append({"key": a.key, "name": a.name})
        figure[a.key] = {"labels": labels, "pairs": nominal["pair_confusion"], "reference": ref.get("confusion"),
                         "reference_source": nominal.get("reference_source", "")}
    tables = {
        "nominal_agreement": table(
            "Categorical axes: agreement",
            [("Axis", "text"), ("Categories", "int"), ("Conversations with >= 2 ratings", "int"), ("Raters", "int"),
             ("Ratings", "int"), ("Krippendorff's alpha (nominal)", "num3"), ("alpha 95% CI low", "num3"),
             ("alpha 95% CI high", "num3"), ("Gwet AC1", "num3"), ("AC1 95% CI low", "num3"),
             ("AC1 95% CI high", "num3"), ("Exact agreement (%)", "pct"),
             ("Ratings equal to the reference (%)", "pct")],
            agree_rows,
            "Alpha with the nominal metric; AC1 with identity weights over every category of the rubric (an unused "
            f"category still counts). Both intervals: {bootstrap_note(n_boot, seed)} The reference column is empty "
            "where the axis names no reference or no rated conversation has one.",
        ),
        "confusion": table(
            "Categorical axes: confusion matrices",
            [("Axis", "text"), ("Comparison", "text"), ("Row", "text"), ("Column", "text"), ("Count", "int")],
            confusion_rows,
            "Rater vs rater: every pair of ratings of one conversation by two raters, counted in both orders (the "
            "matrix is symmetric). Reference vs rater: rows are the conversation's reference label, columns each "
            "rating it received.",
        ),
        "high_risk_recall": table(
            "Categorical axes: high-risk recall",
            [("Axis", "text"), ("High-risk categories", "text"), ("Reference from", "text"),
             ("Conversations with a high-risk reference", "int"), ("Their ratings", "int"),
             ("Rated high-risk", "int"), ("Recall (%)", "pct"), ("Recall 95% CI low (%)", "pct"),
             ("Recall 95% CI high (%)", "pct"), ("Recall over ratings (%)", "pct"), ("Wilson 95% CI low (%)", "pct"),
             ("Wilson 95% CI high (%)", "pct"), ("Note", "text")],
            recall_rows,
            "Recall: per conversation whose reference is a high-risk category, the share of its raters who chose a "
            "high-risk category, averaged over those conversations (each counts once); interval: percentile "
            f"bootstrap over those conversations, {n_boot:,} resamples, seed {seed}, given from "
            f"{MIN_RECALL_CI_UNITS} conversations. "
            "Recall over ratings pools every rating, with Wilson's score interval (which treats ratings as "
            "independent).",
        ),
    }
    return to_jsonable(tables), to_jsonable(figure)
