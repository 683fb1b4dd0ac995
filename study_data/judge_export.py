"""LLM judge scores in the exports: their own field (JSONL, Parquet), rows (long CSV) and columns (wide
CSV), each with its provenance (judge run, judge model, prompt version, rubric version, sample index).
They are never mixed with the clinicians': not in `ratings`, `aggregate`, `n_raters`, the long CSV's
clinician rows or the wide CSV's rater slots and axis means.

Which scores: the finished items (status done) of finished judge runs (done, finished with failures or
cancelled; see results.judge_selectors.FINISHED) that scored a conversation of the campaign, on any rubric
version (each entry names its own).
"""
from __future__ import annotations

import json

from django.db.models import Count

from judging.models import JudgeItem, JudgeRun
from results.judge_selectors import FINISHED

# One row per judge item with its scores as arrays in the rubric's axis order (a handful per item). The
# statuses are results.judge_selectors.FINISHED (tests/judging/test_judge_export.py keeps them equal).
SQL_JUDGE = """
SELECT ji.conversation_id, jr.id, ji.sample_index, ji.finished_at,
       COALESCE(NULLIF(jr.model_snapshot->>'model', ''), mc.model), jr.prompt_version, rb.slug, rb.version,
       array_agg(ax.key ORDER BY ax."order", ax.id), array_agg(s.value ORDER BY ax."order", ax.id),
       array_agg(s.rationale ORDER BY ax."order", ax.id), array_agg(s.cited_messages::text ORDER BY ax."order", ax.id)
FROM rating_campaignitem ci
JOIN judging_judgeitem ji ON ji.conversation_id = ci.conversation_id
JOIN judging_judgerun jr ON jr.id = ji.run_id
JOIN generation_modelconfig mc ON mc.id = jr.judge_model_id
JOIN rating_rubric rb ON rb.id = jr.rubric_id
JOIN judging_judgescore s ON s.item_id = ji.id
JOIN rating_rubricaxis ax ON ax.id = s.axis_id
WHERE ci.campaign_id = %(campaign)s AND ji.status = 'done' AND jr.status IN ('done', 'failed', 'cancelled')
GROUP BY ji.id, jr.id, mc.model, rb.slug, rb.version
ORDER BY ji.conversation_id, jr.id, ji.sample_index
"""

RECORD_FIELD = (
    "LLM judge scores of the conversation, apart from the clinicians' ratings (never counted in ratings, "
    "aggregate or n_raters): one entry per finished judge call, judge_run_id, judge_model (LiteLLM model string), "
    "judge_is_simulated (the offline simulator judge: not research data), prompt_version (of the judge prompt), "
    "rubric_slug, rubric_version, sample_index (0..n-1, the run's repeated samples of the conversation), "
    "finished_at, scores[] {axis, value, rationale, cited_messages (message numbers, 1-based)}."
)
LONG_COLUMNS = ["rater_type", "judge_run_id", "judge_model", "judge_prompt_version", "judge_sample_index",
                "judge_cited_messages"]
LONG_NOTE = (
    "rater_type is 'clinician' or 'judge'. Judge rows (one per judge call x axis) have rater and rating_id empty, "
    "the judge's rationale in comment, rubric_slug/rubric_version of the judge run, submitted_at = when the call "
    "finished, axis_mean/axis_n empty (the clinicians' aggregate is on their rows), and judge_run_id, judge_model, "
    "judge_prompt_version, judge_sample_index, judge_cited_messages (JSON list) filled; filter rater_type == "
    "'clinician' for the clinicians' ratings alone."
)
WIDE_NOTE = (
    "After the rater slots, per finished judge run R (ascending id): judgeR__model, judgeR__prompt_version, "
    "judgeR__rubric_version, judgeR__samples (scored samples of this conversation), per axis judgeR__<axis>__mean "
    "(mean over its samples) and judgeR__s<k>__<axis> for each sample k; never in the clinicians' <axis>__mean."
)


def entries(rows: list, stamp) -> list[dict]:
    """The record's judge_scores from the SQL_JUDGE rows of one conversation."""
    out = []
    for (_, run_id, sample, finished_at, model, prompt_version, slug, version, keys, values, rationales,
         cited) in rows:
        out.append({
            "judge_run_id": run_id,
            "judge_model": model,
            "judge_is_simulated": str(model or "").startswith("simulator/"),
            "prompt_version": prompt_version,
            "rubric_slug": slug,
            "rubric_version": version,
            "sample_index": sample,
            "finished_at": stamp(finished_at),
            "scores": [{"axis": k, "value": v, "rationale": r, "cited_messages": json.loads(c) if c else []}
                       for k, v, r, c in zip(keys, values, rationales, cited, strict=True)],
        })
    return out


def long_rows(record: dict, meta: list):
    """Long-CSV rows of the record's judge scores: the clinicians' columns (rater ... overall_comment, the
    rater and rating id left empty) after meta, then LONG_COLUMNS."""
    for entry in record["judge_scores"]:
        for score in entry["scores"]:
            head = [None, None, entry["rubric_slug"], entry["rubric_version"], entry["finished_at"], None, None,
                    score["axis"], score["value"], None, score["rationale"], None, None, None]
            yield [*meta, *head, "judge", entry["judge_run_id"], entry["judge_model"], entry["prompt_version"],
                   entry["sample_index"], json.dumps(score["cited_messages"])]


def clinician_tail() -> list:
    """The LONG_COLUMNS of a clinician's row."""
    return ["clinician", None, None, None, None, None]


def campaign_runs(campaign) -> list[dict]:
    """Finished judge runs with scores on the campaign's conversations (ascending id), for the wide layout's
    columns and the datasheet: provenance and counts."""
    runs = (
        JudgeRun.objects.filter(status__in=FINISHED, items__status=JudgeItem.Status.DONE,
                                items__conversation__campaign_items__campaign_id=campaign.pk)
        .annotate(done=Count("items", distinct=True))
        .select_related("judge_model", "rubric")
        .order_by("id")
        .distinct()
    )
    out = []
    for run in runs:
        model = (run.model_snapshot or {}).get("model") or run.judge_model.model
        axes = list(run.rubric.axes.filter(kind__in=["ordinal", "binary"]).order_by("order", "id")
                    .values_list("key", flat=True))
        out.append({
            "judge_run_id": run.pk, "name": run.name, "judge_model": model,
            "judge_is_simulated": str(model).startswith("simulator/"), "prompt_version": run.prompt_version,
            "rubric_slug": run.rubric.slug, "rubric_version": run.rubric.version, "samples": run.samples,
            "seed": run.seed, "status": run.status, "items_done_in_campaign": run.done, "axes": axes,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        })
    return out


def wide_columns(runs: list[dict]) -> list[str]:
    columns = []
    for run in runs:
        p = f"judge{run['judge_run_id']}"
        columns += [f"{p}__model", f"{p}__prompt_version", f"{p}__rubric_version", f"{p}__samples"]
        columns += [f"{p}__{key}__mean" for key in run["axes"]]
        columns += [f"{p}__s{k}__{key}" for k in range(run["samples"]) for key in run["axes"]]
    return columns


def wide_values(record: dict, runs: list[dict]) -> list:
    by_run: dict[int, dict[int, dict]] = {}
    for entry in record["judge_scores"]:
        by_run.setdefault(entry["judge_run_id"], {})[entry["sample_index"]] = {
            s["axis"]: s["value"] for s in entry["scores"]}
    row = []
    for run in runs:
        samples = by_run.get(run["judge_run_id"], {})
        row += [run["judge_model"], run["prompt_version"], run["rubric_version"], len(samples)]
        for key in run["axes"]:
            values = [v[key] for v in samples.values() if v.get(key) is not None]
            row.append(sum(values) / len(values) if values else None)
        row += [samples.get(k, {}).get(key) for k in range(run["samples"]) for key in run["axes"]]
    return row


def arrow_field():
    import pyarrow as pa

    return pa.field("judge_scores", pa.list_(pa.struct([
        ("judge_run_id", pa.int64()), ("judge_model", pa.string()), ("judge_is_simulated", pa.bool_()),
        ("prompt_version", pa.string()), ("rubric_slug", pa.string()), ("rubric_version", pa.int32()),
        ("sample_index", pa.int32()), ("finished_at", pa.timestamp("us", tz="UTC")),
        ("scores", pa.list_(pa.struct([("axis", pa.string()), ("value", pa.float64()), ("rationale", pa.string()),
                                       ("cited_messages", pa.list_(pa.int32()))]))),
    ])))
