"""Handing campaign conversations to raters: k raters per conversation, leases, skip and reclaim.

Safety under concurrency
------------------------
* A conversation (CampaignItem) is *occupied* by an assignment that is SUBMITTED, or ACTIVE with an
  unexpired lease. Never more than ``campaign.overlap_k`` assignments occupy one item.
* Every operation that can add an occupant takes the item's row lock first (``SELECT ... FOR UPDATE``,
  with ``SKIP LOCKED`` when choosing among candidates) and counts the occupants AGAIN after the lock.
  Candidates are chosen by an unlocked read of ``CampaignItem.occupants`` (a count the database keeps
  with a trigger), which races by design (another rater may take the last slot in between); the recount
  under the lock is what guarantees the cap.
* Every change of an assignment's status takes its item's row lock before the assignment's (the trigger
  writes the item's count, so the other order could deadlock with a chooser holding the item).
* Whether a lease is live is judged with the time after the item's lock is held, never a time read before
  waiting for it: meanwhile the lease may have run out and another rater's next, holding that lock, may
  have counted its place as free (`hold_and_read`, `_RENEW_SQL`).
* The database's unique (item, rater) constraint makes a second row for one rater on one item
  impossible; a rater who gets an item back (after their lease lapsed) reuses their own row.
* One rater's concurrent requests (two tabs) are serialised by a transaction-scoped advisory lock on
  (campaign, rater); both ways of getting a lease (``next_assignment`` and taking a lapsed one back in
  ``hold_for_rating``) take it and check for the rater's other live lease, so a rater never holds two
  active leases in one campaign.
* Whatever writes a rating or a lease re-reads the campaign row FOR SHARE inside its transaction
  (``lock_open_campaign``): closing a campaign or removing a rater (FOR NO KEY UPDATE on that row)
  waits for those transactions, so nothing is submitted or revised after the campaign closed.

Order and overlap: what the design guarantees about pairs of raters
-------------------------------------------------------------------
Agreement needs conversations rated by both raters of a pair. With N conversations, overlap k and R
raters on the roster, every rater's share is about N * k / R ratings and the average pair shares
E = N * k * (k - 1) / (R * (R - 1)) conversations. Pure depth-first handout (complete what others
started before opening anything new) keeps few conversations half-rated, but pairs whoever happens to
work at the same time: raters on different shifts would complete each other's conversations only, and
two shifts would share nothing at all. Four rules decide which conversation a rater Y gets next:

1. *A per-partner budget.* Y is offered a started conversation (occupied by 1..k-1 others) only if Y
   shares fewer than ``n_Y * (k - 1) / (R - 1) + PAIR_SLACK`` conversations with each of its raters,
   where n_Y is how many Y has taken so far: the share of Y's work each partner gets if Y's work is
   spread evenly over the roster, plus a little slack.
2. *Depth first within the budget.* Among those, the fullest first, then the one whose raters Y shares
   least with, so every rating quickly gets its k-1 partners.
3. *Otherwise open a fresh conversation.* When every started conversation is over budget, Y opens a
   new one, which then waits for partners Y has not worked with enough: on shift A that means it waits
   for shift B. Only when nothing fresh is left does Y take over-budget conversations (least shared
   first), so the campaign always finishes.
4. *Randomised but reproducible order.* Every item gets a random position (``CampaignItem.shuffle``)
   when it joins the campaign; each rater walks those positions upwards from their own starting point,
   md5(campaign, rater pseudonym), wrapping around: a different sequence for every rater (no two raters
   contending for the same next row) and the same on every call, so the sequence can be audited.

Cost per request: one query reads the candidates of every rule at once, each an ordered walk of the
(campaign, occupants, shuffle) index from the rater's start that stops after a batch: fresh items are the
occupants = 0 range, started ones the 1..k-1 ranges, so neither the campaign's items nor its assignments
are scanned and the cost does not grow with the campaign. Started items are ranked (rule 2) within the
first STARTED_WINDOW of each fullness in the rater's order, not across every started item of the campaign.
What the rater shares with each partner (rule 1) is read from ``PairShare`` rows, which a database trigger
keeps as assignments start and stop occupying items, not by joining everything the rater has rated, so the
cost does not grow with the rater's own progress either. Those rows count occupancy by status, as
``occupants`` does: a lapsed lease counts until it is reclaimed, and next reclaims lapsed leases first.

What that guarantees: while fresh conversations remain, no pair of raters gets more than its budget
from the rater who completes a conversation, so the k-1 partner places of each rater's work are spread
over the whole roster, including colleagues who have not started yet. It does not promise a hard floor
for every pair: a rater who never comes, or who rates far less than their share, shares less with
everyone (their partners' places were kept for them; the campaign still finishes, with more
conversations left half-rated meanwhile), and with E below about 3 chance dominates. The simulation in
tests/rating/test_rating_overlap.py runs the real code with raters all at once, in two and three shifts
and one after another, each rating their share: the smallest pair overlap stays at least E / 2 (pure
depth-first gives 0 in the shift cases). The campaign page shows the smallest pair overlap so an admin
can see whether agreement is measurable for every pair.

Gold items are served exactly like the others, so raters cannot tell them apart.

Leases
------
A new or resumed assignment holds a lease of ``campaign.lease_minutes``. While the rating page is open
its heartbeat extends a *live* lease, but never past the lease length after the rater's last activity
(an edit, or a beat crediting active time, which the page counts only while it is visible and in use):
a tab left open and idle lets its conversation go like a closed one, and shows as stuck meanwhile. A
beat never takes back a lapsed or released assignment, so an admin's "Release now" stays released.
Expired leases are reclaimed (status RELEASED) by a periodic Celery task and lazily at the start of
every ``next_assignment``; a released item goes to the next rater who asks. A rater whose lease lapsed
gets the item back (reusing their row) when they edit it again (``hold_for_rating``) if a place is
still free and they hold no other live lease in the campaign; otherwise ``LeaseLost`` says why, and
their draft is kept.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from audit.services import record
from core.prepared import Prepared, insert_params, insert_sql

from .models import SHUFFLE_SPACE, Assignment, Campaign, CampaignItem, Rating

# Fresh candidates fetched per round; more rounds follow if all of them are locked or full.
FRESH_BATCH = 20
# Started items considered per fullness (1..k-1 occupants), the first ones in the rater's order (rule 2).
STARTED_WINDOW = 40
# How many conversations a pair may share beyond its even share of the rater's work so far (rule 1 above).
PAIR_SLACK = 1
# How long skip reasons may be.
MAX_REASON_CHARS = 2000


class AssignmentError(Exception):
    """An assignment operation that cannot be done; the message is shown to the user."""


class CampaignNotOpen(AssignmentError):
    pass


class NotInCampaign(AssignmentError):
    pass


class NotYourAssignment(AssignmentError):
    """No assignment by that id for this rater (another rater's, or none): the views answer 404."""


class LeaseLost(AssignmentError):
    pass


def occupying(now) -> Q:
    """Assignments that hold one of an item's k places at time `now`."""
    return Q(status=Assignment.Status.SUBMITTED) | Q(status=Assignment.Status.ACTIVE, lease_expires_at__gt=now)


def holds_place(assignment: Assignment, now) -> bool:
    """The same test as `occupying`, for a row already read."""
    return assignment.status == Assignment.Status.SUBMITTED or (
        assignment.status == Assignment.Status.ACTIVE and assignment.lease_expires_at > now)


def occupancy(item_id: int, now, *, exclude_rater_id=None) -> int:
    qs = Assignment.objects.filter(item_id=item_id).filter(occupying(now))
    if exclude_rater_id is not None:
        qs = qs.exclude(rater_id=exclude_rater_id)
    return qs.count()


def start_position(campaign_id: int, pseudonym: str) -> int:
    """Where the rater's walk through the items' shuffle positions starts (rule 4)."""
    digest = hashlib.md5(f"{campaign_id}:{pseudonym}".encode()).hexdigest()  # noqa: S324 - not security
    return int(digest[:8], 16) % SHUFFLE_SPACE


def order_key(campaign_id: int, pseudonym: str, shuffle: int) -> int:
    """The item's place in the rater's order: its shuffle position, counted from the rater's start."""
    return (shuffle - start_position(campaign_id, pseudonym)) % SHUFFLE_SPACE


def _lease_end(campaign: Campaign, now):
    return now + timedelta(minutes=campaign.lease_minutes)


def _restart_lease(assignment: Assignment, campaign: Campaign, now) -> Assignment:
    """The rater is at work on a live lease (with its item locked): a full lease again from now."""
    assignment.lease_expires_at = _lease_end(campaign, now)
    assignment.last_active_at = now
    assignment.save(update_fields=["lease_expires_at", "last_active_at", "updated_at"])
    return assignment


def check_can_rate(campaign: Campaign) -> None:
    """The quick refusal, from the campaign row the caller has; the roster (and the status again) are
    checked under the campaign's lock by lock_open_campaign."""
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignNotOpen(f"The campaign “{campaign.name}” is {campaign.get_status_display().lower()}.")


def lock_item(item_id: int, *, skip_locked: bool = False) -> CampaignItem | None:
    """Row-lock one campaign item, and only it: no ordering or join, which would make FOR UPDATE lock
    the campaign row too and serialise (even deadlock) every rater of the campaign."""
    qs = CampaignItem.objects.select_for_update(skip_locked=skip_locked, of=("self",), no_key=True).filter(pk=item_id)
    return next(iter(qs.order_by()[:1]), None)


def _lock_rater(campaign_id: int, rater_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [campaign_id, rater_id])


# --- reclaim ---------------------------------------------------------------------------------------


def reclaim_expired_assignments(campaign: Campaign | None = None, *, actor=None, now=None) -> int:
    """Release every ACTIVE assignment whose lease has lapsed; returns how many were released.

    Each row is released by a conditional UPDATE, so a heartbeat that renewed the lease in the meantime
    wins and nothing is released twice."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(status=Assignment.Status.ACTIVE, lease_expires_at__lte=now)
    if campaign is not None:
        expired = expired.filter(campaign=campaign)
    released = 0
    for pk, item_id, lease in expired.order_by().values_list("pk", "item_id", "lease_expires_at")[:5000]:
        with transaction.atomic():
            lock_item(item_id)  # the item first, as everywhere (releasing changes its occupant count)
            changed = Assignment.objects.filter(
                pk=pk, status=Assignment.Status.ACTIVE, lease_expires_at__lte=now
            ).update(status=Assignment.Status.RELEASED, updated_at=now)
            if changed:
                released += 1
                record(actor, "assignment.lease_expired", Assignment(pk=pk),
                       old={"status": "active", "lease_expires_at": lease.isoformat()}, new={"status": "released"})
    return released


def release_assignment(assignment: Assignment, actor, reason: str = "released by an admin") -> bool:
    """Free an active assignment now (e.g. a stuck lease of a rater who went home). The draft stays."""
    with transaction.atomic():
        lock_item(assignment.item_id)
        changed = Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.RELEASED, updated_at=timezone.now()
        )
        if changed:
            record(actor, "assignment.release", assignment, old={"status": "active"},
                   new={"status": "released", "reason": reason})
    return bool(changed)


# --- next ------------------------------------------------------------------------------------------


def _walk_sql(levels: list[tuple[int, int]]) -> str:
    """Items of the campaign with `occupants` = n, for each (n, limit) in `levels`: from the rater's start
    position up and, for the wrap-around, from the bottom, `limit` of each; items the rater has a row on
    (other than one released by a lapsed lease) and those in `exclude` are left out. Every branch is an
    ordered range scan of the (campaign, occupants, shuffle) index that stops at its LIMIT."""
    return " UNION ALL ".join(_WALK_BRANCH.format(n=int(n), op=op, limit=int(limit))
                              for n, limit in levels for op in (">=", "<"))


_WALK_BRANCH = (
    "(SELECT i.id, i.occupants, i.shuffle FROM rating_campaignitem i"
    " WHERE i.campaign_id = %(campaign)s AND i.occupants = {n} AND i.shuffle {op} %(start)s"
    " AND NOT (i.id = ANY(%(exclude)s)) AND NOT EXISTS (SELECT 1 FROM rating_assignment a"
    " WHERE a.item_id = i.id AND a.rater_id = %(rater)s AND a.status <> 'released')"
    " ORDER BY i.shuffle, i.id LIMIT {limit})"
)


def _found(rows, start: int, levels: list[tuple[int, int]]) -> dict[int, list[int]]:
    """(id, occupants, shuffle) rows of a walk: item ids by occupant count, each in the rater's own order."""
    found: dict[int, list[int]] = {}
    for item_id, occupants, _ in sorted(rows, key=lambda r: ((r[2] - start) % SHUFFLE_SPACE, r[0])):
        found.setdefault(occupants, []).append(item_id)
    limits = dict(levels)
    return {n: ids[:limits[n]] for n, ids in found.items()}


def _walk(campaign: Campaign, rater, levels: list[tuple[int, int]], exclude=()) -> dict[int, list[int]]:
    """Run `_walk_sql`: item ids by occupant count, each list in the rater's own order (rule 4)."""
    start = start_position(campaign.pk, rater.pseudonym)
    with connection.cursor() as cursor:
        cursor.execute(_walk_sql(levels), {"campaign": campaign.pk, "start": start, "rater": rater.pk,
                                           "exclude": list(exclude)})
        return _found(cursor.fetchall(), start, levels)


# (partner, shared) rows of rating_pairshare (the trigger of migration 0007 keeps it) for the rater and the raters
# of `o` (a CTE of (item_id, rater_id): the occupants of the candidates being ranked), all `_rank_started`
# reads: what a pair shares is the sum of its two raters' rows, and (rater, rater) is how many the rater
# occupies. Two index scans that stop at those partners, so the rows do not grow with the roster or with how
# much the rater has rated.
_PARTNERS_OF_O = "ARRAY(SELECT rater_id FROM o UNION SELECT %(rater)s)"
_SHARED_SQL = (
    "SELECT partner_id AS partner, shared FROM rating_pairshare"  # noqa: S608 - fixed text; values are parameters
    f" WHERE campaign_id = %(campaign)s AND rater_id = %(rater)s AND partner_id = ANY({_PARTNERS_OF_O})"
    " UNION ALL SELECT rater_id, shared FROM rating_pairshare"
    f" WHERE campaign_id = %(campaign)s AND partner_id = %(rater)s AND rater_id = ANY({_PARTNERS_OF_O})"
    " AND rater_id <> %(rater)s"
)
_OCCUPYING_SQL = "({t}.status = 'submitted' OR ({t}.status = 'active' AND {t}.lease_expires_at > %(now)s))"
_PARTNERS_SQL = f"""
WITH o AS MATERIALIZED (SELECT o.item_id, o.rater_id FROM rating_assignment o
    WHERE o.item_id = ANY(%(items)s) AND {_OCCUPYING_SQL.format(t="o")})
SELECT 'on', item_id, rater_id FROM o
UNION ALL
SELECT 'shared', p.partner, SUM(p.shared) FROM ({_SHARED_SQL}) p GROUP BY p.partner
"""  # noqa: S608 - fixed text; the values are parameters


def _partners(campaign: Campaign, rater, item_ids: list[int], now) -> tuple[dict[int, list[int]], dict[int, int]]:
    """In one query: the raters occupying each of `item_ids`, and how many conversations `rater` shares with
    each of those raters (from the pair-share rows, `_SHARED_SQL`; the entry for `rater` itself is how many they
    hold)."""
    with connection.cursor() as cursor:
        cursor.execute(_PARTNERS_SQL, {"campaign": campaign.pk, "rater": rater.pk, "now": now, "items": item_ids})
        rows = cursor.fetchall()
    raters_on: dict[int, list[int]] = {}
    for _, item_id, rater_id in (r for r in rows if r[0] == "on"):
        raters_on.setdefault(item_id, []).append(rater_id)
    return raters_on, {r[1]: r[2] for r in rows if r[0] == "shared"}


def _rank_started(campaign: Campaign, rater, started: dict[int, list[int]], roster_size: int,
                  raters_on: dict[int, list[int]], shared: dict[int, int]) -> tuple[list[int], list[int]]:
    """Started items (ids by occupant count, each in the rater's order) as (within the rater's per-partner
    budget, over it), each ranked: fullest first, then least shared with the item's raters, then the
    rater's own order (rules 1 and 2)."""
    if not started:
        return [], []
    position = {item_id: i for ids in started.values() for i, item_id in enumerate(ids)}
    fullness = {item_id: n for n, ids in started.items() for item_id in ids}
    # raters_on and shared as `_partners` reads them (next_assignment_in reads them with the candidates).
    shared = dict(shared)
    taken = shared.pop(rater.pk, 0)
    others = max(1, roster_size - 1)
    budget = taken * (campaign.overlap_k - 1) / others + PAIR_SLACK

    def rank(item_id):
        partners = raters_on.get(item_id, [])
        return -fullness[item_id], sum(shared.get(r, 0) for r in partners), position[item_id], item_id

    within, over = [], []
    for item_id in sorted(position, key=rank):
        partners = raters_on.get(item_id, [])
        (within if all(shared.get(r, 0) < budget for r in partners) else over).append(item_id)
    return within, over


def _activate(campaign: Campaign, item: CampaignItem, rater, existing: Assignment | None, now) -> Assignment:
    lease = _lease_end(campaign, now)
    if existing is None:
        assignment = Assignment.objects.create(
            campaign=campaign, item=item, rater=rater, status=Assignment.Status.ACTIVE,
            lease_expires_at=lease, last_heartbeat_at=now, last_active_at=now, created_at=now,
        )
    else:
        old = {"status": existing.status}
        existing.status = Assignment.Status.ACTIVE
        existing.lease_expires_at = lease
        existing.last_heartbeat_at = existing.last_active_at = now
        existing.save(update_fields=["status", "lease_expires_at", "last_heartbeat_at", "last_active_at",
                                     "updated_at"])
        record(rater, "assignment.reacquire", existing, old=old, new={"status": "active"})
        assignment = existing
    if existing is None:
        Rating.objects.create(assignment=assignment, rubric_id=campaign.rubric_id)
    else:
        Rating.objects.get_or_create(assignment=assignment, defaults={"rubric_id": campaign.rubric_id})
    return assignment


_LOCKED = object()


def _try_sql(skip: str) -> str:
    """`_try_item`'s statements. The third (its snapshot taken after the lock) reads the item's rows and, in
    the same statement, inserts the rater's assignment and its draft rating exactly when `_try_item` would
    take the item: the lock held, no row of the rater's own on it, and fewer than k others holding a
    place (the recount after the lock). The rows it returns are the state it decided on."""
    assignment_insert, _ = insert_sql(Assignment, prefix="a", select_tail=(
        "WHERE current_setting('mhsd.item_locked') = '1'"
        " AND NOT EXISTS (SELECT 1 FROM here WHERE here.rater_id = %(rater)s)"
        " AND (SELECT count(*) FROM here WHERE here.rater_id <> %(rater)s AND (here.status = 'submitted'"
        " OR (here.status = 'active' AND here.lease_expires_at > %(now)s))) < %(k)s"))
    rating_insert, _ = insert_sql(Rating, prefix="r", fixed={"assignment_id": "new_assignment.id"},
                                  select_tail="FROM new_assignment")
    return (
        "SAVEPOINT mhsd_try;"  # noqa: S608 - fixed text; the values are parameters
        " SELECT set_config('mhsd.item_locked', COALESCE((SELECT '1' FROM rating_campaignitem WHERE id = %(item)s"
        f" FOR NO KEY UPDATE{skip}), '0'), true);"
        " WITH here AS (SELECT id, rater_id, status, lease_expires_at FROM rating_assignment WHERE item_id = %(item)s),"
        f" new_assignment AS ({assignment_insert} RETURNING id),"
        f" new_rating AS ({rating_insert} RETURNING assignment_id)"
        " SELECT current_setting('mhsd.item_locked'), (SELECT assignment_id FROM new_rating),"
        " h.id, h.rater_id, h.status, h.lease_expires_at FROM (SELECT 1) one LEFT JOIN here h ON true"
    )


def _try_types() -> dict[str, str]:
    return {"item": "bigint", "rater": "bigint", "now": "timestamptz", "k": "integer",
            **insert_sql(Assignment, prefix="a")[1],
            **insert_sql(Rating, prefix="r", fixed={"assignment_id": ""})[1]}


_TRY_SKIP_LOCKED = Prepared("mhsd_try_skip", _try_sql(" SKIP LOCKED"), _try_types())
_TRY_WAIT = Prepared("mhsd_try_wait", _try_sql(""), _try_types())


def _try_item(campaign: Campaign, rater, item_id: int, *, wait: bool):
    """Inside next_assignment's transaction: lock the item, count its occupants again, and take it if a
    place is free. Returns the assignment, None (full, or not for this rater) or _LOCKED (skipped because
    locked). A rejected item's lock is released at once by rolling back to a savepoint, so a transaction
    never sits on rows it does not want (others would skip them) and never holds one while waiting.

    One round trip when the item is taken (the usual case): the savepoint, the item's row lock, and then,
    in a statement of its own (so its snapshot is taken after the lock: nobody can slip in between), the
    item's rows, which give the count and the rater's own row, and the insert of the assignment and its
    rating if a place is free (`_try_sql`). A rejected item takes a second: the rollback."""
    now = timezone.now()
    assignment = Assignment(campaign=campaign, item_id=item_id, rater=rater, status=Assignment.Status.ACTIVE,
                            lease_expires_at=_lease_end(campaign, now), last_heartbeat_at=now,
                            last_active_at=now, created_at=now)
    rating = Rating(rubric_id=campaign.rubric_id)
    with connection.cursor() as cursor:
        (_TRY_WAIT if wait else _TRY_SKIP_LOCKED).execute(cursor, {
            "item": item_id, "rater": rater.pk, "now": now, "k": campaign.overlap_k,
            **insert_params(Assignment, [assignment], prefix="a"),
            **insert_params(Rating, [rating], prefix="r", fixed={"assignment_id"})})
        rows = cursor.fetchall()
        locked, inserted = rows[0][0] == "1", rows[0][1]
        if inserted is not None:
            assignment.pk = inserted
            assignment._state.adding = False
            return assignment
        rows = [Assignment(pk=pk, item_id=item_id, rater_id=rater_id, status=status, lease_expires_at=lease)
                for _, _, pk, rater_id, status, lease in rows if pk is not None]
        existing = next((a for a in rows if a.rater_id == rater.pk), None)
        if (not locked or existing is None
                or sum(1 for a in rows if a.rater_id != rater.pk and holds_place(a, now)) >= campaign.overlap_k
                or existing.status in (Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED)):
            cursor.execute("ROLLBACK TO SAVEPOINT mhsd_try; RELEASE SAVEPOINT mhsd_try")
            return _LOCKED if not locked and not wait else None
    # A row of the rater's own (released after a lapsed lease) is taken back: rare, so plain ORM. The
    # savepoint stays open until the transaction ends, which releases it.
    existing.refresh_from_db()
    return _activate(campaign, CampaignItem(pk=item_id, campaign_id=campaign.pk), rater, existing, now)


def current_assignment(campaign: Campaign, rater, now=None) -> Assignment | None:
    """The rater's own active, unexpired assignment in the campaign, if any."""
    now = now or timezone.now()
    return (
        Assignment.objects.filter(campaign=campaign, rater=rater, status=Assignment.Status.ACTIVE,
                                  lease_expires_at__gt=now)
        .order_by("created_at").first()
    )


class NoSuchCampaign(CampaignNotOpen):
    """No campaign by that id for this rater to rate in: missing or still a draft (the views answer 404)."""


_STATE_COLUMNS = "tag, a, b, c, d, t1, t2, t3, s1, s2"


def _state_sql(levels: list[tuple[int, int]]) -> str:
    """The statement that reads everything next_assignment needs before choosing, tagged by row:
    'c' the campaign, 'r' its roster (is the rater on it, its size) and whether any lease has lapsed,
    'm' the rater's own active or released rows, 'w' the index walk's candidates (`_walk_sql`), 'o' the
    raters occupying the walked started items and 's' how many conversations the rater shares with each of
    those raters, and how many it holds (`_SHARED_SQL`), read only when there are started candidates to
    rank."""
    occ_o = _OCCUPYING_SQL.format(t="o")
    return f"""
WITH w AS MATERIALIZED ({_walk_sql(levels)}),
started AS (SELECT id FROM w WHERE occupants > 0),
o AS MATERIALIZED (SELECT o.item_id, o.rater_id FROM rating_assignment o
    WHERE o.item_id = ANY(ARRAY(SELECT id FROM started)) AND {occ_o})
SELECT 'c', c.id, c.rubric_id, c.overlap_k, c.lease_minutes, NULL::timestamptz, NULL::timestamptz,
    NULL::timestamptz, c.status, c.name FROM rating_campaign c WHERE c.id = %(campaign)s
UNION ALL
SELECT 'r', EXISTS (SELECT 1 FROM rating_campaign_raters r WHERE r.campaign_id = %(campaign)s
        AND r.user_id = %(rater)s)::int,
    (SELECT COUNT(*) FROM rating_campaign_raters r WHERE r.campaign_id = %(campaign)s),
    EXISTS (SELECT 1 FROM rating_assignment x WHERE x.campaign_id = %(campaign)s AND x.status = 'active'
        AND x.lease_expires_at <= %(now)s)::int, NULL, NULL, NULL, NULL, NULL, NULL
UNION ALL
SELECT 'm', m.id, m.item_id, NULL, NULL, m.lease_expires_at, m.created_at, m.updated_at, m.status, NULL
FROM (SELECT * FROM rating_assignment WHERE campaign_id = %(campaign)s AND rater_id = %(rater)s
    AND status IN ('active', 'released') ORDER BY status, updated_at DESC LIMIT 8) m
UNION ALL
SELECT 'w', id, occupants, shuffle, NULL, NULL, NULL, NULL, NULL, NULL FROM w
UNION ALL
SELECT 'o', item_id, rater_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM o
UNION ALL
SELECT 's', p.partner, SUM(p.shared), NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ({_SHARED_SQL}) p
WHERE EXISTS (SELECT 1 FROM started) GROUP BY p.partner
"""  # noqa: S608 - fixed text and ints; the values are parameters


class _State:
    """What `_state_sql` read, parsed."""

    def __init__(self, rows, rater, start: int, levels):
        by_tag: dict[str, list] = {}
        for row in rows:
            by_tag.setdefault(row[0], []).append(row[1:])
        self.campaign: Campaign | None = None
        if by_tag.get("c"):
            (pk, rubric_id, k, lease, _, _, _, status, name), = by_tag["c"]
            # from_db wants the values in the model's field order; the other fields load if ever used.
            self.campaign = Campaign.from_db(
                "default", ["id", "name", "rubric_id", "overlap_k", "lease_minutes", "status"],
                [pk, name, rubric_id, k, lease, status])
        (on_roster, roster_size, expired, *_), = by_tag["r"]
        self.on_roster, self.roster_size, self.has_expired = bool(on_roster), roster_size, bool(expired)
        if self.campaign is not None:
            self.campaign.on_roster, self.campaign.roster_size = self.on_roster, roster_size
        self.mine = [Assignment(pk=pk, item_id=item_id, rater_id=rater.pk, lease_expires_at=lease, created_at=created,
                                updated_at=updated, status=status,
                                campaign_id=self.campaign.pk if self.campaign else None)
                     for pk, item_id, _, _, lease, created, updated, status, _ in by_tag.get("m", [])]
        self.walked = _found([(r[0], r[1], r[2]) for r in by_tag.get("w", [])], start, levels)
        self.raters_on: dict[int, list[int]] = {}
        for item_id, rater_id, *_ in by_tag.get("o", []):
            self.raters_on.setdefault(item_id, []).append(rater_id)
        self.shared = {r[0]: r[1] for r in by_tag.get("s", [])}


_STATE_TYPES = {"campaign": "bigint", "rater": "bigint", "start": "integer", "exclude": "bigint[]",
                "now": "timestamptz"}
_LOCK_AND_READ_STATE = (
    "{async_commit}SELECT pg_advisory_xact_lock(%(campaign)s::int, %(rater)s::int);"
    " SELECT 1 FROM rating_campaign WHERE id = %(campaign)s FOR SHARE;"
    " {state}"
)
# By (number of levels, async commit): the levels follow from the k hint alone (fixed batch sizes).
_state_statements: dict[tuple[int, bool], Prepared] = {}


def _read_state(campaign_id: int, rater, levels, now, *, async_commit: bool) -> _State:
    """One round trip: the rater's advisory lock and the campaign row's share lock (separate statements, in
    that order, as lock_open_campaign and every other path take them), then `_state_sql`, whose snapshot
    is taken after both locks. The statements are PREPAREd once per connection (core/prepared.py: the
    state read's plan, ten index walks and their joins, cost more to make than to run). With
    `async_commit` (the caller's transaction holds nothing but this next), synchronous_commit is off for
    that transaction only: a lease is ephemeral, and a crash could lose at most the last moment's new
    leases, each whole (never a rating: submissions commit synchronously, and flush earlier commits with
    theirs), while the rater no longer waits for a disk flush; visibility and locking are unchanged."""
    start = start_position(campaign_id, rater.pseudonym)
    assert levels == [(0, FRESH_BATCH)] + [(n, STARTED_WINDOW) for n in range(1, len(levels))], levels
    key = (len(levels), async_commit)
    if key not in _state_statements:
        _state_statements[key] = Prepared(
            f"mhsd_next_{len(levels)}{'a' if async_commit else 's'}",
            _LOCK_AND_READ_STATE.format(state=_state_sql(levels), async_commit="SET LOCAL synchronous_commit = off; "
                                        if async_commit else ""),
            _STATE_TYPES)
    args = {"campaign": campaign_id, "rater": rater.pk, "start": start, "exclude": [], "now": now}
    with connection.cursor() as cursor:
        _state_statements[key].execute(cursor, args)
        return _State(cursor.fetchall(), rater, start, levels)


def next_assignment(campaign: Campaign, rater) -> Assignment | None:
    """The rater's next conversation: their own active one if they have it, else a new one, else None.

    Raises CampaignNotOpen / NotInCampaign when the rater may not rate in this campaign now."""
    check_can_rate(campaign)
    return next_assignment_in(campaign.pk, rater)[1]


def next_assignment_in(campaign_id: int, rater) -> tuple[Campaign, Assignment | None]:
    """next_assignment for a campaign known by id: (the campaign, the rater's next conversation or None).
    The campaign is read under its lock in the same round trip as the candidates, so the rater's request
    costs no separate look-up. Raises NoSuchCampaign (missing or a draft), NotInCampaign or CampaignNotOpen."""
    outermost = not connection.in_atomic_block  # else a caller's writes share the transaction
    for attempt in (1, 2):
        with transaction.atomic():
            now = timezone.now()
            walked_k = _k_hint.get(campaign_id, DEFAULT_K_HINT)
            k_levels = [(0, FRESH_BATCH)] + [(n, STARTED_WINDOW) for n in range(1, walked_k)]
            state = _read_state(campaign_id, rater, k_levels, now, async_commit=outermost)
            state.walked_k = walked_k
            campaign = state.campaign
            if campaign is None or campaign.status == Campaign.Status.DRAFT:
                raise NoSuchCampaign("No such campaign.")
            if not state.on_roster:
                raise NotInCampaign("You are no longer a rater in this campaign: your ratings in it can no "
                                    "longer be changed.")
            check_can_rate(campaign)
            if state.has_expired and attempt == 1:
                pass  # reclaimed below, outside this transaction (as the periodic task does), then read again
            else:
                return campaign, _choose(campaign, rater, state, now)
        reclaim_expired_assignments(campaign)
    raise AssertionError("unreachable")


# Which fullness levels (1..k-1 occupants) the state read walks, by campaign id: k as last seen by this
# process (the campaign row is read in the same statement, so k is not known before it). Only a hint for
# the query's size: levels at or above the campaign's real k are dropped by _choose, and levels a larger k
# needs are walked there, so a stale hint costs a round trip at most, never a wrong choice.
_k_hint: dict[int, int] = {}
DEFAULT_K_HINT = 2  # the model's default k


def _choose(campaign: Campaign, rater, state: _State, now) -> Assignment | None:
    """Inside next_assignment_in's transaction, with the rater's advisory lock and the campaign's share lock."""
    # The rater's own live lease (resume) and lapsed drafts, in one read: at most one live lease (the
    # advisory lock), and reclaim_expired_assignments has turned lapsed ones into RELEASED.
    mine = state.mine
    live = sorted((a for a in mine if lease_is_live(a, now)), key=lambda a: a.created_at)
    current = live[0] if live else None
    if current is not None:
        # Resume: the lease restarts, so a returning rater is not cut off mid-conversation. The item
        # lock serialises this with anyone counting the item's occupants as the old lease runs out.
        lock_item(current.item_id)
        current.refresh_from_db()
        now = timezone.now()
        if lease_is_live(current, now):
            return _restart_lease(current, campaign, now)
        # It lapsed meanwhile: choose as for anyone else (the rater may well get it back).
    tried: set[int] = set()
    locked_out: list[int] = []
    # The rater's own lapsed drafts come first (continue where they left off, if nobody took the place),
    # then started items within the pair budget, then fresh ones, then started ones over the budget.
    own_lapsed = [a.item_id for a in sorted(mine, key=lambda a: a.updated_at, reverse=True)
                  if not lease_is_live(a, now)][:5]
    k = campaign.overlap_k
    _k_hint[campaign.pk] = k
    walked = {n: ids for n, ids in state.walked.items() if n < k}
    raters_on, shared = state.raters_on, dict(state.shared)
    if k > state.walked_k:  # the fuller levels were not in the state read
        walked.update(_walk(campaign, rater, [(n, STARTED_WINDOW) for n in range(state.walked_k, k)]))
        raters_on, shared = _partners(campaign, rater, [i for n, ids in walked.items() if n for i in ids], now)
    fresh = walked.pop(0, [])  # the first fresh batch, read with the started items
    within, over_budget = _rank_started(campaign, rater, walked, state.roster_size, raters_on, shared)
    rounds = [own_lapsed + within]
    while rounds:
        for item_id in rounds.pop():
            if item_id in tried:
                continue
            tried.add(item_id)
            taken = _try_item(campaign, rater, item_id, wait=False)
            if taken is _LOCKED:
                locked_out.append(item_id)  # another transaction is deciding on it right now
            elif taken is not None:
                return taken
        if fresh is None:  # that batch is used up: walk on past everything tried
            fresh = _walk(campaign, rater, [(0, FRESH_BATCH)], exclude=tried).get(0, [])
        if fresh:
            rounds.append(fresh)
            fresh = None
        elif over_budget:
            # Nothing fresh is left: finishing the campaign beats the pair budget.
            rounds.append(over_budget)
            over_budget = []
    # Last resort, so a rater is not told "nothing left" only because others held the row locks for a
    # moment: wait for those locks and count again. A transaction here holds no other item lock
    # (rejected items are released at once, see _try_item), so no lock cycle can form.
    for item_id in locked_out:
        taken = _try_item(campaign, rater, item_id, wait=True)
        if taken is not None and taken is not _LOCKED:
            return taken
    return None


def remaining_for(campaign: Campaign, rater) -> int:
    """Conversations that still need a rating this rater could give (now, or once someone's lease lapses)."""
    mine = Assignment.objects.filter(
        item_id=OuterRef("pk"), rater=rater, status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED]
    )
    return (
        CampaignItem.objects.filter(campaign=campaign)
        .exclude(Exists(mine))
        .annotate(n_submitted=Count("assignments", filter=Q(assignments__status=Assignment.Status.SUBMITTED)))
        .filter(n_submitted__lt=campaign.overlap_k)
        .count()
    )


# --- leases held by a rater -----------------------------------------------------------------------


def lock_open_campaign(campaign_id: int, rater_id: int) -> Campaign:
    """Inside the caller's transaction: re-read the campaign row FOR SHARE and refuse unless it is open
    and the rater is still on its roster. Returns the fresh row, with `roster_size` (raters on the roster).

    close_campaign and update_campaign take this row FOR NO KEY UPDATE, which waits for share locks: a
    save or submission that passed this check commits before the campaign closes (or the rater is
    removed), and one that starts later sees the change. A check before the transaction would not do:
    the campaign could close between the check and the commit."""
    fresh = next(iter(Campaign.objects.raw(
        "SELECT c.*, EXISTS (SELECT 1 FROM rating_campaign_raters r WHERE r.campaign_id = c.id AND r.user_id = %s)"
        " AS on_roster, (SELECT COUNT(*) FROM rating_campaign_raters r WHERE r.campaign_id = c.id) AS roster_size"
        " FROM rating_campaign c WHERE c.id = %s FOR SHARE OF c", [rater_id, campaign_id])), None)
    if fresh is None or fresh.status != Campaign.Status.OPEN:
        label = "closed" if fresh is None else fresh.get_status_display().lower()
        raise CampaignNotOpen(f"This campaign is {label}: its ratings can no longer be changed.")
    if not fresh.on_roster:
        raise NotInCampaign("You are no longer a rater in this campaign: your ratings in it can no longer be "
                            "changed.")
    return fresh


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


# The assignment's campaign and item, looked up by (id, rater): another rater's id finds nothing, so nothing
# is locked and no row comes back; the views need no separate look-up to refuse it. (An assignment's campaign
# and item never change, so reading them before the locks is safe.)
_OWN_CAMPAIGN = "(SELECT campaign_id FROM rating_assignment WHERE id = %(assignment)s AND rater_id = %(rater)s)"
_OWN_ITEM = "(SELECT item_id FROM rating_assignment WHERE id = %(assignment)s AND rater_id = %(rater)s)"
_HOLD_SQL = (
    f"SELECT pg_advisory_xact_lock({_OWN_CAMPAIGN}::int, %(rater)s::int);"  # noqa: S608 - fixed text; the values are parameters
    f" SELECT 1 FROM rating_campaign WHERE id = {_OWN_CAMPAIGN} FOR SHARE;"
    f" SELECT 1 FROM rating_campaignitem WHERE id = {_OWN_ITEM} FOR NO KEY UPDATE;"
    # A live lease restarts (an edit is activity), exactly when hold_for_rating would restart it: the
    # campaign open, the rater on its roster, the lease ACTIVE and unexpired. Otherwise nothing changes here.
    "{renew}{read_locks}"
    " SELECT {campaign}, {assignment},"
    " EXISTS (SELECT 1 FROM rating_campaign_raters r WHERE r.campaign_id = c.id AND r.user_id = %(rater)s),"
    " (SELECT COUNT(*) FROM rating_campaign_raters r WHERE r.campaign_id = c.id){read_columns}"
    " FROM rating_assignment a JOIN rating_campaign c ON c.id = a.campaign_id{read_joins}"
    " WHERE a.id = %(assignment)s AND a.rater_id = %(rater)s"
)


# Live means live once the locks are held: `now` was read before the round trip, and while it waited for the
# item's lock the lease may have lapsed and its place gone to another rater (clock_timestamp(), not `now`).
_RENEW_SQL = (
    " UPDATE rating_assignment a SET lease_expires_at = %(now)s + make_interval(mins => c.lease_minutes),"
    " last_active_at = %(now)s, updated_at = %(now)s FROM rating_campaign c"
    " WHERE a.id = %(assignment)s AND c.id = a.campaign_id AND c.status = 'open' AND a.status = 'active'"
    " AND a.lease_expires_at > GREATEST(%(now)s, clock_timestamp())"
    " AND EXISTS (SELECT 1 FROM rating_campaign_raters r WHERE r.campaign_id = c.id AND r.user_id = a.rater_id);"
)


@dataclass(frozen=True)
class HeldRead:
    """What a caller of hold_and_read wants read with the hold, after its locks: more lock statements
    (each a statement of its own, taken after the item's, e.g. the rating row's), select-list columns
    and joins on the assignment `a` (parameters: %(assignment)s and %(rater)s)."""

    locks: str = ""
    columns: str = ""
    joins: str = ""
    # False: a live lease is not restarted here; the caller restarts it with its own write of the row
    # (a submission sets the status in the same UPDATE: one row version, not two).
    renew: bool = True

    @cached_property
    def statement(self) -> Prepared:
        sql = _HOLD_SQL.format(campaign=_columns(Campaign, "c"), assignment=_columns(Assignment, "a"),
                               renew=_RENEW_SQL if self.renew else "", read_locks=self.locks,
                               read_columns=self.columns, read_joins=self.joins)
        # Named after its text: each HeldRead is its own set of statements.
        return Prepared(f"mhsd_hold_{hashlib.md5(sql.encode()).hexdigest()[:12]}", sql,  # noqa: S324 - a name
                        {"rater": "bigint", "assignment": "bigint", "now": "timestamptz"})


def _lock_for_rating(assignment: Assignment, read: HeldRead, now) -> tuple[Campaign, tuple]:
    """hold_for_rating's locks, reads and lease renewal in one round trip, each lock a statement of its own
    and in the usual order (the rater's advisory lock, the campaign row FOR SHARE, the item row FOR NO KEY
    UPDATE, then `read.locks`), then, with a snapshot taken after all of them, the campaign (with
    `on_roster` and `roster_size`) and the assignment's fresh row, copied into `assignment` (as
    refresh_from_db would, the campaign cached as `assignment.campaign`), and `read.columns`, returned.

    Only `assignment.pk` and `assignment.rater_id` are used: a view may pass `Assignment(pk=..., rater=user)`
    for the id in its URL. Raises NotYourAssignment when the rater has no assignment by that id."""
    n_campaign, n_assignment = len(Campaign._meta.concrete_fields), len(Assignment._meta.concrete_fields)
    with connection.cursor() as cursor:
        read.statement.execute(cursor, {"rater": assignment.rater_id, "assignment": assignment.pk, "now": now})
        row = cursor.fetchone()
    if row is None:
        raise NotYourAssignment("No such conversation for you.")
    names = [f.attname for f in Campaign._meta.concrete_fields]
    campaign = Campaign.from_db("default", names, row[:n_campaign])
    fresh = row[n_campaign:n_campaign + n_assignment]
    campaign.on_roster, campaign.roster_size = row[n_campaign + n_assignment:n_campaign + n_assignment + 2]
    for f, value in zip(Assignment._meta.concrete_fields, fresh, strict=True):
        setattr(assignment, f.attname, value)
    assignment._state.adding = False
    assignment.campaign = campaign
    return campaign, row[n_campaign + n_assignment + 2:]


def _check_open(campaign: Campaign) -> None:
    """lock_open_campaign's refusals, for a campaign row read under its share lock."""
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignNotOpen(f"This campaign is {campaign.get_status_display().lower()}: its ratings can no "
                              "longer be changed.")
    if not campaign.on_roster:
        raise NotInCampaign("You are no longer a rater in this campaign: your ratings in it can no longer be "
                            "changed.")


def hold_for_rating(assignment: Assignment) -> Assignment:
    """Inside the caller's transaction, before the rater changes or submits a rating: make sure they may.

    Refuses (CampaignNotOpen, NotInCampaign, LeaseLost) unless the campaign is open, the rater is on its
    roster, and the assignment is submitted (a revision) or holds one of the item's k places. A live
    lease is extended (an edit is activity). A lapsed or released one is taken back only here, when the
    rater edits: never by a heartbeat (an open tab is not a rater at work), never while the rater holds
    another live lease in the campaign (one conversation at a time), and only if a place is free.

    Locks, in the order every path takes them (so no two can wait on each other): the rater's advisory
    lock, the campaign row (share), the item row, then the assignment and rating rows."""
    return hold_and_read(assignment)[0]


def hold_and_read(assignment: Assignment, read: HeldRead = HeldRead()) -> tuple[Assignment, tuple]:
    """hold_for_rating, with `read` (e.g. the rating the caller is about to edit) locked and read in the same
    round trip: (the assignment, the values of `read.columns`)."""
    campaign, extra = _lock_for_rating(assignment, read, timezone.now())
    # Judged from after the locks: while this waited for the item's lock, the lease may have run out and
    # another rater's next (which holds that lock while it counts) may have taken its place.
    now = timezone.now()
    _check_open(campaign)
    if assignment.status == Assignment.Status.SKIPPED:
        raise LeaseLost("You skipped this conversation.")
    if assignment.status == Assignment.Status.SUBMITTED:
        return assignment, extra
    if lease_is_live(assignment, now):  # and restarted by the round trip above, unless read.renew is False
        return assignment, extra
    other = (
        Assignment.objects.filter(campaign_id=assignment.campaign_id, rater_id=assignment.rater_id,
                                  status=Assignment.Status.ACTIVE, lease_expires_at__gt=now)
        .exclude(pk=assignment.pk).first()
    )
    if other is not None:
        raise LeaseLost(
            "Your hold on this conversation lapsed, and you are now rating another one in this campaign "
            f"(Conversation {other.pk}). Submit or skip that one first; this draft is kept."
        )
    if occupancy(assignment.item_id, now, exclude_rater_id=assignment.rater_id) >= campaign.overlap_k:
        raise LeaseLost(
            "Your hold on this conversation lapsed and it went to another rater. Your draft is kept, "
            "but it can no longer be submitted; please take the next conversation."
        )
    old = {"status": assignment.status, "lease_expires_at": assignment.lease_expires_at.isoformat()
           if assignment.lease_expires_at else None}
    assignment.status = Assignment.Status.ACTIVE
    assignment.lease_expires_at = _lease_end(campaign, now)
    assignment.last_active_at = now
    assignment.save(update_fields=["status", "lease_expires_at", "last_active_at", "updated_at"])
    record(assignment.rater, "assignment.reacquire", assignment, old=old, new={"status": "active"})
    return assignment, extra


def extend_live_lease(assignment: Assignment, *, active: bool, renew: bool = True) -> Assignment | None:
    """For a heartbeat, inside the caller's transaction: lock the item and the assignment; if the lease is
    still live, note the activity and extend the lease to the lease length after the rater's last activity
    (never further). Returns the locked assignment, unsaved (the caller saves it with the time it credits),
    or None if the lease is not live: a heartbeat never takes a lapsed or released conversation back
    (hold_for_rating does, when the rater edits).

    The item row is locked first, as everywhere: a beat landing just as the lease expires is then
    serialised with any next_assignment counting this item's occupants."""
    lock_item(assignment.item_id)
    a = Assignment.objects.select_for_update(of=("self",), no_key=True).get(pk=assignment.pk)
    now = timezone.now()
    if not lease_is_live(a, now):
        return None
    if active:
        a.last_active_at = now
    if renew:
        last = a.last_active_at or a.created_at
        a.lease_expires_at = max(a.lease_expires_at, _lease_end(assignment.campaign, last))
    return a


def lease_is_live(assignment: Assignment, now=None) -> bool:
    now = now or timezone.now()
    return assignment.status == Assignment.Status.ACTIVE and assignment.lease_expires_at > now


# --- skip ------------------------------------------------------------------------------------------


def skip_assignment(assignment: Assignment, rater, reason: str) -> Assignment:
    """The rater gives the conversation back with a reason; it goes to another rater."""
    reason = (reason or "").strip()
    if not reason:
        raise AssignmentError("Say why you are skipping this conversation.")
    if len(reason) > MAX_REASON_CHARS:
        raise AssignmentError(f"The reason is too long (at most {MAX_REASON_CHARS} characters).")
    if assignment.campaign.status != Campaign.Status.OPEN:
        raise CampaignNotOpen("The campaign is closed.")
    with transaction.atomic():
        lock_item(assignment.item_id)  # before the assignment's row, as everywhere
        assignment = Assignment.objects.select_for_update(of=("self",), no_key=True).get(pk=assignment.pk)
        if assignment.status == Assignment.Status.SUBMITTED:
            raise AssignmentError("You have already submitted this rating; it cannot be skipped.")
        if assignment.status == Assignment.Status.SKIPPED:
            return assignment
        old = {"status": assignment.status}
        assignment.status = Assignment.Status.SKIPPED
        assignment.skip_reason = reason
        assignment.save(update_fields=["status", "skip_reason", "updated_at"])
        record(rater, "assignment.skip", assignment, old=old, new={"status": "skipped", "reason": reason})
    return assignment
