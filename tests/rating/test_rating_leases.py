"""Leases after review: a heartbeat keeps a live lease only, idle tabs let go, the page-close beacon renews
nothing; campaign state, roster and completeness are checked again under the locks that write."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from rating import assignment as assigning
from rating import selectors, services
from rating.campaigns import close_campaign, update_campaign
from rating.models import Assignment, AxisScore, Campaign, Rating
from tests.factories import make_user
from tests.rating.rating_support import build_campaign, full_values

changes = services.changes_from_post


def _age(a, **fields):
    Assignment.objects.filter(pk=a.pk).update(**fields)
    a.refresh_from_db()
    return a


def _active_live(campaign, rater):
    return list(Assignment.objects.filter(campaign=campaign, rater=rater, status="active",
                                          lease_expires_at__gt=timezone.now()).values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_heartbeat_never_takes_back_a_lapsed_lease_but_an_edit_does_if_the_place_is_free():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    a = _age(a, lease_expires_at=timezone.now() - timedelta(seconds=5))
    outcome = services.record_heartbeat(a, 10)
    assert "lapsed" in outcome.problem and outcome.credited == 0
    a.refresh_from_db()
    assert a.lease_expires_at < timezone.now() and a.active_seconds == 0
    assert not AuditEvent.objects.filter(action="assignment.reacquire").exists()
    # Editing is the rater at work: the conversation is theirs again, since nobody took it.
    services.save_rating_draft(a, r1, changes({"value__flow": "3"}))
    a.refresh_from_db()
    assert assigning.lease_is_live(a) and a.lease_expires_at > timezone.now() + timedelta(minutes=59)
    assert AuditEvent.objects.filter(action="assignment.reacquire", object_id=str(a.pk)).exists()
    # Lapsed again and taken by r2: the edit is refused, the draft kept, the cap held.
    _age(a, lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert assigning.next_assignment(campaign, r2).item_id == a.item_id
    with pytest.raises(services.RatingError, match="went to another rater"):
        services.save_rating_draft(a, r1, changes({"value__flow": "2"}))
    assert AxisScore.objects.get(rating__assignment=a).value == 3.0
    assert Assignment.objects.filter(item=a.item, status="active", lease_expires_at__gt=timezone.now()).count() == 1


@pytest.mark.django_db
def test_opening_an_old_released_conversation_takes_nothing_and_a_rater_never_holds_two_leases():
    campaign, (r1, r2) = build_campaign(n_items=4, n_raters=2, k=2)
    old = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(old, r1, changes({"overall_comment": "half done"}))
    _age(old, lease_expires_at=timezone.now() - timedelta(minutes=1))
    assigning.reclaim_expired_assignments(campaign)
    # r1 starts something else (their released draft would come first, so skip past it as r2 would).
    Assignment.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=1))
    new = Assignment.objects.create(campaign=campaign, item=campaign.items.exclude(pk=old.item_id).first(),
                                    rater=r1, status="active", last_active_at=timezone.now(),
                                    lease_expires_at=timezone.now() + timedelta(minutes=60))
    client = Client()
    client.force_login(r1)
    # The page of the old one opens (read-only problem notice), and its heartbeats take nothing back.
    page = client.get(reverse("rating:rate", args=[old.pk]))
    assert page.status_code == 200 and "lapsed" in page.content.decode()
    for _ in range(3):
        beat = client.post(reverse("rating:heartbeat", args=[old.pk]), {"active_seconds": "30"}, HTTP_HX_REQUEST="true")
        assert "lapsed" in beat.content.decode()
    old.refresh_from_db()
    assert old.status == "released"
    # An edit on it is refused while the other lease is live: one conversation at a time.
    with pytest.raises(services.RatingError, match=f"Conversation {new.pk}"):
        services.save_rating_draft(old, r1, changes({"overall_comment": "more"}))
    assert _active_live(campaign, r1) == [new.pk]
    assert Rating.objects.get(assignment=old).overall_comment == "half done"
    # Once that one is submitted, the old draft can be taken back by editing it.
    services.submit_rating(new, r1, changes(full_values(campaign)))
    services.save_rating_draft(old, r1, changes({"overall_comment": "more"}))
    assert _active_live(campaign, r1) == [old.pk]


@pytest.mark.django_db
def test_an_admins_release_now_is_not_undone_by_the_next_heartbeat():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    assert assigning.release_assignment(a, make_user(Role.ADMIN))
    for _ in range(2):
        assert "lapsed" in services.record_heartbeat(a, 30).problem
    a.refresh_from_db()
    assert a.status == "released"
    assert not selectors.stuck_leases(campaign).exists()
    b = assigning.next_assignment(campaign, r2)  # the place really is free
    assert b is not None and b.item_id == a.item_id


@pytest.mark.django_db
def test_an_idle_tab_stops_renewing_lapses_and_shows_as_stuck():
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2, lease_minutes=30)
    a = assigning.next_assignment(campaign, r1)
    # The tab has been open and idle for 29 minutes; beats kept coming, each with 0 active seconds.
    last = timezone.now() - timedelta(minutes=29)
    a = _age(a, last_active_at=last, last_heartbeat_at=timezone.now() - timedelta(seconds=30),
             lease_expires_at=timezone.now() + timedelta(minutes=2))
    outcome = services.record_heartbeat(a, 0)
    a.refresh_from_db()
    # Not renewed past the lease length after the last activity (the current lease is never shortened).
    assert not outcome.problem and a.lease_expires_at <= timezone.now() + timedelta(minutes=2)
    assert a.last_active_at == last
    assert a in selectors.stuck_leases(campaign)  # idle for 15 minutes or more: the admin sees it
    # Time passes: the lease runs out, the beat cannot save it, and the reaper gives the place back.
    a = _age(a, lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert "lapsed" in services.record_heartbeat(a, 0).problem
    assert assigning.reclaim_expired_assignments(campaign) == 1
    a.refresh_from_db()
    assert a.status == "released"


@pytest.mark.django_db
def test_a_beat_with_active_time_renews_for_a_full_lease():
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2, lease_minutes=30)
    a = assigning.next_assignment(campaign, r1)
    a = _age(a, last_active_at=timezone.now() - timedelta(minutes=20),
             last_heartbeat_at=timezone.now() - timedelta(seconds=30),
             lease_expires_at=timezone.now() + timedelta(minutes=10))
    outcome = services.record_heartbeat(a, 12)
    a.refresh_from_db()
    assert outcome.credited == 12 and a.last_active_at > timezone.now() - timedelta(seconds=5)
    assert a.lease_expires_at > timezone.now() + timedelta(minutes=29)
    assert a not in selectors.stuck_leases(campaign)


@pytest.mark.django_db
def test_the_page_close_beacon_records_active_time_without_renewing():
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2, lease_minutes=30)
    a = assigning.next_assignment(campaign, r1)
    lease = timezone.now() + timedelta(minutes=3)
    a = _age(a, last_heartbeat_at=timezone.now() - timedelta(seconds=40), lease_expires_at=lease)
    client = Client()
    client.force_login(r1)
    response = client.post(reverse("rating:heartbeat", args=[a.pk]), {"active_seconds": "20", "final": "1"})
    assert response.status_code == 200
    a.refresh_from_db()
    assert a.active_seconds == 20 and a.lease_expires_at == lease


@pytest.mark.django_db
def test_a_submission_refused_when_the_campaign_closes_before_the_submit_takes_its_locks(monkeypatch):
    """Open when the rater loaded the page, closed by the time the submission holds the campaign's lock:
    refused as a whole (the save and the submission are one transaction), the earlier draft untouched."""
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(a, r1, changes({"value__flow": "2"}))
    real_hold = assigning.hold_and_read

    def admin_closes_then_hold(assignment, read):
        close_campaign(make_user(Role.ADMIN), Campaign.objects.get(pk=campaign.pk))
        return real_hold(assignment, read)

    monkeypatch.setattr(assigning, "hold_and_read", admin_closes_then_hold)
    with pytest.raises(services.RatingError, match="closed"):
        services.submit_rating(a, r1, changes(full_values(campaign)))
    rating = Rating.objects.get(assignment=a)
    assert rating.status == "draft"
    assert {s.axis.key: s.value for s in rating.scores.filter(value__isnull=False)} == {"flow": 2.0}
    assert not Assignment.objects.filter(pk=a.pk, status="submitted").exists()


@pytest.mark.django_db(transaction=True)
def test_closing_waits_for_a_save_in_progress_and_later_saves_see_it_closed():
    """The campaign row lock orders a save and a close: the close commits after the save it raced with."""
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, r1)
    services.submit_rating(a, r1, changes(full_values(campaign)))
    held, times, errors = threading.Event(), {}, []

    def slow_revision():
        try:
            with transaction.atomic():
                assigning.hold_for_rating(Assignment.objects.get(pk=a.pk))
                held.set()
                time.sleep(0.5)
                AxisScore.objects.filter(rating__assignment=a, axis__key="flow").update(value=1)
            times["saved"] = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    def admin_closes():
        held.wait(10)
        try:
            close_campaign(make_user(Role.ADMIN), Campaign.objects.get(pk=campaign.pk))
            times["closed"] = time.monotonic()
        finally:
            connection.close()

    threads = [threading.Thread(target=slow_revision), threading.Thread(target=admin_closes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert times["closed"] >= times["saved"]
    assert AxisScore.objects.get(rating__assignment=a, axis__key="flow").value == 1.0
    a.refresh_from_db()
    with pytest.raises(services.RatingError, match="closed"):
        services.save_rating_draft(a, r1, changes({"value__flow": "2"}))


@pytest.mark.django_db
def test_completeness_is_checked_under_the_submit_lock(monkeypatch):
    """The draft was complete when the page was loaded; another tab clears a score just before this
    submission takes its locks: the check, made after the locks, sees the cleared score."""
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(a, r1, changes(full_values(campaign)))
    real_hold = assigning.hold_and_read
    calls = []

    def hold_after_another_tab_cleared_a_score(assignment, read):
        calls.append(assignment.pk)
        AxisScore.objects.filter(rating__assignment=assignment, axis__key="flow").update(value=None)
        return real_hold(assignment, read)

    monkeypatch.setattr(assigning, "hold_and_read", hold_after_another_tab_cleared_a_score)
    with pytest.raises(services.SubmitRejected) as exc:
        services.submit_rating(a, r1, changes({}))
    assert set(exc.value.errors) == {"value__flow"}
    assert len(calls) == 1  # one transaction: the save and the submission under the same locks
    assert Rating.objects.get(assignment=a).status == "draft"
    assert Assignment.objects.get(pk=a.pk).status == "active"


@pytest.mark.django_db
def test_a_rater_removed_from_the_campaign_can_no_longer_save_submit_or_revise():
    campaign, (r1, r2, r3) = build_campaign(n_items=3, n_raters=3, k=2)
    admin = make_user(Role.ADMIN)
    a = assigning.next_assignment(campaign, r1)
    b = assigning.next_assignment(campaign, r2)
    services.submit_rating(b, r2, changes(full_values(campaign)))
    update_campaign(admin, campaign, name=campaign.name, description="", raters=[r3, make_user(Role.RATER)],
                    lease_minutes=campaign.lease_minutes)
    for assignment, rater in ((a, r1), (b, r2)):
        assignment.refresh_from_db()
        with pytest.raises(services.RatingError, match="no longer a rater"):
            services.save_rating_draft(assignment, rater, changes({"value__flow": "1"}))
        with pytest.raises(services.RatingError, match="no longer a rater"):
            services.submit_rating(assignment, rater, changes(full_values(campaign)))
        assert "no longer a rater" in services.record_heartbeat(assignment, 5).problem
    client = Client()
    client.force_login(r2)
    page = client.get(reverse("rating:rate", args=[b.pk])).content.decode()
    assert "no longer a rater" in page and 'data-editable="0"' in page
    assert AxisScore.objects.get(rating__assignment=b, axis__key="flow").value == 4.0


@pytest.mark.django_db
def test_a_save_a_refused_submission_and_a_submission_each_restart_the_lease():
    """An edit is activity, whichever way it is sent: the save, an incomplete submission (the lease is
    restarted on its own there) and a complete one (with the submission's own update of the row)."""
    campaign, (r1, _) = build_campaign(n_items=2, n_raters=2, k=2, lease_minutes=30)
    a = assigning.next_assignment(campaign, r1)
    for send in (lambda: services.save_rating_draft(a, r1, changes({"value__flow": "3"})),
                 lambda: services.submit_rating(a, r1, changes({"value__flow": "2"})),
                 lambda: services.submit_rating(a, r1, changes(full_values(campaign)))):
        _age(a, lease_expires_at=timezone.now() + timedelta(minutes=1))
        before = timezone.now()
        try:
            send()
        except services.SubmitRejected as exc:
            assert "value__severity" in exc.errors and "value__flow" not in exc.errors
        a.refresh_from_db()
        assert a.lease_expires_at >= before + timedelta(minutes=30) and a.last_active_at >= before
    assert a.status == "submitted"
    assert AxisScore.objects.get(rating__assignment=a, axis__key="flow").value == 4.0


def _wait_until_someone_waits_for_a_lock(seconds=10):
    """From the calling thread's connection: until another backend of this database waits for a lock (here
    the edit behind the item's row lock)."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                           " AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("nobody waited for the item's lock")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("edit", ["submit", "save"])
def test_a_lease_that_lapses_while_the_edit_waits_for_the_item_is_judged_after_the_wait(edit):
    """The rater's edit starts a moment before their lease runs out, and waits for the item's row lock, held by
    another rater's next. That next counts the places once the lease has run out, so it takes the place. The
    edit, judged from after the wait, finds the place taken: refused, the draft kept, never two occupants
    with k = 1. (Judged from before the wait, it saw a live lease and submitted over the other rater.)"""
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(a, r1, changes(full_values(campaign)))
    lapses_at = timezone.now() + timedelta(seconds=2)  # the edit below starts well before
    a = _age(a, lease_expires_at=lapses_at)
    holding, taken, errors = threading.Event(), [], []

    def next_of_the_other_rater():
        try:
            with transaction.atomic():
                assigning.lock_item(a.item_id)  # as _try_item's claim does, held until its commit
                holding.set()
                _wait_until_someone_waits_for_a_lock()
                time.sleep(max(0.0, (lapses_at - timezone.now()).total_seconds()) + 0.05)
                taken.append(assigning._try_item(Campaign.objects.get(pk=campaign.pk), r2, a.item_id, wait=True))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    other = threading.Thread(target=next_of_the_other_rater)
    other.start()
    assert holding.wait(10)
    try:
        with pytest.raises(services.RatingError, match="went to another rater"):
            if edit == "submit":
                services.submit_rating(Assignment.objects.get(pk=a.pk), r1, changes({}))
            else:
                services.save_rating_draft(Assignment.objects.get(pk=a.pk), r1, changes({"value__flow": "1"}))
    finally:
        other.join(30)
    assert not errors, errors
    assert taken and taken[0].rater_id == r2.pk
    now = timezone.now()
    assert assigning.occupancy(a.item_id, now) == 1
    assert Assignment.objects.get(pk=a.pk).status == "active" and Rating.objects.get(assignment=a).status == "draft"
    assert AxisScore.objects.get(rating__assignment=a, axis__key="flow").value == float(
        full_values(campaign)["value__flow"])
