"""Drafts, validation, submission, audited revisions, time on task and safety flags (service level)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from rating import assignment as assigning
from rating import selectors, services
from rating.campaigns import close_campaign
from rating.models import Assignment, AxisScore, MessageNote, Rating, SafetyFlag
from tests.factories import make_user
from tests.rating.rating_support import build_campaign, full_values

changes = services.changes_from_post


@pytest.fixture
def started(db):
    campaign, raters = build_campaign(n_items=3, n_raters=2, k=2)
    rater = raters[0]
    return campaign, rater, assigning.next_assignment(campaign, rater)


def _scores(assignment):
    return {s.axis.key: s.value for s in AxisScore.objects.filter(rating__assignment=assignment).select_related("axis")}


def test_every_kind_of_change_is_saved_and_idempotent(started):
    campaign, rater, a = started
    sensemaker = a.item.conversation.messages.filter(role="sensemaker").first()
    out = services.save_rating_draft(a, rater, changes({
        "value__susceptibility": "2", "comment__susceptibility": "vague on risk",
        "value__diagnosis_hard": "0", "overall_comment": "ok overall",
        f"note__{sensemaker.index}": "dismissive", f"problematic__{sensemaker.index}": "1",
    }))
    assert not out.errors
    assert _scores(a) == {"susceptibility": 2.0, "diagnosis_hard": 0.0}
    rating = Rating.objects.get(assignment=a)
    assert rating.overall_comment == "ok overall" and rating.status == "draft"
    note = MessageNote.objects.get(rating=rating)
    assert (note.message_id, note.problematic, note.note) == (sensemaker.pk, True, "dismissive")
    before = rating.updated_at
    services.save_rating_draft(a, rater, changes({"value__susceptibility": "2"}))  # same value: nothing changes
    assert Rating.objects.get(pk=rating.pk).updated_at == before
    assert AxisScore.objects.filter(rating=rating).count() == 2
    # Drafts before the first submission are the rater's own scratch space: not audited.
    assert not AuditEvent.objects.filter(action__startswith="rating.").exists()


def test_invalid_values_are_refused_with_reasons_and_the_valid_rest_is_kept(started):
    campaign, rater, a = started
    out = services.save_rating_draft(a, rater, changes({
        "value__susceptibility": "7", "value__diagnosis_soft": "2", "value__smog": "9",
        "value__nonsense": "1", "value__flow": "abc", "value__severity": "3", "note__999": "x",
    }))
    assert "1 to 4" in out.errors["value__susceptibility"]
    assert "0 or 1" in out.errors["value__diagnosis_soft"]
    assert "computed automatically" in out.errors["value__smog"]
    assert "no axis" in out.errors["value__nonsense"]
    assert "not a score" in out.errors["value__flow"]
    assert "no such message" in out.errors["note__999"]
    assert _scores(a) == {"severity": 3.0}


def test_clearing_a_value_and_emptying_a_note(started):
    campaign, rater, a = started
    services.save_rating_draft(a, rater, changes({"value__flow": "3", "note__1": "x", "problematic__1": "1"}))
    services.save_rating_draft(a, rater, changes({"value__flow": "", "note__1": "", "problematic__1": "0"}))
    assert _scores(a) == {"flow": None}
    assert not MessageNote.objects.filter(rating__assignment=a).exists()


def test_submit_reports_every_missing_axis_and_keeps_the_draft(started):
    campaign, rater, a = started
    with pytest.raises(services.SubmitRejected) as exc:
        services.submit_rating(a, rater, changes({"value__flow": "3", "problematic__1": "1"}))
    errors = exc.value.errors
    required = {f"value__{ax.key}" for ax in campaign.rubric.axes.all() if ax.is_rated and ax.required}
    assert required - {"value__flow"} <= set(errors)
    assert "value__flow" not in errors and "value__smog" not in errors
    assert errors["note__1"] == "Say why message #2 is problematic."
    assert _scores(a) == {"flow": 3.0}
    assert Rating.objects.get(assignment=a).status == "draft"


def test_submit_then_revise_until_the_campaign_closes_with_full_audit(started):
    campaign, rater, a = started
    rating = services.submit_rating(a, rater, changes(full_values(campaign)))
    a.refresh_from_db()
    assert rating.status == "submitted" and a.status == "submitted" and a.submitted_at
    submit_event = AuditEvent.objects.get(action="rating.submit", object_id=str(rating.pk))
    assert submit_event.data["new"]["values"]["flow"] == 4
    assert submit_event.actor == rater

    services.save_rating_draft(a, rater, changes({"value__flow": "2", "comment__flow": "stage 5 missing"}))
    services.save_rating_draft(a, rater, changes({"overall_comment": "revised"}))
    revisions = AuditEvent.objects.filter(action="rating.revise", object_id=str(rating.pk)).order_by("id")
    assert [e.data["old"] for e in revisions] == [{"value__flow": 4, "comment__flow": ""}, {"overall_comment": ""}]
    assert [e.data["new"] for e in revisions] == [{"value__flow": 2, "comment__flow": "stage 5 missing"},
                                                  {"overall_comment": "revised"}]
    assert Rating.objects.get(pk=rating.pk).revision == 2
    # A submitted rating cannot lose a required score.
    out = services.save_rating_draft(a, rater, changes({"value__flow": ""}))
    assert "required" in out.errors["value__flow"] and _scores(a)["flow"] == 2.0

    close_campaign(make_user("admin"), campaign)
    a.refresh_from_db()
    with pytest.raises(services.RatingError, match="closed"):
        services.save_rating_draft(a, rater, changes({"value__flow": "3"}))
    with pytest.raises(services.RatingError, match="closed"):
        services.submit_rating(a, rater, changes({"value__flow": "3"}))
    assert _scores(a)["flow"] == 2.0


def test_heartbeat_credits_active_time_capped_by_interval_and_wall_time(started):
    campaign, rater, a = started
    Assignment.objects.filter(pk=a.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=40))
    a.refresh_from_db()
    assert services.record_heartbeat(a, 25).credited == 25
    # An immediate second beat claiming a full interval gets (almost) nothing: no wall time has passed.
    assert services.record_heartbeat(a, 30).credited <= 1
    Assignment.objects.filter(pk=a.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=3))
    a.refresh_from_db()
    assert services.record_heartbeat(a, 10_000).credited == services.HEARTBEAT_SECONDS  # stuck client: capped
    assert services.record_heartbeat(a, "garbage").credited == 0
    assert services.record_heartbeat(a, -50).credited == 0
    a.refresh_from_db()
    assert a.active_seconds <= 25 + 1 + services.HEARTBEAT_SECONDS
    assert a.lease_expires_at > timezone.now() + timedelta(minutes=campaign.lease_minutes - 1)


def test_safety_flag_reaches_the_queue_and_is_handled_with_audit(started):
    campaign, rater, a = started
    with pytest.raises(services.SubmitRejected) as exc:
        services.raise_safety_flag(a, rater, "bogus", " ")
    assert set(exc.value.errors) == {"category", "reason"}
    flag = services.raise_safety_flag(a, rater, "missed_risk", "Passive suicidal ideation ignored.", message_index=1)
    assert flag.status == "open" and flag.message.index == 1 and flag.campaign == campaign
    admin = make_user("admin")
    with pytest.raises(services.RatingError, match="Say what was done"):
        services.handle_safety_flag(flag, admin, "resolve", "")
    services.handle_safety_flag(flag, admin, "acknowledge")
    services.handle_safety_flag(flag, admin, "resolve", "Reviewed with the clinical lead; prompt updated.")
    flag = SafetyFlag.objects.get(pk=flag.pk)
    assert flag.status == "resolved" and flag.handled_by == admin
    actions = list(AuditEvent.objects.filter(object_type="rating.safetyflag", object_id=str(flag.pk))
                   .order_by("id").values_list("action", "data"))
    assert [x[0] for x in actions] == ["safety_flag.raise", "safety_flag.acknowledge", "safety_flag.resolve"]
    assert actions[2][1]["old"]["status"] == "acknowledged" and actions[2][1]["new"]["status"] == "resolved"


def test_skipped_assignment_cannot_be_edited(started):
    campaign, rater, a = started
    assigning.skip_assignment(a, rater, "conflict of interest")
    a.refresh_from_db()
    with pytest.raises(services.RatingError, match="skipped"):
        services.save_rating_draft(a, rater, changes({"value__flow": "3"}))


def test_submission_and_revision_tell_the_ratings_changed_listeners(started, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    from rating import events

    campaign, rater, a = started
    calls = []
    # results' own listener is tested in test_app_hooks
    monkeypatch.setattr(events._ratings_changed, "_listeners", [calls.append])
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_rating(a, rater, changes(full_values(campaign)))
    with django_capture_on_commit_callbacks(execute=True):
        services.save_rating_draft(a, rater, changes({"value__flow": "1"}))
    with django_capture_on_commit_callbacks(execute=True):
        services.save_rating_draft(a, rater, changes({"value__flow": "1"}))  # no change: no recomputation
    assert calls == [campaign.pk, campaign.pk]


def test_notes_on_patient_messages_are_refused_with_a_reason(started):
    campaign, rater, a = started
    patient = a.item.conversation.messages.filter(role="patient").first()
    sensemaker = a.item.conversation.messages.filter(role="sensemaker").first()
    out = services.save_rating_draft(a, rater, changes({
        f"note__{patient.index}": "rude", f"problematic__{patient.index}": "1",
        f"note__{sensemaker.index}": "vague",
    }))
    for name in (f"note__{patient.index}", f"problematic__{patient.index}"):
        assert out.errors[name] == (f"Message #{patient.index + 1} is the patient's: notes and problem marks are "
                                    "for the sensemaker's messages.")
    assert out.saved == [f"note__{sensemaker.index}"]
    assert list(MessageNote.objects.filter(rating__assignment=a).values_list("message_id", flat=True)) == [
        sensemaker.pk]
    # Sending the page's hidden "not problematic" for a patient message is no note at all: accepted.
    assert not services.save_rating_draft(a, rater, changes({f"problematic__{patient.index}": "0"})).errors


def test_a_write_by_id_reads_the_assignment_under_its_locks_and_refuses_another_raters(started):
    """Save and submit take `Assignment(pk=..., rater=...)` from the views: the hold finds the rater's own
    assignment by id (campaign and item included), and another rater's id locks and changes nothing."""
    campaign, rater, a = started
    other = [r for r in campaign.raters.all() if r.pk != rater.pk][0]
    before = Assignment.objects.get(pk=a.pk)
    with pytest.raises(services.NotYourRating):
        services.save_rating_draft(Assignment(pk=a.pk, rater=other), other, changes({"value__susceptibility": "2"}))
    with pytest.raises(services.NotYourRating):
        services.submit_rating(Assignment(pk=a.pk, rater=other), other, changes(full_values(campaign)))
    after = Assignment.objects.get(pk=a.pk)
    assert (after.lease_expires_at, after.status) == (before.lease_expires_at, before.status)
    assert not AxisScore.objects.filter(rating__assignment=a).exists()

    with pytest.raises(services.NotYourRating):  # the views' reference (selectors.own_assignment_ref)
        services.submit_rating(selectors.own_assignment_ref(other, str(a.pk)), other, changes(full_values(campaign)))
    assert not AxisScore.objects.filter(rating__assignment=a).exists()

    outcome = services.SaveOutcome()
    ref = selectors.own_assignment_ref(rater, str(a.pk))
    assert ref.rater is rater
    services.submit_rating(ref, rater, changes(full_values(campaign)), outcome=outcome)
    assert not outcome.was_submitted and ref.campaign_id == campaign.pk and ref.item_id == a.item_id
    assert Rating.objects.get(assignment=a).status == "submitted"
    services.submit_rating(Assignment(pk=a.pk, rater=rater), rater, changes({"value__susceptibility": "1"}),
                           outcome=outcome)
    assert outcome.was_submitted  # the second one was a revision


def test_a_rubrics_axes_are_read_once_per_process_in_the_models_order(started, django_assert_num_queries):
    """Edits and the rating page take a rubric version's axes from selectors.rubric_axes (they never change:
    an edit of a rubric is a new version), so the reads under the rating's locks no longer carry them."""
    from rating.models import RubricAxis

    campaign, rater, a = started
    selectors.rubric_axes.cache_clear()
    expected = list(RubricAxis.objects.filter(rubric=campaign.rubric).order_by("order", "pk"))
    with django_assert_num_queries(1):
        assert list(selectors.rubric_axes(campaign.rubric_id)) == expected
    with django_assert_num_queries(0):
        assert list(selectors.rubric_axes(campaign.rubric_id)) == expected
    services.submit_rating(a, rater, changes(full_values(campaign)))
    assert set(_scores(a)) == {axis.key for axis in expected if axis.is_rated}
