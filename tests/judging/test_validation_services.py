"""Validation mode services: creation, drafts, submission (a disagreement needs its corrected score),
revisions, and the hand-over through rating's assignment (no over-assignment under concurrency)."""
import threading

import pytest
from django.db import connection

from accounts.roles import Role
from audit.models import AuditEvent
from judging import validation
from judging.models import JudgeRun, ValidationReview, ValidationVerdict
from rating import assignment as assigning
from rating.campaigns import close_campaign
from rating.models import Assignment, Campaign, Rating
from rating.services import DraftChanges
from tests.factories import make_conversation, make_user
from tests.judging.judge_fixture import make_judge_run
from tests.judging.validation_support import JUDGE_MODEL, all_agree, build_validation

pytestmark = pytest.mark.django_db


def _save(a, rater, **fields):
    changes, verdicts = validation.verdict_changes_from_post(fields)
    return validation.save_verdicts(a, rater, changes, verdicts)


def _submit(a, rater, **fields):
    changes, verdicts = validation.verdict_changes_from_post(fields)
    return validation.submit_review(a, rater, changes, verdicts)


def test_create_uses_the_runs_scored_conversations_and_is_audited():
    admin = make_user(Role.ADMIN)
    convs = [make_conversation() for _ in range(4)]
    run = make_judge_run(conversations=convs, model=JUDGE_MODEL, samples=2, failed=[(convs[3], 0), (convs[3], 1)])
    raters = [make_user(Role.RATER) for _ in range(2)]
    v = validation.create_validation_campaign(admin, judge_run=run, name="Second look", raters=raters, overlap_k=2,
                                              lease_minutes=30, sample_index=1)
    c = v.campaign
    assert c.status == Campaign.Status.DRAFT and c.rubric_id == run.rubric_id
    assert sorted(c.items.values_list("conversation_id", flat=True)) == sorted(x.pk for x in convs[:3])
    assert c.selection["judge_validation"] == {"judge_run": run.pk, "sample_index": 1}
    assert AuditEvent.objects.filter(action="judge_validation.create").count() == 1


@pytest.mark.parametrize("change,field", [
    ({"judge_run": None}, "judge_run"),
    ({"sample_index": 1}, "sample_index"),
    ({"name": "Check of judge-gpt-x"}, "name"),
    ({"description": "Scores from openai"}, "description"),
    ({"overlap_k": 3}, "raters"),
    ({"lease_minutes": 0}, "lease_minutes"),
])
def test_create_refuses_bad_settings_with_field_errors(change, field):
    admin = make_user(Role.ADMIN)
    run = make_judge_run(conversations=[make_conversation()], model=JUDGE_MODEL)
    raters = [make_user(Role.RATER) for _ in range(2)]
    args = dict(judge_run=run, name="Second look", description="", raters=raters, overlap_k=2, lease_minutes=30,
                sample_index=0)
    args.update(change)
    with pytest.raises(validation.ValidationModeError) as exc:
        validation.create_validation_campaign(admin, **args)
    assert field in exc.value.errors
    assert not Campaign.objects.exists()


def test_create_refuses_an_unfinished_run():
    run = make_judge_run(conversations=[make_conversation()], model=JUDGE_MODEL, status=JudgeRun.Status.RUNNING)
    with pytest.raises(validation.ValidationModeError) as exc:
        validation.create_validation_campaign(make_user(Role.ADMIN), judge_run=run, name="x",
                                              raters=[make_user(Role.RATER)], overlap_k=1, lease_minutes=30)
    assert "finished" in exc.value.errors["judge_run"]


def test_drafts_agree_disagree_and_corrected_scores():
    v, (r1, _) = build_validation()
    a = assigning.next_assignment(v.campaign, r1)
    out = _save(a, r1, verdict__flow="agree", value__severity="4", comment__severity="Too low")
    assert not out.errors
    review = ValidationReview.objects.get(assignment=a)
    verdicts = {x.axis.key: x for x in review.verdicts.select_related("axis")}
    assert verdicts["flow"].agrees is True and verdicts["flow"].corrected_value is None
    # A corrected score is a disagreement.
    assert verdicts["severity"].agrees is False and verdicts["severity"].corrected_value == 4
    assert verdicts["severity"].comment == "Too low"
    # Agreeing afterwards clears the correction; the judge's own score is no correction.
    out = _save(a, r1, verdict__severity="agree", value__flow="1", value__benefits="9")
    assert set(out.errors) == {"value__flow", "value__benefits"}
    assert ValidationVerdict.objects.get(review=review, axis__key="severity").corrected_value is None
    assert not Rating.objects.filter(assignment=a).exclude(scores=None).exists()  # nothing in rating's tables
    assert not AuditEvent.objects.filter(action__startswith="judge_validation.revise").exists()  # drafts


def test_submit_needs_every_verdict_and_a_correction_for_each_disagreement():
    v, (r1, _) = build_validation()
    a = assigning.next_assignment(v.campaign, r1)
    fields = {**all_agree(v), "verdict__flow": "disagree"}
    with pytest.raises(validation.ReviewRejected) as exc:
        _submit(a, r1, **fields)
    assert set(exc.value.errors) == {"value__flow"}
    a.refresh_from_db()
    assert a.status == Assignment.Status.ACTIVE
    # The draft survived the refusal; adding the correction submits.
    review = _submit(a, r1, value__flow="3")
    a.refresh_from_db()
    assert review.status == "submitted" and a.status == Assignment.Status.SUBMITTED
    event = AuditEvent.objects.get(action="judge_validation.submit")
    assert event.data["new"]["verdicts"]["flow"] == {"verdict": "disagree", "corrected": 3, "comment": ""}


def test_a_submitted_review_is_revised_with_an_audit_trail_and_keeps_its_verdicts():
    v, (r1, _) = build_validation()
    a = assigning.next_assignment(v.campaign, r1)
    _submit(a, r1, **all_agree(v))
    out = _save(a, r1, value__flow="3")
    assert not out.errors
    review = ValidationReview.objects.get(assignment=a)
    assert review.revision == 1
    event = AuditEvent.objects.get(action="judge_validation.revise")
    assert event.data["old"]["flow"]["verdict"] == "agree" and event.data["new"]["flow"] == {
        "verdict": "disagree", "corrected": 3, "comment": ""}
    out = _save(a, r1, verdict__flow="")
    assert "verdict__flow" in out.errors
    out = _save(a, r1, value__flow="")
    assert "value__flow" in out.errors
    assert ValidationVerdict.objects.get(review=review, axis__key="flow").corrected_value == 3


def test_a_closed_campaign_refuses_changes():
    v, (r1, _) = build_validation()
    a = assigning.next_assignment(v.campaign, r1)
    close_campaign(make_user(Role.ADMIN), v.campaign)
    with pytest.raises(validation.ValidationModeError):
        _save(a, r1, verdict__flow="agree")


def test_the_sample_shown_is_the_campaigns():
    v, (r1, _) = build_validation(samples=2)
    assert v.sample_index == 0
    a = assigning.next_assignment(v.campaign, r1)
    review = validation.review_for(a)
    assert review.judge_item.sample_index == 0
    assert review.judge_item.run.model_snapshot["model"] == JUDGE_MODEL


def test_unknown_axes_and_notes_are_reported_not_saved():
    v, (r1, _) = build_validation()
    a = assigning.next_assignment(v.campaign, r1)
    out = validation.save_verdicts(a, r1, DraftChanges(values={"smog": "3"}, notes={1: "x"}), {"nope": "agree"})
    assert set(out.errors) == {"value__smog", "verdict__nope", "note__1"}
    assert not ValidationVerdict.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_over_assign_a_conversation():
    """Six raters ask for work at once in a k=2 validation campaign of 3 conversations: rating's assignment
    guarantees hold (never more than k per conversation, one row per rater and item)."""
    v, raters = build_validation(n_items=3, n_raters=6, k=2)
    barrier = threading.Barrier(len(raters))
    got, errors = [], []

    def work(rater):
        try:
            barrier.wait()
            a = assigning.next_assignment(Campaign.objects.get(pk=v.campaign_id), rater)
            if a is not None:
                fields = {**all_agree(v)}
                _submit(a, rater, **fields)
                got.append(a.pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 6
    per_item = {}
    for a in Assignment.objects.filter(campaign=v.campaign, status=Assignment.Status.SUBMITTED):
        per_item[a.item_id] = per_item.get(a.item_id, 0) + 1
    assert per_item and max(per_item.values()) <= 2 and sum(per_item.values()) == 6
    assert ValidationReview.objects.filter(status="submitted").count() == 6
