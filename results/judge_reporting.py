"""Judge-vs-clinician statistics of a campaign: computed with the snapshot, stored as JudgeAgreement rows,
turned into tables (each downloadable as CSV), plot data and the per-model results from the judge.

`compute_judges` runs inside results.services.recompute_campaign, after the clinicians' statistics, on
the same rated conversations, seed and number of resamples; pages and the API read what it stored.
"""
from __future__ import annotations

import numpy as np

from . import judge_selectors, reporting
from .reporting import AxisInfo, table
from .stats import DEFAULT_N_BOOT as N_BOOT
from .stats import DEFAULT_SEED as SEED
from .stats import to_jsonable, unit_means
from .stats.judge import JUDGE_DEFINITIONS, judge_agreement

# The per-model tables (the paper's Table 1 and 2 layouts) that can also be built from a judge run.
PER_MODEL_TABLES = ["summary", "by_model", "trait_literacy"]
JUDGE_TABLES = ["judge_vs_clinicians", "judge_as_rater", "judge_self_consistency", "judge_side_by_side"]
MAX_POINTS = 400  # distinct points per scatter before values are binned


def _ci(stat: dict | None) -> list:
    stat = stat or {}
    return [stat.get("value"), stat.get("ci_low"), stat.get("ci_high")]


def _unit(a: AxisInfo) -> str:
    return "share 0-1" if a.is_binary else a.unit


def agreement_rows(axes: list[AxisInfo], statistics: dict[str, dict]) -> dict[str, list[list]]:
    """Rows of the three judge agreement tables, one row per axis each."""
    paired, rater, consistency = [], [], []
    for a in axes:
        s = statistics.get(a.key)
        if not s:
            continue
        p = s["paired"]
        paired.append([
            a.name, _unit(a), p.get("n_units", 0), s.get("mean_clinicians_per_unit"), *_ci(p.get("alpha")),
            *_ci(p.get("gwet_ac2")), *_ci(p.get("bias")), (p.get("mean_abs_difference") or {}).get("value"),
            (p.get("loa_low") or {}).get("value"), (p.get("loa_high") or {}).get("value"),
            (p.get("mean_judge") or {}).get("value"), (p.get("mean_humans") or {}).get("value"), p.get("ci_note", ""),
        ])
        r = s["one_more_rater"]
        rater.append([a.name, r.get("level"), r.get("n_units", 0), *_ci(r.get("humans_only")),
                      *_ci(r.get("with_judge")), *_ci(r.get("difference")), r.get("ci_note", "")])
        c = s.get("self_consistency")
        if c:
            alpha = c["alpha"]
            consistency.append([a.name, c["level"], c["n_samples"], c["n_units"], alpha.get("alpha"),
                                alpha.get("ci_low"), alpha.get("ci_high"),
                                None if c["exact_agreement"] is None else 100.0 * c["exact_agreement"]])
    return {"judge_vs_clinicians": paired, "judge_as_rater": rater, "judge_self_consistency": consistency}


def agreement_tables(axes: list[AxisInfo], statistics: dict[str, dict], provenance: dict, n_boot: int,
                     seed: int) -> dict:
    rows = agreement_rows(axes, statistics)
    who = _who(provenance)
    boot = reporting.bootstrap_note(n_boot, seed)
    ci3 = lambda label: [(label, "num3"), (f"{label} 95% CI low", "num3"), (f"{label} 95% CI high", "num3")]  # noqa: E731
    return {
        "judge_vs_clinicians": table(
            f"Judge against the clinicians' mean per axis ({who})",
            [("Axis", "text"), ("Unit", "text"), ("Conversations (judge and >= 1 clinician)", "int"),
             ("Clinicians per conversation (mean)", "num"), *ci3("Krippendorff's alpha (interval)"),
             *ci3("Gwet AC2 (quadratic)"), *ci3("Bias (judge - clinicians)"), ("Mean absolute difference", "num3"),
             ("Limit of agreement low", "num3"), ("Limit of agreement high", "num3"), ("Judge mean", "num3"),
             ("Clinicians' mean", "num3"), ("Note", "text")],
            rows["judge_vs_clinicians"],
            "Per conversation, the judge's mean over its samples against the mean of the clinicians' submitted "
            "ratings. Alpha uses the interval metric (means are not categories; on 0/1 labels it equals the "
            "nominal metric); AC2 uses Gwet's quadratic weights over the scale points and the values that occur. "
            "Bias: mean of (judge - clinicians), positive when the judge scores higher; limits of agreement: "
            "bias +/- 1.96 SD of the differences (Bland-Altman). Binary axes as shares of 'yes' (0-1). "
            f"{boot.replace('conversations with two or more ratings', 'conversations')}",
        ),
        "judge_as_rater": table(
            f"The judge as one more rater ({who})",
            [("Axis", "text"), ("Level", "text"), ("Conversations (judge and >= 2 clinicians)", "int"),
             *ci3("alpha, clinicians only"), *ci3("alpha, clinicians + judge"),
             *ci3("Difference (with judge - clinicians only)"), ("Note", "text")],
            rows["judge_as_rater"],
            "Krippendorff's alpha at the axis's own level (ordinal metric for Likert axes, nominal for binary labels) "
            "on the same conversations, without and with the judge's first sample as one more rater. A difference "
            "near 0 means the judge agrees with the clinicians about as well as they agree with each other; "
            "negative, less. The difference's interval is paired (the same resampled conversations for both). "
            f"{boot}",
        ),
        "judge_self_consistency": table(
            f"Judge self-consistency across samples ({who})",
            [("Axis", "text"), ("Level", "text"), ("Samples per conversation", "int"),
             ("Conversations with >= 2 samples", "int"), ("alpha among samples", "num3"),
             ("alpha 95% CI low", "num3"), ("alpha 95% CI high", "num3"), ("Exact agreement of samples (%)", "pct")],
            rows["judge_self_consistency"],
            "Only for runs with two or more samples per conversation: the samples as raters (alpha at the axis's "
            "level), and the share of pairs of samples that give the same score. Every conversation the judge "
            f"scored counts, rated by clinicians or not. {boot}",
        ),
    }


def _who(provenance: dict) -> str:
    sim = " [simulated]" if provenance.get("simulated") else ""
    return (f"judge {provenance.get('judge_model')}{sim}, prompt {provenance.get('prompt_version')}, "
            f"run {provenance.get('run_id')}")


def side_by_side(human_by_model: dict | None, judge_by_model: dict, provenance: dict) -> dict:
    """Per model and axis, the clinicians' mean next to the judge's (both from the 'by_model' tables)."""
    judge_rows = {(r[0], r[2]): r for r in judge_by_model["rows"]}
    rows = []
    for r in (human_by_model or {}).get("rows", []):
        if r[5] is None:  # SMOG: computed, the same for both
            continue
        j = judge_rows.get((r[0], r[2]))
        jn, jmean, jlo, jhi = (j[4], j[6], j[8], j[9]) if j else (0, None, None, None)
        diff = jmean - r[6] if jmean is not None and r[6] is not None else None
        rows.append([r[0], r[2], r[3], r[4], r[6], r[8], r[9], jn, jmean, jlo, jhi, diff])
    return table(
        f"Per model and axis: clinicians and judge side by side ({_who(provenance)})",
        [("Model", "text"), ("Axis", "text"), ("Unit", "text"), ("Clinicians: conversations", "int"),
         ("Clinicians: mean", "num"), ("Clinicians: 95% CI low", "num"), ("Clinicians: 95% CI high", "num"),
         ("Judge: conversations", "int"), ("Judge: mean", "num"), ("Judge: 95% CI low", "num"),
         ("Judge: 95% CI high", "num"), ("Judge mean - clinicians' mean", "num")],
        rows,
        "Clinicians: per-conversation means of submitted ratings; judge: per-conversation means of its samples, over "
        "every conversation of the campaign it scored (so the two columns may cover different conversations; the "
        "paired comparison is in the judge-against-clinicians table). Binary axes in percent; CI of the mean from "
        "the t distribution.",
    )


def _points(x: np.ndarray, y: np.ndarray, span: float) -> list[list]:
    """Distinct (x, y) points with their counts; binned to a grid when there are too many to draw."""
    keep = ~np.isnan(x) & ~np.isnan(y)
    x, y = np.round(x[keep], 4), np.round(y[keep], 4)
    pts, counts = np.unique(np.column_stack([x, y]), axis=0, return_counts=True) if x.size else (np.empty((0, 2)), [])
    if len(pts) > MAX_POINTS and span > 0:
        step = span / 40.0
        pts, counts = np.unique(np.round(np.column_stack([x, y]) / step) * step, axis=0, return_counts=True)
    return [[float(a), float(b), int(n)] for (a, b), n in zip(pts, counts, strict=True)]


def figure_data(axes: list[AxisInfo], humans: dict[str, np.ndarray], judge: dict[str, np.ndarray],
                statistics: dict[str, dict]) -> list[dict]:
    """Per axis: scatter points (clinicians' mean, judge value, count) and Bland-Altman points (mean of the
    two, judge - clinicians, count), with the bias and limits of agreement."""
    out = []  # a list, in axis order: JSON objects in Postgres (jsonb) do not keep key order
    for a in axes:
        s = statistics.get(a.key)
        if not s:
            continue
        h, j = unit_means(humans[a.key]), unit_means(judge[a.key])
        seen = np.concatenate([h[~np.isnan(h)], j[~np.isnan(j)]]) if h.size else np.array([0.0, 1.0])
        lo = 0.0 if a.is_binary else float(a.scale_min if a.scale_min is not None else seen.min(initial=0.0))
        hi = 1.0 if a.is_binary else float(a.scale_max if a.scale_max is not None else seen.max(initial=1.0))
        p = s["paired"]
        out.append({
            "key": a.key, "name": a.name, "lo": lo, "hi": hi, "n": p["n_units"],
            "scatter": _points(h, j, hi - lo),
            "bland_altman": _points((h + j) / 2.0, j - h, hi - lo),
            "bias": (p.get("bias") or {}).get("value"),
            "loa_low": (p.get("loa_low") or {}).get("value"),
            "loa_high": (p.get("loa_high") or {}).get("value"),
            "alpha": (p.get("alpha") or {}).get("value"),
        })
    return out


def run_statistics(campaign, run, data, infos: list[AxisInfo], n_boot: int, seed: int):
    """One judge run's scores, its matrices aligned on the clinicians' conversations, and its statistics per
    axis (axes it never scored are left out)."""
    from . import selectors

    scores = judge_selectors.judge_scores(campaign, run, data.axes)
    statistics, aligned = {}, {}
    for axis, info in zip(data.axes, infos, strict=True):
        aligned[axis.key] = scores.aligned(axis.key, data.conversation_ids)
        if np.isnan(scores.matrices[axis.key]).all():
            continue
        statistics[axis.key] = to_jsonable(judge_agreement(
            data.matrices[axis.key], aligned[axis.key], info.level, selectors.axis_categories(axis),
            n_boot=n_boot, seed=seed, judge_all=scores.matrices[axis.key],
        ))
    return scores, aligned, statistics


def compute_judges(campaign, data, facts, stage_counts, infos: list[AxisInfo], human_tables: dict, n_boot: int,
                   seed: int) -> list[dict]:
    """Everything judge-related of the campaign, one entry per finished judge run (see module docstring).

    data: the clinicians' CampaignRatings; facts/stage_counts: as for reporting.build_results; human_tables:
    the clinicians' stored tables (for the side-by-side table)."""
    out = []
    for run in judge_selectors.campaign_judge_runs(campaign):
        scores, aligned, statistics = run_statistics(campaign, run, data, infos, n_boot, seed)
        provenance = judge_selectors.run_provenance(run)
        tables = agreement_tables(infos, statistics, provenance, n_boot, seed)
        per_model = reporting.build_results(
            infos, {k: unit_means(m) for k, m in scores.matrices.items()}, scores.matrices, facts,
            facts.rows_of(scores.conversation_ids), stage_counts,
        ) if scores.conversation_ids.size else {"tables": {}, "models": []}
        for name in PER_MODEL_TABLES:
            if name in per_model["tables"]:
                t = dict(per_model["tables"][name])
                t["title"] = f"{t['title']}: from the judge ({_who(provenance)})"
                t["note"] = (f"{t['note']} Judge values: per-conversation means of the judge's samples instead of "
                             "clinicians' ratings; 'Ratings' counts judge samples.")
                tables[f"judge_{name}"] = t
        if "judge_by_model" in tables:
            tables["judge_side_by_side"] = side_by_side(human_tables.get("by_model"), tables["judge_by_model"],
                                                        provenance)
        out.append({
            "run": run,
            "provenance": provenance,
            "input_hash": scores.input_hash(),
            "n_conversations": int(scores.conversation_ids.size),
            "statistics": statistics,
            "tables": to_jsonable({"tables": tables,
                                   "figures": figure_data(infos, data.matrices, aligned, statistics)}),
        })
    return out


def store(snapshot, judges: list[dict]) -> None:
    """Write the judge entries of a snapshot (inside the snapshot's transaction)."""
    from .models import JudgeAgreement

    JudgeAgreement.objects.bulk_create([
        JudgeAgreement(snapshot=snapshot, judge_run=j["run"], provenance=j["provenance"], input_hash=j["input_hash"],
                       n_conversations=j["n_conversations"], statistics=j["statistics"], tables=j["tables"])
        for j in judges
    ])


def compact(snapshot_ids: list[int]) -> None:
    """Old snapshots keep their judge statistics but drop the bulky tables and plot data."""
    from .models import JudgeAgreement

    JudgeAgreement.objects.filter(snapshot_id__in=snapshot_ids).update(tables={})


# --- for the API: the snapshot's figures when current, else computed now and cached ---------------------

API_CACHE_SECONDS = 24 * 3600


def _run_payload(provenance: dict, n_conversations: int, input_hash: str, statistics: dict, axes) -> dict:
    return {
        "run": provenance,
        "n_conversations": n_conversations,
        "input_hash": input_hash,
        "axes": [{"axis": a.key, "name": a.name, "level": a.level, "statistics": statistics.get(a.key)}
                 for a in axes],
    }


def campaign_judge_agreement(campaign, run_pk: int | None = None) -> dict | None:
    """Judge-vs-clinician statistics of the campaign's finished judge runs (or of one run: None when it has
    none for this campaign), as the API serves them. From the newest snapshot when it matches the current
    ratings and judge scores; otherwise computed with the platform's seed and resamples and cached in
    Redis under the campaign's fingerprint, so any new rating or finished run makes the next request fresh."""
    from django.core.cache import cache
    from django.utils import timezone

    from . import selectors

    rubric = campaign.rubric
    base = {"campaign": campaign.pk,
            "rubric": {"id": rubric.pk, "slug": rubric.slug, "version": rubric.version, "name": rubric.name},
            "definitions": dict(JUDGE_DEFINITIONS)}
    axes = [AxisInfo.from_axis(a, selectors.axis_level(a)) for a in selectors.rated_axes(campaign)]
    snapshot = selectors.latest_snapshot(campaign)
    if snapshot is not None and not snapshot.compacted and not selectors.is_stale(snapshot):
        rows = snapshot.judge_agreements.order_by("judge_run_id")
        if run_pk is not None:
            rows = rows.filter(judge_run_id=run_pk)
        runs = [_run_payload(r.provenance, r.n_conversations, r.input_hash, r.statistics, axes) for r in rows]
        payload = {"source": "precomputed", "snapshot_id": snapshot.pk, "computed_at": snapshot.computed_at,
                   "n_boot": snapshot.n_boot, "seed": snapshot.seed, "runs": runs}
    else:
        key = f"results:judge-agreement:v1:{campaign.pk}:{run_pk}:{selectors.ratings_fingerprint(campaign.pk)[:32]}"
        payload = cache.get(key)
        if payload is None:
            data = selectors.campaign_ratings(campaign)
            runs = []
            for run in judge_selectors.campaign_judge_runs(campaign):
                if run_pk is not None and run.pk != run_pk:
                    continue
                scores, _, statistics = run_statistics(campaign, run, data, axes, N_BOOT, SEED)
                runs.append(_run_payload(judge_selectors.run_provenance(run), int(scores.conversation_ids.size),
                                         scores.input_hash(), statistics, axes))
            payload = {"source": "computed", "computed_at": timezone.now(), "n_boot": N_BOOT, "seed": SEED,
                       "runs": runs}
            cache.set(key, payload, API_CACHE_SECONDS)
        else:
            payload = {**payload, "source": "cache"}
    if run_pk is not None and not payload["runs"]:
        return None
    return {**base, **payload}
