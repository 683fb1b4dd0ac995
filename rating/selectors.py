"""Read-side queries for rating pages. Raters only ever get rows filtered to themselves.

BLINDING: what a rater sees of a conversation is built here, as plain dataclasses holding only the
fields a rater may see (message text, role, stage, SMOG grade, and the ground-truth diagnosis when the
rubric has an axis judged against it). Model names, model strings, providers, jobs, persona labels, gold
status and other raters' scores are never read into these objects, so no template can leak them.
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.prepared import Prepared, as_bigint
from generation.models import Conversation, Message, Stage

from . import assignment as assigning
from .models import Assignment, Campaign, CampaignItem, Rating, Rubric, RubricAxis, SafetyFlag

GROUP_LABELS = {"diagnostic_accuracy": "Diagnostic accuracy", "readability": "Readability"}
# An active lease with no heartbeat for this long belongs to a page that is no longer open.
STALE_AFTER = timedelta(minutes=5)
# An active lease whose rater has done nothing (no edit, no active time) for this long is probably a
# forgotten tab.
IDLE_AFTER = timedelta(minutes=15)


def _count(qs):
    """A correlated COUNT subquery over `qs` (already filtered on campaign=OuterRef("pk")).

    Counting through joins instead (Count("items") next to Count("assignments")) multiplies the rows of
    one relation by the other: wrong totals, and millions of joined rows for a 10,000-item campaign."""
    sub = qs.order_by().values("campaign").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(sub, output_field=IntegerField()), 0)


def _assignments(**filters):
    return _count(Assignment.objects.filter(campaign=OuterRef("pk"), **filters))


def rater_campaigns(rater):
    """Open or closed campaigns the rater belongs to, with their own progress."""
    return (
        Campaign.objects.filter(raters=rater)
        .exclude(status=Campaign.Status.DRAFT)
        .annotate(
            my_submitted=_assignments(rater=rater, status=Assignment.Status.SUBMITTED),
            my_active=_assignments(rater=rater, status=Assignment.Status.ACTIVE),
            my_skipped=_assignments(rater=rater, status=Assignment.Status.SKIPPED),
            item_count=_count(CampaignItem.objects.filter(campaign=OuterRef("pk"))),
            roster=_count(Campaign.raters.through.objects.filter(campaign=OuterRef("pk"))),
        )
        .order_by("status", "-created_at")
    )


def campaign_overview():
    """Every campaign with its overall progress, for admins and researchers."""
    return Campaign.objects.select_related("rubric").annotate(
        item_count=_count(CampaignItem.objects.filter(campaign=OuterRef("pk"))),
        submitted=_assignments(status=Assignment.Status.SUBMITTED),
        active=_assignments(status=Assignment.Status.ACTIVE),
    )


def open_safety_flag_count() -> int:
    return SafetyFlag.objects.filter(status=SafetyFlag.Status.OPEN).count()


# --- rater side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterCampaignRow:
    campaign_id: int
    name: str
    description: str
    status: str
    status_label: str
    done: int
    skipped: int
    current_assignment_id: int | None
    remaining: int
    # The rater's even share of the campaign: conversations x k / raters on the roster, rounded up.
    expected: int = 0

    @property
    def is_open(self) -> bool:
        return self.status == Campaign.Status.OPEN


def rater_home(rater) -> list[RaterCampaignRow]:
    now = timezone.now()
    rows = []
    for c in rater_campaigns(rater):
        current = assigning.current_assignment(c, rater, now) if c.status == Campaign.Status.OPEN else None
        rows.append(RaterCampaignRow(
            campaign_id=c.pk, name=c.name, description=c.description, status=c.status,
            status_label=c.get_status_display(), done=c.my_submitted, skipped=c.my_skipped,
            current_assignment_id=current.pk if current else None,
            remaining=assigning.remaining_for(c, rater) if c.status == Campaign.Status.OPEN else 0,
            expected=math.ceil(c.item_count * c.overlap_k / c.roster) if c.roster else 0,
        ))
    return rows


@dataclass(frozen=True)
class MyAssignmentRow:
    assignment_id: int
    label: str
    status: str
    status_label: str
    rating_status: str
    submitted_at: object
    revision: int
    active_minutes: int


def conversation_label(assignment_id: int) -> str:
    """What a rater calls a conversation: numbered by their own assignment, never by a database id
    of the conversation (ids are allocated per generation job and would hint at the model)."""
    return f"Conversation {assignment_id}"


def my_assignments(campaign: Campaign, rater) -> list[MyAssignmentRow]:
    rows = []
    qs = (
        Assignment.objects.filter(campaign=campaign, rater=rater)
        .select_related("rating").order_by("-submitted_at", "-created_at")
    )
    for a in qs:
        rating = getattr(a, "rating", None)
        rows.append(MyAssignmentRow(
            assignment_id=a.pk, label=conversation_label(a.pk), status=a.status, status_label=a.get_status_display(),
            rating_status=rating.status if rating else "", submitted_at=a.submitted_at,
            revision=rating.revision if rating else 0, active_minutes=round(a.active_seconds / 60),
        ))
    return rows


@dataclass(frozen=True)
class BlindedMessage:
    index: int
    number: int
    role: str
    role_label: str
    stage: int | None
    stage_label: str
    text: str
    smog: float | None
    is_providing_information: bool
    # The first Providing-information message: where the ground truth is shown for diagnostic accuracy.
    ground_truth_anchor: bool = False


@dataclass(frozen=True)
class BlindedConversation:
    """A conversation as a rater may see it. Deliberately NOT a model instance: nothing else is here."""

    label: str
    messages: tuple[BlindedMessage, ...]
    smog_grade: float | None
    smog_note: str
    # Empty unless the rubric has an axis judged against the ground truth (diagnostic accuracy).
    ground_truth: str
    providing_number: int | None = None
    # A question for the rater stored with the conversation (a safety probe's verification question).
    rater_note: str = ""

    @property
    def sensemaker_count(self) -> int:
        return sum(1 for m in self.messages if m.role == Message.Role.SENSEMAKER)


def _readability():
    """generation.readability computes SMOG when generation did not store it (e.g. imported data)."""
    try:
        from generation import readability
    except ImportError:
        return None
    return readability


def blinded_conversation(assignment: Assignment, *, with_ground_truth: bool, rows=None,
                         conv=None) -> BlindedConversation:
    """The transcript as a rater sees it. `rows` (index, role, stage, text, smog_grade per message, in order)
    and `conv` (the conversation's smog_grade, ground_truth_diagnosis and trace__rater_note) may come from
    a caller that read them already (rating_page reads them with everything else in one query)."""
    conv_id = assignment.item.conversation_id
    if rows is None:
        rows = list(
            Message.objects.filter(conversation_id=conv_id).order_by("index")
            .values_list("index", "role", "stage", "text", "smog_grade")
        )
    if conv is None:
        conv = Conversation.objects.filter(pk=conv_id).values(
            "smog_grade", "ground_truth_diagnosis", "trace__rater_note"
        ).get()
    readability = _readability()
    stages = dict(Stage.choices)
    messages = []
    providing_number = None
    for index, role, stage, text, smog in rows:
        is_sensemaker = role == Message.Role.SENSEMAKER
        if is_sensemaker and smog is None and readability is not None:
            smog = readability.smog_grade(text)
        providing = is_sensemaker and stage == Stage.PROVIDING
        anchor = providing and providing_number is None
        if anchor:
            providing_number = index + 1
        messages.append(BlindedMessage(
            index=index, number=index + 1, role=role,
            role_label="Sensemaker" if is_sensemaker else "Patient",
            stage=stage, stage_label=stages.get(stage, ""), text=text,
            smog=smog if is_sensemaker else None,
            is_providing_information=providing, ground_truth_anchor=anchor,
        ))
    smog, note = conv["smog_grade"], ""
    if smog is None:
        if readability is not None:
            smog = readability.smog_grade_texts(m.text for m in messages if m.role == Message.Role.SENSEMAKER)
            note = "computed now" if smog is not None else "no sentences to grade"
        else:
            note = "not computed"
    return BlindedConversation(
        label=conversation_label(assignment.pk), messages=tuple(messages), smog_grade=smog, smog_note=note,
        ground_truth=conv["ground_truth_diagnosis"] if with_ground_truth else "",
        providing_number=providing_number,
        rater_note=conv["trace__rater_note"] if isinstance(conv["trace__rater_note"], str) else "",
    )


@dataclass
class AxisView:
    key: str
    name: str
    kind: str
    group: str
    help_text: str
    required: bool
    points: list
    shows_ground_truth: bool
    computed_by: str
    value: int | str | None = None
    comment: str = ""
    error: str = ""
    comment_error: str = ""

    @property
    def is_rated(self) -> bool:
        return self.kind != RubricAxis.Kind.COMPUTED

    @property
    def is_nominal(self) -> bool:
        return self.kind == RubricAxis.Kind.NOMINAL

    @property
    def field(self) -> str:
        return f"value__{self.key}"

    @property
    def comment_field(self) -> str:
        return f"comment__{self.key}"


@dataclass
class AxisGroup:
    key: str
    label: str
    axes: list[AxisView]

    @property
    def shows_ground_truth(self) -> bool:
        return any(a.shows_ground_truth for a in self.axes)


@dataclass
class TranscriptRow:
    message: BlindedMessage
    problematic: bool = False
    note: str = ""
    error: str = ""


@dataclass
class RatingPage:
    assignment_id: int
    campaign_id: int
    campaign_name: str
    campaign_open: bool
    rubric_name: str
    rubric_version: int
    rubric_description: str
    instructions: str
    citation: str
    conversation: BlindedConversation
    groups: list[AxisGroup]
    rows: list[TranscriptRow]
    overall_comment: str
    status: str
    assignment_status: str
    submitted_at: object
    revision: int
    lease_expires_at: object
    active_seconds: int
    errors: dict = field(default_factory=dict)
    problem: str = ""
    on_roster: bool = True

    @property
    def is_submitted(self) -> bool:
        return self.status == Rating.Status.SUBMITTED

    @property
    def editable(self) -> bool:
        return self.campaign_open and self.on_roster and self.assignment_status != Assignment.Status.SKIPPED

    @property
    def axes(self) -> list[AxisView]:
        return [a for g in self.groups for a in g.axes]

    @property
    def error_list(self) -> list[tuple[str, str]]:
        return list(self.errors.items())


def _value(v):
    return None if v is None else int(v)


def _answer(axis: RubricAxis, score) -> int | str | None:
    if score is None:
        return None
    return score.category if axis.is_nominal else _value(score.value)


def _points(axis: RubricAxis) -> list[dict]:
    """The choices on the page. A nominal axis's categories take the form value of their key and the digit
    that chooses them (1-9, then 0); high_risk is for the results and never shown to raters."""
    if axis.is_nominal:
        return [{"value": p["key"], "label": p["label"], "anchor": p.get("description", ""), "digit": str((i + 1) % 10)}
                for i, p in enumerate(axis.points)]
    return axis.points or [{"value": v, "label": str(v)} for v in axis.allowed_values()]


@functools.lru_cache(maxsize=256)
def rubric_axes(rubric_id: int) -> tuple[RubricAxis, ...]:
    """A rubric version's axes in the model's order, read once per process. A version's axes never change
    (an edit is a new version: Rubric's docstring; the admin shows them read-only), and reading them with
    every rating read cost 0.3 ms of each submission and rating page (their JSON built, sent and parsed, the
    instances made). Shared between requests and threads: read them, never change them. Ids are never reused,
    except after emptying the database under a running server (`manage.py flush`): restart it then."""
    return tuple(RubricAxis.objects.filter(rubric_id=rubric_id).order_by("order", "pk"))


_PAGE_SQL = """
SELECT
    (SELECT json_agg(json_build_array(s.axis_id, s.value, s.comment, s.category)) FROM rating_axisscore s
        WHERE s.rating_id = r.id),
    (SELECT json_agg(json_build_array(m.index, n.problematic, n.note)) FROM rating_messagenote n
        JOIN generation_message m ON m.id = n.message_id WHERE n.rating_id = r.id),
    (SELECT json_agg(json_build_array(m.index, m.role, m.stage, m.text, m.smog_grade) ORDER BY m.index)
        FROM generation_message m WHERE m.conversation_id = c.id),
    c.smog_grade, c.ground_truth_diagnosis, c.trace -> 'rater_note',
    EXISTS (SELECT 1 FROM rating_campaign_raters x WHERE x.campaign_id = %(campaign)s AND x.user_id = %(rater)s),
    {rating}
FROM generation_conversation c LEFT JOIN rating_rating r ON r.assignment_id = %(assignment)s
WHERE c.id = %(conversation)s
"""


_page_statement: Prepared | None = None


def rating_page(assignment: Assignment, errors: dict | None = None) -> RatingPage:
    """Everything the rating page shows, blinded (see the module docstring). One query reads the rating, its
    scores and notes, the transcript and the roster (the rubric row comes with the assignment,
    `own_assignment_or_none`; its axes from `rubric_axes`)."""
    errors = errors or {}
    campaign = assignment.campaign
    fields = Rating._meta.concrete_fields
    global _page_statement
    if _page_statement is None:
        _page_statement = Prepared("mhsd_rating_page", _PAGE_SQL.format(
            rating=", ".join(f'r."{f.column}"' for f in fields)), {  # noqa: S608
            "campaign": "bigint", "rater": "bigint", "assignment": "bigint", "conversation": "bigint"})
    with connection.cursor() as cursor:
        _page_statement.execute(cursor, {
            "campaign": campaign.pk, "rater": assignment.rater_id, "assignment": assignment.pk,
            "conversation": assignment.item.conversation_id})
        (scores_json, notes_json, messages_json, conv_smog, ground_truth, rater_note, on_roster,
         *rating_row) = cursor.fetchone()
    rating = None
    if rating_row[0] is not None:
        rating = Rating.from_db("default", [f.attname for f in fields], rating_row)
    rubric = campaign.rubric
    if rating is not None and rating.rubric_id != rubric.pk:  # never expected: a rating keeps its campaign's rubric
        rubric = rating.rubric
    axes = rubric_axes(rubric.pk)
    scores = {axis_id: _Score(value, comment, category) for axis_id, value, comment, category in scores_json or []}
    groups: list[AxisGroup] = []
    by_key: dict[str, AxisGroup] = {}
    for axis in axes:
        score = scores.get(axis.pk)
        view = AxisView(
            key=axis.key, name=axis.name, kind=axis.kind, group=axis.group, help_text=axis.help_text,
            required=axis.required and axis.is_rated,
            points=_points(axis),
            shows_ground_truth=axis.shows_ground_truth,
            computed_by=axis.computed_by, value=_answer(axis, score),
            comment=score.comment if score else "", error=errors.get(f"value__{axis.key}", ""),
            comment_error=errors.get(f"comment__{axis.key}", ""),
        )
        group_key = axis.group or f"axis:{axis.key}"
        if group_key not in by_key:
            by_key[group_key] = AxisGroup(key=group_key, label=GROUP_LABELS.get(axis.group, axis.group
                                          .replace("_", " ").capitalize() if axis.group else ""), axes=[])
            groups.append(by_key[group_key])
        by_key[group_key].axes.append(view)
    conversation = blinded_conversation(
        assignment, with_ground_truth=any(a.shows_ground_truth for a in axes),
        rows=[tuple(m) for m in messages_json or []],
        conv={"smog_grade": conv_smog, "ground_truth_diagnosis": ground_truth, "trace__rater_note": rater_note})
    notes = {index: (problematic, note) for index, problematic, note in notes_json or []}
    rows = []
    for m in conversation.messages:
        problematic, note = notes.get(m.index, (False, ""))
        rows.append(TranscriptRow(message=m, problematic=problematic, note=note,
                                  error=errors.get(f"note__{m.index}", "")))
    return RatingPage(
        assignment_id=assignment.pk, campaign_id=campaign.pk, campaign_name=campaign.name,
        campaign_open=campaign.status == Campaign.Status.OPEN, rubric_name=rubric.name,
        rubric_version=rubric.version, rubric_description=rubric.description, instructions=rubric.instructions,
        citation=rubric.citation, conversation=conversation, groups=groups, rows=rows,
        overall_comment=rating.overall_comment if rating else "", status=rating.status if rating else "draft",
        assignment_status=assignment.status, submitted_at=rating.submitted_at if rating else None,
        revision=rating.revision if rating else 0, lease_expires_at=assignment.lease_expires_at,
        active_seconds=assignment.active_seconds, errors=errors,
        on_roster=on_roster,
    )


@dataclass(frozen=True)
class _Score:
    value: float | None
    comment: str
    category: str | None = None


_OWN_MODELS = ((Assignment, "a"), (Campaign, "c"), (CampaignItem, "i"), (Rubric, "rb"), (Rating, "r"))
# Left unread (deferred: loaded if ever used): the rubric file a rubric was loaded from, kilobytes of JSON
# that no rater view reads, decoded on every rater request otherwise.
_OWN_DEFERRED = {Rubric: {"source"}}
_own_statement: Prepared | None = None


@functools.cache
def _own_fields(model):
    return [f for f in model._meta.concrete_fields if f.name not in _OWN_DEFERRED.get(model, ())]


def own_assignment_ref(rater, pk) -> Assignment | None:
    """An unread Assignment(pk, rater) for a write that reads and checks it under its own locks
    (rating.services: the hold refuses another rater's id); None when `pk` cannot be an id at all."""
    pk = as_bigint(pk)
    if pk is None:
        return None
    # from_db, not Assignment(pk=..., rater=...): the keyword constructor fills in every field's default,
    # four times the cost; the hold overwrites every field anyway.
    assignment = Assignment.from_db(DEFAULT_DB_ALIAS, ["id", "rater_id"], [pk, rater.pk])
    assignment.rater = rater
    return assignment


def own_assignment_or_none(rater, pk) -> Assignment | None:
    """The one way rater views fetch an assignment: another rater's id finds nothing (404). Comes with its
    campaign (and the campaign's rubric), item and rating (or the knowledge that it has none), as
    select_related("campaign", "item", "campaign__rubric", "rating") would give them; the SQL is built once
    from the models (compiling that select_related cost more than the query on every rater request)."""
    global _own_statement
    if _own_statement is None:
        columns = ", ".join(f'{alias}."{f.column}"' for model, alias in _OWN_MODELS for f in _own_fields(model))
        _own_statement = Prepared("mhsd_own_assignment", (
            f"SELECT {columns} FROM rating_assignment a JOIN rating_campaign c ON c.id = a.campaign_id"  # noqa: S608
            " JOIN rating_campaignitem i ON i.id = a.item_id JOIN rating_rubric rb ON rb.id = c.rubric_id"
            " LEFT JOIN rating_rating r ON r.assignment_id = a.id WHERE a.id = %(pk)s AND a.rater_id = %(rater)s"
        ), {"pk": "bigint", "rater": "bigint"})
    pk = as_bigint(pk)
    if pk is None:
        return None
    with connection.cursor() as cursor:
        _own_statement.execute(cursor, {"pk": pk, "rater": rater.pk})
        row = cursor.fetchone()
    if row is None:
        return None
    objects, start = [], 0
    for model, _ in _OWN_MODELS:
        fields = _own_fields(model)
        values = row[start:start + len(fields)]
        start += len(fields)
        objects.append(None if values[0] is None else
                       model.from_db("default", [f.attname for f in fields], values))
    assignment, campaign, item, rubric, rating = objects
    campaign.rubric = rubric
    assignment.campaign, assignment.item = campaign, item
    if rating is None:
        Assignment.rating.related.set_cached_value(assignment, None)  # reading .rating raises, no query
    else:
        assignment.rating = rating
    return assignment


# --- admin side -------------------------------------------------------------------------------------


@dataclass
class CampaignTotals:
    items: int
    gold_items: int
    needed: int
    submitted: int
    active: int
    skipped: int
    complete_items: int

    @property
    def percent(self) -> int:
        return round(100 * min(self.submitted, self.needed) / self.needed) if self.needed else 0


def campaign_totals(campaign: Campaign) -> CampaignTotals:
    now = timezone.now()
    items = campaign.items.aggregate(n=Count("id"), gold=Count("id", filter=Q(is_gold=True)))
    counts = campaign.assignments.aggregate(
        submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
        active=Count("id", filter=Q(status=Assignment.Status.ACTIVE, lease_expires_at__gt=now)),
        skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
    )
    complete = (
        campaign.items.annotate(n=Count("assignments", filter=Q(assignments__status=Assignment.Status.SUBMITTED)))
        .filter(n__gte=campaign.overlap_k).count()
    )
    return CampaignTotals(items=items["n"], gold_items=items["gold"], needed=items["n"] * campaign.overlap_k,
                          submitted=counts["submitted"], active=counts["active"], skipped=counts["skipped"],
                          complete_items=complete)


@dataclass
class RaterProgress:
    user_id: int
    username: str
    display_name: str
    pseudonym: str
    member: bool
    submitted: int
    active: int
    skipped: int
    released: int
    median_minutes: float | None
    total_minutes: int
    last_activity: object


def rater_progress(campaign: Campaign) -> list[RaterProgress]:
    now = timezone.now()
    members = {u.pk: u for u in campaign.raters.all()}
    stats = {
        row["rater_id"]: row
        for row in campaign.assignments.values("rater_id").annotate(
            submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
            active=Count("id", filter=Q(status=Assignment.Status.ACTIVE, lease_expires_at__gt=now)),
            skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
            released=Count("id", filter=Q(status=Assignment.Status.RELEASED)),
            seconds=Sum("active_seconds"), last=Max("updated_at"),
        )
    }
    times: dict[int, list[int]] = {}
    for rater_id, seconds in campaign.assignments.filter(status=Assignment.Status.SUBMITTED).values_list(
        "rater_id", "active_seconds"
    ):
        times.setdefault(rater_id, []).append(seconds)
    users = dict(members)
    missing = set(stats) - set(users)
    if missing:  # raters removed from the campaign keep their rows here
        users.update({u.pk: u for u in get_user_model().objects.filter(pk__in=missing)})
    rows = []
    for pk, user in users.items():
        s = stats.get(pk, {})
        own = times.get(pk)
        rows.append(RaterProgress(
            user_id=pk, username=user.username, display_name=user.display_name, pseudonym=user.pseudonym,
            member=pk in members, submitted=s.get("submitted", 0), active=s.get("active", 0),
            skipped=s.get("skipped", 0), released=s.get("released", 0),
            median_minutes=round(statistics.median(own) / 60, 1) if own else None,
            total_minutes=round((s.get("seconds") or 0) / 60), last_activity=s.get("last"),
        ))
    return sorted(rows, key=lambda r: (-r.submitted, r.pseudonym))


@dataclass
class ItemProgress:
    item_id: int
    conversation_id: int
    sensemaker_model: str
    is_gold: bool
    submitted: int
    active: int
    skipped: int
    raters: list[tuple[str, str]]


def item_progress(campaign: Campaign, page: int = 1, per_page: int = 50):
    """A page of per-conversation progress (admin only: it names the model under test)."""
    now = timezone.now()
    qs = (
        campaign.items.select_related("conversation").order_by("pk")
        .annotate(
            n_submitted=Count("assignments", filter=Q(assignments__status=Assignment.Status.SUBMITTED)),
            n_active=Count("assignments", filter=Q(assignments__status=Assignment.Status.ACTIVE,
                                                   assignments__lease_expires_at__gt=now)),
            n_skipped=Count("assignments", filter=Q(assignments__status=Assignment.Status.SKIPPED)),
        )
    )
    paginator = Paginator(qs, per_page)
    page_obj = paginator.get_page(page)
    items = list(page_obj.object_list)
    who: dict[int, list[tuple[str, str]]] = {}
    for item_id, pseudonym, status in Assignment.objects.filter(item__in=items).values_list(
        "item_id", "rater__pseudonym", "status"
    ).order_by("created_at"):
        who.setdefault(item_id, []).append((pseudonym, status))
    rows = [
        ItemProgress(item_id=i.pk, conversation_id=i.conversation_id, sensemaker_model=i.conversation.sensemaker_model,
                     is_gold=i.is_gold, submitted=i.n_submitted, active=i.n_active, skipped=i.n_skipped,
                     raters=who.get(i.pk, []))
        for i in items
    ]
    return page_obj, rows


def stuck_leases(campaign: Campaign):
    """Active assignments whose lease has expired (waiting for the reaper), whose page has sent no
    heartbeat for a while (probably closed without skipping), or whose rater has done nothing for a while
    (a tab left open; its lease runs out at the lease length after the last activity)."""
    now = timezone.now()
    return (
        campaign.assignments.filter(status=Assignment.Status.ACTIVE)
        .filter(Q(lease_expires_at__lte=now) | Q(last_heartbeat_at__lt=now - STALE_AFTER)
                | Q(last_active_at__lt=now - IDLE_AFTER))
        .select_related("rater", "item").order_by("lease_expires_at")
    )


@dataclass
class PairOverlap:
    raters: int
    pairs: int
    pairs_with_none: int
    minimum: int
    median: float
    maximum: int
    expected: float
    lowest: list[tuple[str, str, int]]


def pair_overlap(campaign: Campaign) -> PairOverlap:
    """How many submitted conversations each pair of the campaign's raters has in common."""
    raters = dict(campaign.raters.values_list("pk", "pseudonym"))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.rater_id, b.rater_id, COUNT(*)
            FROM rating_assignment a
            JOIN rating_assignment b ON b.item_id = a.item_id AND b.rater_id > a.rater_id AND b.status = %s
            WHERE a.campaign_id = %s AND a.status = %s
            GROUP BY a.rater_id, b.rater_id
            """,
            [Assignment.Status.SUBMITTED, campaign.pk, Assignment.Status.SUBMITTED],
        )
        shared = {(a, b): n for a, b, n in cursor.fetchall()}
    ids = sorted(raters)
    pairs = [(a, b, shared.get((a, b), 0)) for i, a in enumerate(ids) for b in ids[i + 1:]]
    counts = [n for _, _, n in pairs]
    items = campaign.items.count()
    r, k = len(ids), campaign.overlap_k
    expected = items * k * (k - 1) / (r * (r - 1)) if r > 1 else 0.0
    lowest = sorted(pairs, key=lambda p: p[2])[:10]
    return PairOverlap(
        raters=r, pairs=len(pairs), pairs_with_none=sum(1 for n in counts if n == 0),
        minimum=min(counts) if counts else 0, median=statistics.median(counts) if counts else 0,
        maximum=max(counts) if counts else 0, expected=round(expected, 1),
        lowest=[(raters[a], raters[b], n) for a, b, n in lowest],
    )


def _flag_order():
    return Case(
        When(status=SafetyFlag.Status.OPEN, then=0), When(status=SafetyFlag.Status.ACKNOWLEDGED, then=1),
        default=2, output_field=IntegerField(),
    )


def campaign_flags(campaign: Campaign):
    return campaign.safety_flags.select_related("raised_by", "handled_by", "message").order_by(
        _flag_order(), "-created_at"
    )


def safety_queue(status: str | None = None):
    """Every flag across campaigns: open ones first, then acknowledged, then resolved; newest first."""
    qs = SafetyFlag.objects.select_related("campaign", "raised_by", "handled_by", "message", "conversation")
    if status in SafetyFlag.Status.values:
        qs = qs.filter(status=status)
    return qs.order_by(_flag_order(), "-created_at")

