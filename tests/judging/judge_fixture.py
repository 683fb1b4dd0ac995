"""Judge runs written straight to the judging tables (the runs' services are exercised elsewhere): the
statistics and the validation mode only need finished items with scores, their sample index and the run's
provenance."""
import itertools

from django.utils import timezone

from judging.models import JudgeItem, JudgeRun, JudgeScore
from rating.rubric_files import default_rubric
from results.judge_selectors import FINISHED
from tests.factories import make_model

_seq = itertools.count(1)
CITED = [2]  # the message every rationale cites


def lowest_value(axis) -> float:
    """The lowest point of an axis's scale (so the top is a valid correction in validation mode)."""
    return float(axis.allowed_values()[0])


def make_judge_run(campaign=None, scores=None, *, conversations=(), rubric=None, samples: int = 1,
                   model: str = "simulator/judge", status=JudgeRun.Status.DONE, failed=(), attach=True,
                   prompt_version="judge-v1"):
    """A judge run with scores[(conversation, sample_index)] = {axis key: value}.

    Without `scores`, every sample of each of `conversations` scores the lowest point of every rated axis.
    failed: (conversation, sample_index) pairs recorded as failed items (no scores). campaign: the run's
    campaign (its rubric is the default one); attach=False or no campaign makes a run chosen by a filter."""
    rubric = rubric or (campaign.rubric if campaign else default_rubric())
    if scores is None:
        rated = [a for a in rubric.axes.all() if a.is_rated]
        scores = {(conv, s): {a.key: lowest_value(a) for a in rated}
                  for conv in conversations for s in range(samples)}
    attach = attach and campaign is not None
    run = JudgeRun.objects.create(
        name=f"judge {model} #{next(_seq)}", campaign=campaign if attach else None, rubric=rubric,
        judge_model=make_model(model), model_snapshot={"model": model, "temperature": 0.0},
        prompt_version=prompt_version, samples=samples, seed=7, status=status, started_at=timezone.now(),
        finished_at=timezone.now(), selection={"campaign": campaign.pk} if attach else {"filter": {"ids": "test"}},
    )
    axes = {a.key: a for a in rubric.axes.all()}
    failed_pairs = set(failed)
    for (conversation, sample), values in scores.items():
        if (conversation, sample) in failed_pairs:
            continue
        item = JudgeItem.objects.create(run=run, conversation=conversation, sample_index=sample, status="done",
                                        raw_reply="{}", finished_at=timezone.now(), attempts=1, calls=1)
        JudgeScore.objects.bulk_create([
            JudgeScore(item=item, axis=axes[key], value=float(v), cited_messages=CITED,
                       rationale=f"Sample {sample}: message {CITED[0]} addresses {axes[key].name.lower()}.")
            for key, v in values.items()
        ])
    for conversation, sample in failed:
        JudgeItem.objects.create(run=run, conversation=conversation, sample_index=sample, status="failed",
                                 failure_reason="malformed JSON after 3 attempts", attempts=3)
    return run


def judge_truth(campaign) -> dict[int, list[dict]]:
    """conversation id -> its judge entries, read with the ORM (not the export's SQL)."""
    out: dict[int, list[dict]] = {}
    items = (JudgeItem.objects.filter(status="done", run__status__in=FINISHED,
                                      conversation__campaign_items__campaign=campaign)
             .select_related("run__rubric", "run__judge_model").order_by("conversation_id", "run_id", "sample_index"))
    for item in items:
        scores = sorted(JudgeScore.objects.filter(item=item).select_related("axis"),
                        key=lambda s: (s.axis.order, s.axis_id))
        out.setdefault(item.conversation_id, []).append({
            "judge_run_id": item.run_id,
            "judge_model": item.run.model_snapshot["model"],
            "judge_is_simulated": item.run.model_snapshot["model"].startswith("simulator/"),
            "prompt_version": item.run.prompt_version,
            "rubric_slug": item.run.rubric.slug,
            "rubric_version": item.run.rubric.version,
            "sample_index": item.sample_index,
            "finished_at": item.finished_at.isoformat(),
            "scores": [{"axis": s.axis.key, "value": s.value, "rationale": s.rationale,
                        "cited_messages": s.cited_messages} for s in scores],
        })
    return out
