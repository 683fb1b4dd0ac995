"""Builders for the validation-mode tests: judge runs with scores written directly (the judge itself is
tested elsewhere), and validation campaigns created through the real service."""
import itertools

from accounts.roles import Role
from judging.models import JudgeItem, JudgeRun, JudgeScore
from judging.validation import create_validation_campaign
from rating.rubric_files import default_rubric
from tests.factories import make_conversation, make_job, make_model, make_user

_seq = itertools.count(1)
JUDGE_MODEL = "openai/judge-gpt-x"


def judge_value(axis) -> float:
    """The judge's score on an axis: the lowest point of its scale (so the top is a valid correction)."""
    return float(axis.allowed_values()[0])


def make_judge_run(conversations, rubric=None, *, samples=1, status=JudgeRun.Status.DONE, failed=()):
    rubric = rubric or default_rubric()
    config = make_model(JUDGE_MODEL, name=f"Judge GPT-X {next(_seq)}")
    run = JudgeRun.objects.create(
        name=f"judge-run-{next(_seq)}", rubric=rubric, judge_model=config, model_snapshot={"model": JUDGE_MODEL},
        samples=samples, status=status,
    )
    axes = [a for a in rubric.axes.all() if a.is_rated]
    for conv in conversations:
        for s in range(samples):
            if conv in failed:
                JudgeItem.objects.create(run=run, conversation=conv, sample_index=s, status=JudgeItem.Status.FAILED,
                                         failure_reason="malformed reply")
                continue
            item = JudgeItem.objects.create(run=run, conversation=conv, sample_index=s,
                                            status=JudgeItem.Status.DONE, raw_reply="{}")
            JudgeScore.objects.bulk_create([
                JudgeScore(item=item, axis=a, value=judge_value(a), cited_messages=[2],
                           rationale=f"Sample {s}: message 2 addresses {a.name.lower()}.")
                for a in axes
            ])
    return run


def build_validation(n_items=3, n_raters=2, k=2, open_now=True, **extra):
    """A finished judge run over `n_items` conversations and an open validation campaign over it."""
    admin = make_user(Role.ADMIN)
    job = make_job()
    conversations = [make_conversation(job=job, n_messages=6) for _ in range(n_items)]
    run = make_judge_run(conversations, **extra)
    raters = [make_user(Role.RATER) for _ in range(n_raters)]
    validation = create_validation_campaign(
        admin, judge_run=run, name=f"Validation {next(_seq)}", raters=raters, overlap_k=k, lease_minutes=60,
        open_now=open_now)
    return validation, raters


def all_agree(validation) -> dict:
    return {f"verdict__{a.key}": "agree" for a in validation.judge_run.rubric.axes.all() if a.is_rated}
