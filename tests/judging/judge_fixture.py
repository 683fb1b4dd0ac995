"""Judge runs written straight to the judging tables (the runs' services are exercised elsewhere): the
statistics only need finished items with scores, their sample index and the run's provenance."""
from django.utils import timezone

from judging.models import JudgeItem, JudgeRun, JudgeScore
from results.judge_selectors import FINISHED
from tests.factories import make_model


def make_judge_run(campaign, scores: dict, *, samples: int = 1, model: str = "simulator/judge",
                   status=JudgeRun.Status.DONE, failed=(), rubric=None, attach=True, prompt_version="judge-v1"):
    """A judge run over `campaign` with scores[(conversation, sample_index)] = {axis key: value}.

    failed: (conversation, sample_index) pairs recorded as failed items (no scores). attach=False makes a
    run chosen by a filter (no campaign), covering the same conversations."""
    rubric = rubric or campaign.rubric
    judge_model = make_model(model)
    run = JudgeRun.objects.create(
        name=f"judge {model}", campaign=campaign if attach else None, rubric=rubric, judge_model=judge_model,
        model_snapshot={"model": model, "temperature": 0.0}, prompt_version=prompt_version, samples=samples,
        seed=7, status=status, started_at=timezone.now(), finished_at=timezone.now(),
        selection={"campaign": campaign.pk} if attach else {"filter": {"ids": "test"}},
    )
    axes = {a.key: a for a in rubric.axes.all()}
    for (conversation, sample), values in scores.items():
        item = JudgeItem.objects.create(run=run, conversation=conversation, sample_index=sample, status="done",
                                        raw_reply="{}", finished_at=timezone.now(), attempts=1, calls=1)
        JudgeScore.objects.bulk_create([
            JudgeScore(item=item, axis=axes[key], value=float(v), rationale=f"message 1 shows {key}",
                       cited_messages=[1])
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
