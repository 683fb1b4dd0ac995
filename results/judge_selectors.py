"""Read side of the judge-vs-clinician statistics: a campaign's judge runs and their scores as matrices.

Judge scores live in judging.JudgeScore, apart from clinicians' ratings: nothing here touches
rating.AxisScore, and results.selectors.campaign_ratings never reads a judge score, so the judge is
never counted as a clinician in the human agreement. Only scores of finished items (status done) of
finished runs count, and only runs on the campaign's own rubric version (their axes are the campaign's).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, Q

from judging.models import JudgeItem, JudgeRun, JudgeScore
from rating.models import Campaign, RubricAxis

# A run's scores enter the results once it has stopped: partial scores of a running run would make the
# figures move with every finished call.
FINISHED = [JudgeRun.Status.DONE, JudgeRun.Status.FAILED, JudgeRun.Status.CANCELLED]


def campaign_judge_runs(campaign: Campaign):
    """Finished judge runs on the campaign's rubric that scored any of its conversations (launched from the
    campaign or from a filter that chose some of them), oldest first."""
    covering = JudgeItem.objects.filter(
        status=JudgeItem.Status.DONE, conversation__campaign_items__campaign_id=campaign.pk
    ).values("run_id")
    return (
        JudgeRun.objects.filter(rubric_id=campaign.rubric_id, status__in=FINISHED)
        .filter(Q(campaign_id=campaign.pk) | Q(pk__in=covering))
        .select_related("judge_model", "rubric")
        .order_by("created_at", "id")
    )


def judge_fingerprint(campaign_id: int) -> list:
    """Changes when a judge run of the campaign finishes, or its scores change: per run, its status and the
    count and last finish time of its done items on the campaign's conversations."""
    rubric_id = Campaign.objects.filter(pk=campaign_id).values_list("rubric_id", flat=True).first()
    rows = (
        JudgeItem.objects.filter(
            run__rubric_id=rubric_id, run__status__in=FINISHED, status=JudgeItem.Status.DONE,
            conversation__campaign_items__campaign_id=campaign_id,
        )
        .values_list("run_id", "run__status")
        .annotate(n=Count("id"), last=Max("finished_at"))
        .order_by("run_id")
    )
    return [[run_id, status, n, last.isoformat() if last else None] for run_id, status, n, last in rows]


@dataclass
class JudgeScores:
    """One judge run's scores on a campaign's conversations: per axis, conversations x samples (NaN where
    that sample has no score). Rows are the conversations the run scored (ascending id)."""

    run: JudgeRun
    conversation_ids: np.ndarray
    n_samples: int
    matrices: dict[str, np.ndarray]

    def aligned(self, key: str, conversation_ids: np.ndarray) -> np.ndarray:
        """The axis's matrix on the given conversations (e.g. the rows of the clinicians' matrices);
        NaN rows for conversations the judge did not score."""
        out = np.full((conversation_ids.size, self.n_samples), np.nan)
        if not self.conversation_ids.size or not conversation_ids.size:
            return out
        pos = np.searchsorted(self.conversation_ids, conversation_ids)
        pos_clipped = np.minimum(pos, self.conversation_ids.size - 1)
        found = self.conversation_ids[pos_clipped] == conversation_ids
        out[found] = self.matrices[key][pos_clipped[found]]
        return out

    def input_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([self.run.pk, self.run.prompt_version, self.n_samples]).encode())
        digest.update(np.ascontiguousarray(self.conversation_ids, dtype=np.int64).tobytes())
        for key in sorted(self.matrices):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(self.matrices[key]).tobytes())
        return digest.hexdigest()


def judge_scores(campaign: Campaign, run: JudgeRun, axes: list[RubricAxis]) -> JudgeScores:
    """The run's scores on the campaign's conversations, ONE query over its judge scores."""
    axis_index = {axis.pk: axis.key for axis in axes}
    scores = JudgeScore.objects.filter(item__run_id=run.pk, item__status=JudgeItem.Status.DONE,
                                       axis_id__in=list(axis_index))
    if run.campaign_id != campaign.pk:
        # A run chosen by a filter may cover other conversations too; one launched from the campaign cannot.
        scores = scores.filter(item__conversation__campaign_items__campaign_id=campaign.pk)
    rows = list(
        scores.order_by()
        .values_list("axis_id", "item__conversation_id", "item__sample_index", "value")
    )
    data = np.array(rows, dtype=np.float64) if rows else np.empty((0, 4))
    conv_ids, unit = np.unique(data[:, 1].astype(np.int64), return_inverse=True)
    samples = data[:, 2].astype(np.int64)
    n_samples = int(max(run.samples, samples.max() + 1 if samples.size else 1))
    matrices = {}
    for axis_id, key in axis_index.items():
        m = np.full((conv_ids.size, n_samples), np.nan)
        sel = data[:, 0] == axis_id
        m[unit[sel], samples[sel]] = data[sel, 3]
        matrices[key] = m
    return JudgeScores(run=run, conversation_ids=conv_ids, n_samples=n_samples, matrices=matrices)


def run_provenance(run: JudgeRun) -> dict:
    """Who judged and how: shown beside every judge table and stored with the statistics."""
    snapshot = run.model_snapshot or {}
    counts = dict(run.items.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "run_id": run.pk,
        "name": run.name,
        "judge_model": snapshot.get("model") or run.judge_model.model,
        "judge_model_config": run.judge_model.name,
        "simulated": run.is_simulated or str(run.judge_model.model).startswith("simulator/"),
        "prompt_version": run.prompt_version,
        "rubric": run.rubric.slug,
        "rubric_version": run.rubric.version,
        "samples": run.samples,
        "seed": run.seed,
        "status": run.status,
        "items": {status: counts.get(status, 0) for status in JudgeItem.Status.values},
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
