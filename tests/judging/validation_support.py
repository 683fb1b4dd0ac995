"""Builders for the validation-mode tests: validation campaigns created through the real service over judge
runs written directly (tests/judging/judge_fixture.py; the judge itself is tested elsewhere)."""
import itertools

from accounts.roles import Role
from judging.validation import create_validation_campaign
from tests.factories import make_conversation, make_job, make_user
from tests.judging.judge_fixture import make_judge_run

_seq = itertools.count(1)
JUDGE_MODEL = "openai/judge-gpt-x"  # a real-looking judge: names the validation forms must refuse


def build_validation(n_items=3, n_raters=2, k=2, open_now=True, **extra):
    """A finished judge run over `n_items` conversations and an open validation campaign over it."""
    admin = make_user(Role.ADMIN)
    job = make_job()
    conversations = [make_conversation(job=job, n_messages=6) for _ in range(n_items)]
    run = make_judge_run(conversations=conversations, model=JUDGE_MODEL, **extra)
    raters = [make_user(Role.RATER) for _ in range(n_raters)]
    validation = create_validation_campaign(
        admin, judge_run=run, name=f"Validation {next(_seq)}", raters=raters, overlap_k=k, lease_minutes=60,
        open_now=open_now)
    return validation, raters


def all_agree(validation) -> dict:
    return {f"verdict__{a.key}": "agree" for a in validation.judge_run.rubric.axes.all() if a.is_rated}
