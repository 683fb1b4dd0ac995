"""Judge runs written straight to the judging tables (the runs' services are exercised elsewhere): the
statistics only need finished items with scores, their sample index and the run's provenance."""
from django.utils import timezone

from judging.models import JudgeItem, JudgeRun, JudgeScore
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
