"""PairShare, the per-pair counts that next's pair budget reads, kept by a database trigger (migration 0007).

Every check compares the rows with the same count computed the slow way from the assignments, after each kind
of writer: next, submit, skip, the lease reaper, an admin's release, closing a campaign, taking a lapsed
conversation back, direct ORM writes, multi-row statements on one item, a moved row and deletes."""
import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from rating import assignment as assigning
from rating import services
from rating.models import Assignment, PairShare, Rating
from tests.factories import make_assignment, make_user
from tests.rating.rating_support import (
    assert_pair_shares_kept,
    build_campaign,
    full_values,
    shared_from_rows,
    shared_the_slow_way,
)


def _state_shared(campaign, rater) -> dict[int, int]:
    """What next's state read returns as the rater's shared counts ('s' rows)."""
    campaign_levels = [(0, assigning.FRESH_BATCH)] + [(n, assigning.STARTED_WINDOW) for n in range(1, 3)]
    with connection.cursor() as cursor:
        cursor.execute(assigning._state_sql(campaign_levels),
                       {"campaign": campaign.pk, "rater": rater.pk, "start": 0, "exclude": [],
                        "now": timezone.now()})
        return {row[1]: row[2] for row in cursor.fetchall() if row[0] == "s"}


@pytest.mark.django_db
def test_every_writer_keeps_the_pair_shares():
    from rating.campaigns import close_campaign

    campaign, (r1, r2, r3, r4) = build_campaign(n_items=6, n_raters=4, k=3)
    values = services.changes_from_post(full_values(campaign))
    a1 = assigning.next_assignment(campaign, r1)
    b2 = make_assignment(campaign, r2, a1.item)  # written directly, as a fixture or the admin would
    c3 = make_assignment(campaign, r3, a1.item)
    assert_pair_shares_kept(campaign)
    assert shared_the_slow_way(campaign)[(r1.pk, r2.pk)] == 1
    services.submit_rating(a1, r1, values)  # active -> submitted: still occupying, nothing changes
    assert_pair_shares_kept(campaign)
    assigning.skip_assignment(b2, r2, "Outside my specialty.")  # leaves: r2 no longer shares it
    assert_pair_shares_kept(campaign)
    Assignment.objects.filter(pk=c3.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assigning.reclaim_expired_assignments(campaign) == 1  # the reaper releases r3's lease
    assert_pair_shares_kept(campaign)
    # r3 takes the lapsed conversation back (released -> active, the row reused).
    back = assigning.hold_for_rating(Assignment.objects.get(pk=c3.pk))
    assert back.status == "active"
    assert_pair_shares_kept(campaign)
    d4 = assigning.next_assignment(campaign, r4)
    assert_pair_shares_kept(campaign)
    assert assigning.release_assignment(d4, make_user(Role.ADMIN))
    assert_pair_shares_kept(campaign)
    assigning.next_assignment(campaign, r2)
    close_campaign(make_user(Role.ADMIN), campaign)  # releases every active lease in one bulk UPDATE
    assert_pair_shares_kept(campaign)
    assert not Assignment.objects.filter(campaign=campaign, status="active").exists()


@pytest.mark.django_db
def test_one_statement_changing_several_occupants_of_one_item():
    """A bulk UPDATE releasing two of an item's three occupants, then a bulk INSERT of two at once: each row
    must see the rows changed before it in the same statement (an after-row trigger would not)."""
    campaign, raters = build_campaign(n_items=3, n_raters=4, k=3)
    item = campaign.items.first()
    rows = [make_assignment(campaign, r, item) for r in raters[:3]]
    assert_pair_shares_kept(campaign)
    Assignment.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(status="released")
    assert_pair_shares_kept(campaign)
    Rating.objects.filter(assignment__in=rows[:2]).delete()
    Assignment.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).delete()
    now = timezone.now()
    Assignment.objects.bulk_create([
        Assignment(campaign=campaign, item=item, rater=r, status="active", lease_expires_at=now + timedelta(hours=1))
        for r in raters[:2]] + [
        Assignment(campaign=campaign, item=item, rater=raters[3], status="submitted")])
    assert_pair_shares_kept(campaign)
    assert shared_the_slow_way(campaign)[(raters[0].pk, raters[3].pk)] == 1


@pytest.mark.django_db
def test_moving_and_deleting_rows():
    campaign, (r1, r2, r3) = build_campaign(n_items=3, n_raters=3, k=3)
    first, second = campaign.items.all()[:2]
    a = make_assignment(campaign, r1, first)
    make_assignment(campaign, r2, first)
    make_assignment(campaign, r3, second)
    Assignment.objects.filter(pk=a.pk).update(item=second)  # r1 now shares with r3, not r2
    assert_pair_shares_kept(campaign)
    assert shared_the_slow_way(campaign)[(r1.pk, r3.pk)] == 1
    a.rating.delete()
    Assignment.objects.filter(pk=a.pk).delete()
    assert_pair_shares_kept(campaign)


@pytest.mark.django_db
def test_next_reads_what_each_pair_shares_from_the_rows():
    """The state read's 's' rows: for each rater on a started candidate, the conversations shared with them;
    for the rater, how many it holds. Partners on no candidate are not read (r2 for r1: what they share,
    items 0 and 1, is r1's own)."""
    campaign, (r1, r2, r3) = build_campaign(n_items=5, n_raters=3, k=3)
    items = list(campaign.items.all())
    for item in items[:3]:
        make_assignment(campaign, r1, item, status="submitted")
    for item in items[:2]:
        make_assignment(campaign, r2, item)
    make_assignment(campaign, r3, items[2])
    make_assignment(campaign, r3, items[3])  # started, so the state read ranks started items
    assert _state_shared(campaign, r1) == {r1.pk: 3, r3.pk: 1}
    assert _state_shared(campaign, r3) == {r3.pk: 2, r1.pk: 1}  # r2 is on items 0 and 1 too: they share none
    assert shared_the_slow_way(campaign)[(r1.pk, r2.pk)] == 2


@pytest.mark.django_db
def test_the_migration_backfill_gives_the_trigger_counts():
    campaign, raters = build_campaign(n_items=8, n_raters=4, k=3)
    for rater in raters:
        for _ in range(4):
            a = assigning.next_assignment(campaign, rater)
            if a is None:
                break
            services.submit_rating(a, rater, services.changes_from_post(full_values(campaign)))
    kept = shared_from_rows(campaign)
    migration = importlib.import_module("rating.migrations.0007_pairshare")
    PairShare.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL_PAIR_SHARES)
    assert shared_from_rows(campaign) == kept == shared_the_slow_way(campaign)
