"""Assignment under concurrency (real commits, one connection per thread), leases, skip and order."""
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditEvent
from rating import assignment as assigning
from rating import services
from rating.models import Assignment, Campaign, CampaignItem, Rating
from rating.tasks import reclaim_expired_leases
from tests.factories import make_assignment
from tests.rating.rating_support import assert_pair_shares_kept, build_campaign, full_values


def _occupancy_by_item(campaign_id):
    now = timezone.now()
    rows = (
        Assignment.objects.filter(campaign_id=campaign_id)
        .filter(Q(status="submitted") | Q(status="active", lease_expires_at__gt=now))
        .values("item_id").annotate(n=Count("id"))
    )
    return {r["item_id"]: r["n"] for r in rows}


def _assert_occupants_kept(campaign):
    """CampaignItem.occupants, which chooses candidates, equals each item's SUBMITTED + ACTIVE rows."""
    items = CampaignItem.objects.filter(campaign=campaign)
    real = dict(items.annotate(n=Count("assignments", filter=Q(assignments__status__in=["active", "submitted"])))
                .values_list("pk", "n"))
    assert dict(items.values_list("pk", "occupants")) == real
    assert_pair_shares_kept(campaign)  # and the pair counts the pair budget reads


def _monitor(campaign_id, start, done, max_seen):
    """A thread body sampling the real occupancy while workers run: the cap must hold at every moment."""
    start.wait()
    try:
        while not done.is_set():
            max_seen["n"] = max([max_seen["n"], *_occupancy_by_item(campaign_id).values()])
            time.sleep(0.004)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_never_exceed_k_and_every_item_ends_with_k_ratings():
    campaign, raters = build_campaign(n_items=15, n_raters=5, k=2)
    values = full_values(campaign)
    errors, handed_out = [], Counter()
    done = threading.Event()
    max_seen = {"n": 0}
    start = threading.Barrier(21)

    def worker(i):
        rater = raters[i % len(raters)]  # four threads per rater: like a rater with several tabs open
        rng = random.Random(i)
        start.wait()
        try:
            c = Campaign.objects.get(pk=campaign.pk)
            while True:
                a = assigning.next_assignment(c, rater)
                if a is None:
                    break
                handed_out[(a.item_id, rater.pk)] += 1
                time.sleep(rng.random() * 0.01)
                try:
                    services.submit_rating(a, rater, services.changes_from_post(values))
                except services.RatingError as exc:  # pragma: no cover - would be a bug
                    errors.append(repr(exc))
                    break
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    mon = threading.Thread(target=_monitor, args=(campaign.pk, start, done, max_seen))
    for t in [*threads, mon]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    mon.join(timeout=10)

    assert not errors, errors
    assert max_seen["n"] <= 2, f"an item had {max_seen['n']} occupants at once"
    per_item = Counter(
        Assignment.objects.filter(campaign=campaign, status="submitted").values_list("item_id", flat=True)
    )
    assert set(per_item) == set(campaign.items.values_list("pk", flat=True)), "a conversation was lost"
    assert set(per_item.values()) == {2}, per_item
    dupes = Assignment.objects.values("item_id", "rater_id").annotate(n=Count("id")).filter(n__gt=1)
    assert not dupes.exists()
    assert not Assignment.objects.filter(campaign=campaign, status="active").exists()
    # Every submitted assignment has its submitted, complete rating.
    for a in Assignment.objects.filter(campaign=campaign).select_related("rating"):
        assert a.rating.status == Rating.Status.SUBMITTED
        assert a.rating.scores.filter(value__isnull=False).count() == len(values)
    # Several threads of one rater may be handed the same (resumed) assignment, never another rater's.
    assert sum(1 for _ in handed_out) == Assignment.objects.filter(campaign=campaign).count()
    _assert_occupants_kept(campaign)


@pytest.mark.django_db
def test_every_writer_keeps_the_occupant_count_that_chooses_candidates():
    from accounts.roles import Role
    from rating.campaigns import close_campaign
    from tests.factories import make_user

    campaign, (r1, r2, r3) = build_campaign(n_items=4, n_raters=3, k=2)
    a = assigning.next_assignment(campaign, r1)
    b = make_assignment(campaign, r2, a.item)  # written directly, as a fixture or the admin would
    _assert_occupants_kept(campaign)
    assert CampaignItem.objects.get(pk=a.item_id).occupants == 2
    services.submit_rating(a, r1, services.changes_from_post(full_values(campaign)))  # active -> submitted
    assigning.skip_assignment(b, r2, "Outside my specialty.")
    _assert_occupants_kept(campaign)
    c = assigning.next_assignment(campaign, r3)
    Assignment.objects.filter(pk=c.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assigning.reclaim_expired_assignments(campaign) == 1
    _assert_occupants_kept(campaign)
    # A save() of the item writes every column, a stale count included: the database keeps its own.
    item = CampaignItem.objects.get(pk=a.item_id)
    item.occupants = 0
    item.save()
    _assert_occupants_kept(campaign)
    assigning.next_assignment(campaign, r2)
    close_campaign(make_user(Role.ADMIN), campaign)  # releases the active lease in one bulk UPDATE
    _assert_occupants_kept(campaign)
    assert not Assignment.objects.filter(campaign=campaign, status="active").exists()


@pytest.mark.django_db(transaction=True)
def test_racing_for_the_last_places_of_one_item():
    """Ten raters ask at once for the only conversation (k = 2): exactly two get it, the others are told
    there is nothing (after waiting for the locks, not merely because a row was locked)."""
    campaign, raters = build_campaign(n_items=1, n_raters=10, k=2)
    got, errors = [], []
    start = threading.Barrier(10)

    def worker(rater):
        start.wait()
        try:
            a = assigning.next_assignment(Campaign.objects.get(pk=campaign.pk), rater)
            if a is not None:
                got.append(a.pk)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(got) == 2
    assert Assignment.objects.filter(campaign=campaign, status="active").count() == 2


@pytest.mark.django_db
def test_database_refuses_a_second_row_for_one_rater_on_one_item(small_campaign):
    campaign, raters = small_campaign
    a = make_assignment(campaign, raters[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(campaign=campaign, item=a.item, rater=raters[0], status="released")


@pytest.mark.django_db
def test_resume_returns_the_same_assignment_and_renews_the_lease(small_campaign):
    campaign, (r1, *_) = small_campaign
    a = assigning.next_assignment(campaign, r1)
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    again = assigning.next_assignment(campaign, r1)
    assert again.pk == a.pk
    assert again.lease_expires_at > timezone.now() + timedelta(minutes=59)
    assert Rating.objects.filter(assignment=a, rubric=campaign.rubric).exists()


@pytest.mark.django_db
def test_depth_first_fills_started_items_before_opening_new_ones():
    campaign, raters = build_campaign(n_items=10, n_raters=4, k=3)
    first = assigning.next_assignment(campaign, raters[0])
    second = assigning.next_assignment(campaign, raters[1])
    third = assigning.next_assignment(campaign, raters[2])
    assert first.item_id == second.item_id == third.item_id
    fourth = assigning.next_assignment(campaign, raters[3])
    assert fourth.item_id != first.item_id  # the first item is full (k = 3)


@pytest.mark.django_db
def test_pair_balancing_prefers_partners_shared_least():
    """Rater C can complete an item started by A (with whom C already shares two) or by B (shares none):
    C gets B's, so the pair (B, C) gets something to compare."""
    campaign, (a, b, c) = build_campaign(n_items=6, n_raters=3, k=2)
    items = list(campaign.items.order_by("pk"))
    for item in items[:2]:
        for rater in (a, c):
            assignment = make_assignment(campaign, rater, item)
            Assignment.objects.filter(pk=assignment.pk).update(status="submitted", submitted_at=timezone.now())
    make_assignment(campaign, a, items[2])
    make_assignment(campaign, b, items[3])
    got = assigning.next_assignment(campaign, c)
    assert got.item_id == items[3].pk


@pytest.mark.django_db
def test_order_is_random_per_rater_but_reproducible():
    campaign, raters = build_campaign(n_items=12, n_raters=6, k=1)
    shuffle = dict(campaign.items.values_list("pk", "shuffle"))
    all_items = set(shuffle)

    def place(rater):
        return lambda pk: (assigning.order_key(campaign.pk, rater.pseudonym, shuffle[pk]), pk)

    firsts = []
    for rater in raters:
        # k = 1: fresh items only, in the rater's own order (skipping ones taken by earlier raters).
        taken = set(Assignment.objects.values_list("item_id", flat=True))
        expected = min(all_items - taken, key=place(rater))
        # Asked twice from the same state (the first answer rolled back): the same conversation.
        sid = transaction.savepoint()
        first = assigning.next_assignment(campaign, rater).item_id
        transaction.savepoint_rollback(sid)
        again = assigning.next_assignment(campaign, rater).item_id
        assert first == again == expected
        firsts.append(min(all_items, key=place(rater)))
    assert len(set(firsts)) > 1, "every rater would start on the same conversation"


@pytest.mark.django_db
def test_expired_lease_is_reclaimed_and_goes_to_another_rater():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    assert assigning.next_assignment(campaign, r2) is None  # k = 1 and r1 holds it
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    b = assigning.next_assignment(campaign, r2)  # reclaims lazily, then hands it over
    assert b is not None and b.item_id == a.item_id
    a.refresh_from_db()
    assert a.status == Assignment.Status.RELEASED
    assert AuditEvent.objects.filter(action="assignment.lease_expired", object_id=str(a.pk)).exists()
    # r1 comes back: the place is gone, the draft is kept, and the rater is told why.
    services.save_rating_draft(b, r2, services.changes_from_post({"value__flow": "3"}))
    with pytest.raises(services.RatingError, match="went to another rater"):
        services.save_rating_draft(a, r1, services.changes_from_post({"value__flow": "2"}))
    assert Rating.objects.filter(assignment=a).exists()


@pytest.mark.django_db
def test_periodic_reclaim_task_and_rater_gets_own_row_back():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(a, r1, services.changes_from_post({"value__flow": "4", "overall_comment": "kept"}))
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    assert reclaim_expired_leases() == 1
    assert reclaim_expired_leases() == 0
    a.refresh_from_db()
    assert a.status == Assignment.Status.RELEASED
    again = assigning.next_assignment(campaign, r1)  # nobody took it: the same row comes back
    assert again.pk == a.pk and again.status == Assignment.Status.ACTIVE
    assert Assignment.objects.filter(item=a.item, rater=r1).count() == 1
    page_rating = Rating.objects.get(assignment=a)
    assert page_rating.overall_comment == "kept"


@pytest.mark.django_db
def test_submit_after_the_place_went_to_someone_else_is_refused():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    values = services.changes_from_post(full_values(campaign))
    services.save_rating_draft(a, r1, values)
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    b = assigning.next_assignment(campaign, r2)
    services.submit_rating(b, r2, values)
    a.refresh_from_db()
    with pytest.raises(services.RatingError):
        services.submit_rating(a, r1, values)
    assert Assignment.objects.filter(item=a.item, status="submitted").count() == 1


@pytest.mark.django_db
def test_skip_needs_a_reason_and_the_conversation_goes_to_another_rater():
    campaign, (r1, r2) = build_campaign(n_items=1, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    with pytest.raises(assigning.AssignmentError, match="why"):
        assigning.skip_assignment(a, r1, "  ")
    assigning.skip_assignment(a, r1, "I know this patient's case.")
    a.refresh_from_db()
    assert a.status == Assignment.Status.SKIPPED and a.skip_reason
    assert assigning.next_assignment(campaign, r1) is None  # never handed back to the one who skipped it
    b = assigning.next_assignment(campaign, r2)
    assert b is not None and b.item_id == a.item_id
    event = AuditEvent.objects.get(action="assignment.skip", object_id=str(a.pk))
    assert event.data["new"]["reason"] == "I know this patient's case."


def _handout_sequence(campaign, raters, rounds=4):
    """Raters take turns asking for the next conversation and submitting it; the item ids they get."""
    sequence = []
    for _ in range(rounds):
        for rater in raters:
            a = assigning.next_assignment(campaign, rater)
            if a is None:
                continue
            sequence.append((rater.pk, a.item_id))
            Assignment.objects.filter(pk=a.pk).update(status="submitted", submitted_at=timezone.now())
    return sequence


@pytest.mark.django_db
def test_gold_items_are_served_like_the_others():
    """The same raters in the same state get exactly the same conversations whether some are gold or not."""
    campaign, raters = build_campaign(n_items=8, n_raters=3, k=2)
    sid = transaction.savepoint()
    plain = _handout_sequence(campaign, raters)
    transaction.savepoint_rollback(sid)
    assert not Assignment.objects.exists()
    gold_ids = list(campaign.items.order_by("pk").values_list("pk", flat=True)[::2])
    CampaignItem.objects.filter(pk__in=gold_ids).update(is_gold=True, gold_scores={"flow": 3})
    with_gold = _handout_sequence(campaign, raters)
    assert with_gold == plain
    assert {item for _, item in with_gold} & set(gold_ids), "gold items were handed out too"


@pytest.mark.django_db
def test_closed_or_foreign_campaign_gives_nothing(small_campaign):
    campaign, (r1, *_) = small_campaign
    from accounts.roles import Role
    from tests.factories import make_user

    stranger = make_user(Role.RATER)
    with pytest.raises(assigning.NotInCampaign):
        assigning.next_assignment(campaign, stranger)
    Campaign.objects.filter(pk=campaign.pk).update(status="closed")
    campaign.refresh_from_db()
    with pytest.raises(assigning.CampaignNotOpen):
        assigning.next_assignment(campaign, r1)


@pytest.mark.django_db
def test_a_returning_rater_gets_their_own_lapsed_draft_back_first():
    campaign, (r1, r2) = build_campaign(n_items=4, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, r1)
    services.save_rating_draft(a, r1, services.changes_from_post({"overall_comment": "half done"}))
    Assignment.objects.filter(pk=a.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    assigning.reclaim_expired_assignments(campaign)
    assigning.next_assignment(campaign, r2)  # r2 starts something (maybe the same conversation)
    again = assigning.next_assignment(campaign, r1)
    assert again.pk == a.pk and again.status == "active"
    assert Rating.objects.get(assignment=a).overall_comment == "half done"


@pytest.mark.django_db(transaction=True)
def test_leases_expiring_mid_run_never_push_an_item_past_k():
    """Threads of several raters take and submit conversations while a chaos thread keeps expiring random
    leases (abandoned tabs): lapsed drafts are taken back or lost, never pushing a conversation past k."""
    campaign, raters = build_campaign(n_items=12, n_raters=4, k=2)
    values = full_values(campaign)
    errors, lost = [], []
    done = threading.Event()
    max_seen, expired = {"n": 0}, {"n": 0}
    start = threading.Barrier(10)

    def chaos():
        rng = random.Random(7)
        start.wait()
        try:
            while not done.is_set():
                active = list(Assignment.objects.filter(campaign=campaign, status="active")
                              .values_list("pk", flat=True))
                if active:
                    expired["n"] += Assignment.objects.filter(pk=rng.choice(active), status="active").update(
                        lease_expires_at=timezone.now() - timedelta(seconds=1))
                time.sleep(0.01)
        finally:
            connection.close()

    def worker(i):
        rater = raters[i % len(raters)]
        rng = random.Random(i)
        start.wait()
        try:
            c = Campaign.objects.get(pk=campaign.pk)
            for _ in range(200):
                a = assigning.next_assignment(c, rater)
                if a is None:
                    break
                time.sleep(rng.random() * 0.02)  # the chaos thread may expire the lease meanwhile
                try:
                    services.submit_rating(a, rater, services.changes_from_post(values))
                except services.RatingError as exc:
                    lost.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    helpers = [threading.Thread(target=_monitor, args=(campaign.pk, start, done, max_seen)),
               threading.Thread(target=chaos)]
    for t in [*threads, *helpers]:
        t.start()
    for t in threads:
        t.join(timeout=180)
    done.set()
    for t in helpers:
        t.join(timeout=10)

    assert not errors, errors
    assert max_seen["n"] <= 2, f"an item had {max_seen['n']} occupants at once"
    # What a rater may be told when a lease lapsed under them; nothing else goes wrong.
    assert all("another rater" in m or "rating another one" in m for m in lost), lost
    # The chaos really struck: leases expired under raters, and were reclaimed or taken back.
    assert expired["n"] > 5
    assert AuditEvent.objects.filter(action__in=["assignment.lease_expired", "assignment.reacquire"]).exists()
    per_item = Counter(Assignment.objects.filter(campaign=campaign, status="submitted")
                       .values_list("item_id", flat=True))
    assert set(per_item) == set(campaign.items.values_list("pk", flat=True)) and set(per_item.values()) == {2}
    assert not Assignment.objects.values("item_id", "rater_id").annotate(n=Count("id")).filter(n__gt=1).exists()


@pytest.mark.django_db
def test_a_large_k_is_served_whatever_k_the_process_saw_before():
    """The state read walks the fullness levels of k as last seen by the process (a hint; the first call
    for a campaign assumes the model's default): a larger k is walked on top, then read in one statement."""
    campaign, raters = build_campaign(n_items=2, n_raters=13, k=12)
    assigning._k_hint.pop(campaign.pk, None)
    taken = [assigning.next_assignment(campaign, r) for r in raters]
    assert assigning._k_hint[campaign.pk] == 12
    by_item = Counter(a.item_id for a in taken if a is not None)
    # Depth first: the first item fills to k before the second opens; the 13th rater starts the second.
    assert sorted(by_item.values()) == [1, 12]
