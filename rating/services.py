"""Rating: server-side drafts, submission, revision, time on task and safety flags.

Every change a rater makes is saved at once as an idempotent upsert (the same value twice changes
nothing). Before the first submission the draft is the rater's own scratch space and is not audited;
from submission on, every change (the submission itself and every later revision) is written to the
audit trail with its old and new values. Ratings can be revised until the campaign closes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from core.prepared import Prepared, insert_params, insert_sql
from core.text import unstorable
from generation.models import Message

from . import assignment as assigning
from . import events, extensions, selectors
from .models import Assignment, AxisScore, Campaign, MessageNote, Rating, RubricAxis, SafetyFlag

# The rating page sends a heartbeat this often; no heartbeat is credited with more active time.
HEARTBEAT_SECONDS = 30
MAX_TEXT_CHARS = 5000


class RatingError(Exception):
    """A rating operation that cannot be done; the message is shown to the rater."""


class NotYourRating(RatingError):
    """No assignment by that id for this rater: the views answer 404, as for an id that does not exist."""


class RatedElsewhere(RatingError):
    """The assignment belongs to a page of its own (judging's validation mode, see rating.extensions):
    nothing was saved, and `url` is that page."""

    def __init__(self, url: str):
        self.url = url
        super().__init__("This conversation is not rated on the rating page.")


class SubmitRejected(RatingError):
    """The rating is incomplete or has invalid fields; `errors` maps form field names to messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(f"{len(errors)} field(s) need attention")


@dataclass
class DraftChanges:
    """What one save request changes. Keys are axis keys / message indexes; None means "not sent"."""

    values: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    overall_comment: str | None = None
    notes: dict[int, str] = field(default_factory=dict)
    problematic: dict[int, bool] = field(default_factory=dict)
    bad_fields: dict[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.values or self.comments or self.notes or self.problematic
                    or self.overall_comment is not None or self.bad_fields)


def changes_from_post(data) -> DraftChanges:
    """Read the rating form's field names: value__<axis>, comment__<axis>, overall_comment,
    note__<message index>, problematic__<message index> (a hidden 0 precedes the checkbox's 1, so the
    last value sent wins)."""
    changes = DraftChanges()
    for name in data:
        prefix, _, key = name.partition("__")
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        value = values[-1] if values else ""
        reason = unstorable(value) or unstorable(name)
        if reason:
            changes.bad_fields[name] = f"This field {reason}."
            continue
        if name == "overall_comment":
            changes.overall_comment = value
        elif prefix == "value" and key:
            changes.values[key] = value.strip()
        elif prefix == "comment" and key:
            changes.comments[key] = value
        elif prefix in ("note", "problematic") and key:
            try:
                index = int(key)
            except ValueError:
                changes.bad_fields[name] = "Unknown message."
                continue
            if prefix == "note":
                changes.notes[index] = value
            else:
                changes.problematic[index] = value in ("1", "on", "true")
    return changes


@dataclass
class SaveOutcome:
    saved: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # The rating was already submitted when this save or submission read it (a revision).
    was_submitted: bool = False


def _fmt(value: float | str | None):
    if value is None or isinstance(value, str):  # a nominal axis's category key
        return value
    return int(value) if float(value).is_integer() else value


def rating_for(assignment: Assignment) -> Rating:
    rubric_id = assignment.campaign.rubric_id
    rating, _ = Rating.objects.get_or_create(assignment=assignment, defaults={"rubric_id": rubric_id})
    return rating


def _parse_value(axis: RubricAxis, raw: str) -> tuple[float | str | None, str | None]:
    """The number (or, on a nominal axis, the category key) `raw` stands for, or why it is not valid."""
    if not axis.is_rated:
        return None, f"“{axis.name}” is computed automatically and is not rated by hand."
    if raw == "":
        return None, None
    if axis.is_nominal:
        if raw not in axis.category_keys():
            return None, f"“{raw}” is not a category of {axis.name}."
        return raw, None
    try:
        number = float(raw)
    except ValueError:
        return None, f"“{raw}” is not a score for {axis.name}."
    allowed = axis.allowed_values()
    if not number.is_integer() or int(number) not in allowed:
        shown = " or ".join(str(v) for v in allowed) if axis.kind == RubricAxis.Kind.BINARY else (
            f"{allowed[0]} to {allowed[-1]}")
        return None, f"{axis.name} takes {shown}; got {raw}."
    return float(int(number)), None


def _too_long(text: str) -> bool:
    return len(text) > MAX_TEXT_CHARS


def save_rating_draft(assignment: Assignment, actor, changes: DraftChanges) -> SaveOutcome:
    """Save the valid part of `changes` (invalid fields are reported, never half-saved).

    Raises RatingError if the rating cannot be changed at all (closed campaign, rater removed from it,
    skipped, lease lost). Those are checked inside the transaction that writes, under the campaign's row
    lock, so nothing lands after the campaign closes."""
    outcome = SaveOutcome(errors=dict(changes.bad_fields))
    with transaction.atomic():
        edit = _hold_and_open(assignment, outcome)
        _apply_changes(edit, assignment, changes)
        _save_edit(edit, assignment, actor)
    return outcome


def _hold_and_open(assignment: Assignment, outcome: SaveOutcome, *, renew: bool = True) -> _Edit:
    """Inside the caller's transaction: hold the assignment (hold_for_rating) and lock and read the rating
    with everything an edit needs, in one round trip (`_EDIT_READ`). `renew=False`: a live lease is left
    for the caller to restart (`_restart_lease_sql`).

    `assignment` may be a bare `Assignment(pk=..., rater=...)`: the hold reads it (and its campaign) and
    refuses another rater's id (NotYourRating), so a view needs no look-up of its own first. An assignment
    that belongs to another page (RatedElsewhere) is refused here, before anything is written, by the
    resolver that decides from the campaign row just read."""
    try:
        _, row = assigning.hold_and_read(assignment, _EDIT_READ if renew else _EDIT_READ_NO_RENEW)
    except assigning.NotYourAssignment as exc:
        raise NotYourRating(str(exc)) from exc
    except assigning.AssignmentError as exc:
        raise RatingError(str(exc)) from exc
    elsewhere = extensions.assignment_page(assignment)
    if elsewhere:
        raise RatedElsewhere(elsewhere)  # the caller's transaction rolls back whatever the hold renewed
    if row[0] is None:  # an assignment without its rating row (made before ratings were created with it)
        rating_for(assignment)
        edit = _open_edit(assignment, outcome)
    else:
        edit = _edit_from_row(row, outcome)
    outcome.was_submitted = edit.submitted
    return edit


def _apply_changes(edit: _Edit, assignment: Assignment, changes: DraftChanges) -> None:
    _apply_values(edit, changes.values)
    _apply_comments(edit, changes.comments)
    if changes.overall_comment is not None:
        _apply_overall_comment(edit, changes.overall_comment)
    if changes.notes or changes.problematic:
        _apply_message_notes(edit, assignment, changes)


@dataclass
class _Edit:
    """The working state of one save_rating_draft: the locked rating, its scores by axis key, the score rows
    to write at the end, and the old and new values the audit trail records."""

    rating: Rating
    axes: dict[str, RubricAxis]
    scores: dict[str, AxisScore]
    outcome: SaveOutcome
    # The rating's message notes by message index (what completeness and the audit snapshot read).
    notes: dict[int, MessageNote] = field(default_factory=dict)
    dirty_scores: dict[str, AxisScore] = field(default_factory=dict)
    old: dict = field(default_factory=dict)
    new: dict = field(default_factory=dict)

    @property
    def submitted(self) -> bool:
        return self.rating.status == Rating.Status.SUBMITTED

    def changed(self, name: str, before, after) -> None:
        self.old[name], self.new[name] = before, after

    def score_row(self, axis: RubricAxis) -> AxisScore:
        if axis.key not in self.scores:
            self.scores[axis.key] = AxisScore(rating=self.rating, axis=axis)
        self.dirty_scores[axis.key] = self.scores[axis.key]
        return self.scores[axis.key]


def _from_json(model, rows) -> list:
    """Model instances from row_to_json objects (column name -> value), whatever columns the model has."""
    fields = model._meta.concrete_fields
    return [model.from_db("default", [f.attname for f in fields], [row[f.column] for f in fields])
            for row in rows or []]


_EDIT_COLUMNS = """,
    (SELECT json_agg(row_to_json(s)) FROM rating_axisscore s WHERE s.rating_id = r.id),
    (SELECT json_agg(json_build_object('note', row_to_json(n), 'index', m.index)) FROM rating_messagenote n
        JOIN generation_message m ON m.id = n.message_id WHERE n.rating_id = r.id)"""
# One save at a time per rating (the row lock), so concurrent requests from one page cannot interleave; the
# rating, its scores and its message notes are read after that lock (its rubric's axes never change, and
# come from selectors.rubric_axes).
_EDIT_READ = assigning.HeldRead(
    locks=" SELECT 1 FROM rating_rating WHERE assignment_id = %(assignment)s FOR NO KEY UPDATE;",
    columns=", " + ", ".join(f'r."{f.column}"' for f in Rating._meta.concrete_fields) + _EDIT_COLUMNS,
    joins=" LEFT JOIN rating_rating r ON r.assignment_id = a.id",
)


_EDIT_READ_NO_RENEW = dataclasses.replace(_EDIT_READ, renew=False)
# A live lease restarted from now (an edit is activity), as hold_for_rating does.
_RESTART_LEASE_SQL = (
    "UPDATE rating_assignment SET lease_expires_at = %s + make_interval(mins => (SELECT lease_minutes"
    " FROM rating_campaign WHERE id = campaign_id)), last_active_at = %s, updated_at = %s"
    " WHERE id = %s AND status = 'active' AND lease_expires_at > %s"
)
_OPEN_EDIT_TEMPLATE = "{locks} SELECT 1{columns} FROM rating_assignment a{joins} WHERE a.id = %(assignment)s"
_OPEN_EDIT_SQL = _OPEN_EDIT_TEMPLATE.format(locks=_EDIT_READ.locks, columns=_EDIT_READ.columns, joins=_EDIT_READ.joins)


def _open_edit(assignment: Assignment, outcome: SaveOutcome) -> _Edit:
    """Lock the rating and then (a statement of its own, after the lock) read it as `_EDIT_READ` does; for
    the rare assignment whose rating row was created only now."""
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_EDIT_SQL, {"assignment": assignment.pk})
        return _edit_from_row(cursor.fetchone()[1:], outcome)


def _edit_from_row(row, outcome: SaveOutcome) -> _Edit:
    fields = Rating._meta.concrete_fields
    rating = Rating.from_db("default", [f.attname for f in fields], row[:len(fields)])
    scores_json, notes_json = row[len(fields):]
    axes = {a.key: a for a in selectors.rubric_axes(rating.rubric_id)}
    by_id = {a.pk: a for a in axes.values()}
    scores = {}
    for score in _from_json(AxisScore, scores_json):
        score.axis = by_id[score.axis_id]
        scores[score.axis.key] = score
    notes = {}
    for entry in notes_json or []:
        note, = _from_json(MessageNote, [entry["note"]])
        notes[entry["index"]] = note
    return _Edit(rating=rating, axes=axes, scores=scores, outcome=outcome, notes=notes)


def _known_axes(edit: _Edit, sent: dict[str, str], prefix: str):
    """(form field, axis, sent text) for each key the rubric has; unknown keys are reported as errors."""
    for key, text in sent.items():
        name = f"{prefix}__{key}"
        if key in edit.axes:
            yield name, edit.axes[key], text
        else:
            edit.outcome.errors[name] = f"The rubric has no axis “{key}”."


def _apply_values(edit: _Edit, values: dict[str, str]) -> None:
    for name, axis, raw in _known_axes(edit, values, "value"):
        key = axis.key
        value, error = _parse_value(axis, raw)
        if error is None and value is None and edit.submitted and axis.required:
            error = f"{axis.name} is required: choose another score rather than clearing it."
        if error:
            edit.outcome.errors[name] = error
            continue
        current = edit.scores[key].answer if key in edit.scores else None
        if current != value or key not in edit.scores:
            edit.changed(name, _fmt(current), _fmt(value))
            row = edit.score_row(axis)
            if axis.is_nominal:
                row.category = value
            else:
                row.value = value
        edit.outcome.saved.append(name)


def _apply_comments(edit: _Edit, comments: dict[str, str]) -> None:
    for name, axis, text in _known_axes(edit, comments, "comment"):
        key = axis.key
        if _too_long(text):
            edit.outcome.errors[name] = f"Comments are limited to {MAX_TEXT_CHARS} characters."
            continue
        current = edit.scores[key].comment if key in edit.scores else ""
        if current != text:
            edit.changed(name, current, text)
            edit.score_row(axis).comment = text
        edit.outcome.saved.append(name)


def _apply_overall_comment(edit: _Edit, text: str) -> None:
    if _too_long(text):
        edit.outcome.errors["overall_comment"] = f"Comments are limited to {MAX_TEXT_CHARS} characters."
        return
    if edit.rating.overall_comment != text:
        edit.changed("overall_comment", edit.rating.overall_comment, text)
        edit.rating.overall_comment = text
    edit.outcome.saved.append("overall_comment")


def _message_fields(changes: DraftChanges, index: int) -> list[str]:
    """The form fields `changes` sent for message `index` (its note, its problem mark, or both)."""
    return ([f"note__{index}"] if index in changes.notes else []) + (
        [f"problematic__{index}"] if index in changes.problematic else [])


def _message_note_error(message: Message | None, index: int, changes: DraftChanges) -> str | None:
    """Why message `index` cannot carry a note or problem mark, or None."""
    if message is None:
        return "This conversation has no such message."
    if message.role != Message.Role.SENSEMAKER and (changes.notes.get(index, "").strip()
                                                     or changes.problematic.get(index)):
        # The issue scopes notes to the sensemaker's replies: the patient is simulated, not rated.
        return (f"Message #{index + 1} is the patient's: notes and problem marks are for the sensemaker's "
                "messages.")
    return None


def _apply_message_notes(edit: _Edit, assignment: Assignment, changes: DraftChanges) -> None:
    indexes = set(changes.notes) | set(changes.problematic)
    messages = {m.index: m for m in Message.objects.filter(
        conversation__campaign_items__pk=assignment.item_id, index__in=indexes)}
    existing = edit.notes
    for index in sorted(indexes):
        message = messages.get(index)
        error = _message_note_error(message, index, changes)
        if error:
            for name in _message_fields(changes, index):
                edit.outcome.errors[name] = error
            continue
        note = existing.get(index) or MessageNote(rating=edit.rating, message=message)
        text = changes.notes.get(index, note.note)
        flagged = changes.problematic.get(index, note.problematic)
        if _too_long(text):
            edit.outcome.errors[f"note__{index}"] = f"Notes are limited to {MAX_TEXT_CHARS} characters."
            continue
        if (text, flagged) != (note.note, note.problematic):
            edit.changed(f"message__{index}", {"problematic": note.problematic, "note": note.note},
                         {"problematic": flagged, "note": text})
            note.note, note.problematic = text, flagged
            if not text and not flagged:
                if note.pk:
                    note.delete()  # an emptied note is no note
                edit.notes.pop(index, None)
            else:
                note.save()
                edit.notes[index] = note
        edit.outcome.saved.extend(_message_fields(changes, index))


def _save_edit(edit: _Edit, assignment: Assignment, actor) -> None:
    rows = edit.dirty_scores.values()
    # Split before inserting: bulk_create gives the new rows their ids, and they need no update.
    existing_rows = [row for row in rows if row.pk is not None]
    AxisScore.objects.bulk_create([row for row in rows if row.pk is None])
    AxisScore.objects.bulk_update(existing_rows, ["value", "category", "comment"])
    # Setting an absent score to "no value" records nothing new: keep the audit and draft quiet.
    new = {k: v for k, v in edit.new.items() if edit.old.get(k) != v}
    old = {k: v for k, v in edit.old.items() if k in new}
    if not new:
        return
    rating = edit.rating
    if edit.submitted:
        # A change to a submitted rating is a revision: counted, and kept with old and new values.
        rating.revision += 1
        record(actor, "rating.revise", rating, old=old, new=new, revision=rating.revision, assignment=assignment.pk)
        events.ratings_changed(assignment.campaign_id)
    rating.save()


def _missing_answer(axis: RubricAxis) -> str:
    return f"Choose a {'category' if axis.is_nominal else 'score'} for {axis.name}."


def _edit_completeness_errors(edit: _Edit) -> dict[str, str]:
    """What stops the rating from being submitted, by form field name, from the state an edit has read and
    changed (under the rating's lock)."""
    errors = {}
    for axis in edit.axes.values():
        score = edit.scores.get(axis.key)
        if axis.is_rated and axis.required and (score is None or score.answer is None):
            errors[f"value__{axis.key}"] = _missing_answer(axis)
    for index, note in sorted(edit.notes.items()):
        if note.problematic and not note.note.strip():
            errors[f"note__{index}"] = f"Say why message #{index + 1} is problematic."
    return errors


def _edit_snapshot(edit: _Edit) -> dict:
    """Everything the rater has entered, as plain JSON (for the audit trail), from an edit's state."""
    scores = [edit.scores[key] for key in edit.axes if key in edit.scores]
    return {
        "values": {s.axis.key: _fmt(s.answer) for s in scores if s.answer is not None},
        "comments": {s.axis.key: s.comment for s in scores if s.comment},
        "overall_comment": edit.rating.overall_comment,
        "notes": {str(i): {"problematic": n.problematic, "note": n.note} for i, n in sorted(edit.notes.items())},
    }


def submit_rating(assignment: Assignment, actor, changes: DraftChanges | None = None, *,
                  outcome: SaveOutcome | None = None) -> Rating:
    """Save `changes`, check every required axis, and submit (or, if already submitted, keep the
    revision). Raises SubmitRejected with per-field errors; the valid part of the draft is kept.
    `outcome`, if given, is filled in (e.g. `was_submitted`: this was a revision).

    One transaction: the changes are saved and the completeness checked under the same locks (the
    rater's, the campaign's, the item's and the rating's), so no save from another tab can come in
    between; a rejected submission commits the draft and then raises."""
    changes = changes or DraftChanges()
    outcome = outcome if outcome is not None else SaveOutcome()
    outcome.errors.update(changes.bad_fields)
    rejected = None
    with transaction.atomic():
        # The lease is restarted below, with the submission's own UPDATE of the row when it succeeds.
        edit = _hold_and_open(assignment, outcome, renew=False)  # campaign open, rater on it, a place
        _apply_changes(edit, assignment, changes)
        rating = edit.rating
        if outcome.errors:
            rejected = {**_edit_completeness_errors(edit), **outcome.errors}
        elif not edit.submitted:
            rejected = _edit_completeness_errors(edit) or None
        if rejected or edit.submitted:
            # A draft kept (the valid part), or a revision of a submitted rating (audited as it is saved).
            if not edit.submitted:
                now = timezone.now()
                with connection.cursor() as cursor:
                    cursor.execute(_RESTART_LEASE_SQL, [now, now, now, assignment.pk, now])
            _save_edit(edit, assignment, actor)
        else:
            _submit_edit(edit, assignment, actor)
    if rejected:
        raise SubmitRejected(rejected)
    return rating


_SUBMIT_UPDATES = (
    "UPDATE rating_rating SET status = %(rating_status)s, submitted_at = %(now)s, updated_at = %(now)s,"
    " overall_comment = %(overall_comment)s WHERE id = %(rating)s;"
    # The lease restarts too, as hold_for_rating would have done (one row version instead of two).
    " UPDATE rating_assignment SET status = %(assignment_status)s, submitted_at = %(now)s, updated_at = %(now)s,"
    " last_active_at = %(now)s, lease_expires_at = %(now)s + make_interval(mins => (SELECT lease_minutes"
    " FROM rating_campaign WHERE id = campaign_id)) WHERE id = %(assignment)s"
)
_SUBMIT_TYPES = {"rating_status": "varchar(20)", "now": "timestamptz", "overall_comment": "text",
                 "rating": "bigint", "assignment_status": "varchar(20)", "assignment": "bigint"}
# By the number of new score rows (0 to the rubric's axes): the submission's writes, prepared once each.
_submit_statements: dict[int, Prepared] = {}


def _submit_statement(new_scores: int) -> Prepared:
    if new_scores not in _submit_statements:
        parts, types = [], dict(_SUBMIT_TYPES)
        if new_scores:
            sql, score_types = insert_sql(AxisScore, new_scores, prefix="s")
            parts.append(sql)
            types.update(score_types)
        parts.append(_SUBMIT_UPDATES)
        sql, event_types = insert_sql(AuditEvent, prefix="e")
        _submit_statements[new_scores] = Prepared(f"mhsd_submit_{new_scores}", "; ".join([*parts, sql]),
                                                  {**types, **event_types})
    return _submit_statements[new_scores]


def _submit_edit(edit: _Edit, assignment: Assignment, actor) -> None:
    """Write the edit's scores and submit: the scores' insert, the rating's and the assignment's updates
    and the audit event in one round trip (scores that existed and changed take one more)."""
    rating = edit.rating
    rows = list(edit.dirty_scores.values())
    AxisScore.objects.bulk_update([row for row in rows if row.pk is not None], ["value", "category", "comment"])
    new_rows = [row for row in rows if row.pk is None]
    now = timezone.now()
    rating.status, rating.submitted_at, rating.updated_at = Rating.Status.SUBMITTED, now, now
    event = AuditEvent(actor=actor if getattr(actor, "is_authenticated", False) else None,
                       action="rating.submit", object_type=rating._meta.label_lower, object_id=str(rating.pk),
                       data={"old": {"status": "draft"}, "new": {"status": "submitted", **_edit_snapshot(edit)},
                             "assignment": assignment.pk})
    params = {"rating_status": rating.status, "now": now, "overall_comment": rating.overall_comment,
              "rating": rating.pk, "assignment_status": Assignment.Status.SUBMITTED, "assignment": assignment.pk,
              **insert_params(AxisScore, new_rows, prefix="s"), **insert_params(AuditEvent, [event], prefix="e")}
    with connection.cursor() as cursor:
        _submit_statement(len(new_rows)).execute(cursor, params)
    assignment.status, assignment.submitted_at, assignment.updated_at = Assignment.Status.SUBMITTED, now, now
    events.ratings_changed(assignment.campaign_id)


# --- heartbeat: lease renewal and time on task ------------------------------------------------------


@dataclass
class HeartbeatOutcome:
    credited: int = 0
    active_seconds: int = 0
    lease_expires_at: object = None
    problem: str = ""


def record_heartbeat(assignment: Assignment, reported_seconds, *, renew: bool = True) -> HeartbeatOutcome:
    """Credit active time and keep a live lease alive. The browser decides what counts as active (visible
    tab, recent input); the server credits at most HEARTBEAT_SECONDS per beat and never more than the wall
    time since the previous beat, so a stuck or hostile client cannot inflate time on task.

    A beat never takes back a lapsed or released conversation (an admin's "Release now" stays released),
    and it keeps the lease only up to the lease length after the last credited activity: a tab left open
    and idle lets its conversation go, and shows as stuck meanwhile. `renew=False` (the page-close beacon)
    credits time and renews nothing."""
    outcome = HeartbeatOutcome()
    try:
        seconds = max(0, int(float(reported_seconds or 0)))
    except (TypeError, ValueError):
        seconds = 0
    campaign = Campaign.objects.only("status").get(pk=assignment.campaign_id)
    if campaign.status != Campaign.Status.OPEN:
        outcome.problem = "This campaign is closed."
        return outcome
    if not campaign.raters.filter(pk=assignment.rater_id).exists():
        outcome.problem = "You are no longer a rater in this campaign."
        return outcome
    with transaction.atomic():
        a = Assignment.objects.get(pk=assignment.pk)
        if a.status == Assignment.Status.SKIPPED:
            outcome.problem = "You skipped this conversation."
            return outcome
        now = timezone.now()
        if a.status == Assignment.Status.SUBMITTED:
            # A revision in progress: time on task counts, there is no lease to keep.
            a = Assignment.objects.select_for_update(of=("self",), no_key=True).get(pk=a.pk)
        else:
            a = assigning.extend_live_lease(a, active=seconds > 0, renew=renew)
            if a is None:
                outcome.problem = ("Your hold on this conversation lapsed. It becomes yours again when you make a "
                                   "change, unless another rater has it by then.")
                return outcome
        since = a.last_heartbeat_at or a.updated_at or a.created_at
        elapsed = max(0, int((now - since).total_seconds()))
        credit = min(seconds, HEARTBEAT_SECONDS, elapsed)
        a.active_seconds += credit
        a.last_heartbeat_at = now
        a.save(update_fields=["active_seconds", "last_heartbeat_at", "last_active_at", "lease_expires_at"])
    outcome.credited, outcome.active_seconds = credit, a.active_seconds
    outcome.lease_expires_at = a.lease_expires_at if a.status == Assignment.Status.ACTIVE else None
    return outcome


# --- safety flags --------------------------------------------------------------------------------


def raise_safety_flag(assignment: Assignment, actor, category: str, reason: str,
                      message_index: int | None = None) -> SafetyFlag:
    """A rater's concern about a conversation; it reaches the admin safety queue at once. Accepted in
    any campaign state: a safety concern is never refused for being late."""
    reason = (reason or "").strip()
    errors = {}
    if category not in SafetyFlag.Category.values:
        errors["category"] = "Choose what kind of concern this is."
    if not reason:
        errors["reason"] = "Describe the concern."
    elif _too_long(reason):
        errors["reason"] = f"At most {MAX_TEXT_CHARS} characters."
    message = None
    if message_index is not None:
        message = assignment.item.conversation.messages.filter(index=message_index).first()
        if message is None:
            errors["message"] = "This conversation has no such message."
    if errors:
        raise SubmitRejected(errors)
    flag = SafetyFlag.objects.create(
        conversation=assignment.item.conversation, campaign=assignment.campaign, raised_by=actor,
        category=category, reason=reason, message=message,
    )
    record(actor, "safety_flag.raise", flag, new={"category": category, "reason": reason,
                                                  "message_index": message_index, "assignment": assignment.pk})
    return flag


FLAG_ACTIONS = {"acknowledge": SafetyFlag.Status.ACKNOWLEDGED, "resolve": SafetyFlag.Status.RESOLVED,
                "reopen": SafetyFlag.Status.OPEN}


def handle_safety_flag(flag: SafetyFlag, actor, action: str, note: str = "") -> SafetyFlag:
    """Acknowledge, resolve (a note is required) or reopen a flag; audited with old and new values."""
    note = (note or "").strip()
    if action not in FLAG_ACTIONS:
        raise RatingError(f"Unknown action “{action}”.")
    if action == "resolve" and not note:
        raise RatingError("Say what was done before resolving the flag.")
    if _too_long(note):
        raise RatingError(f"Notes are limited to {MAX_TEXT_CHARS} characters.")
    with transaction.atomic():
        flag = SafetyFlag.objects.select_for_update(of=("self",), no_key=True).get(pk=flag.pk)
        old = {"status": flag.status, "resolution_note": flag.resolution_note}
        flag.status = FLAG_ACTIONS[action]
        if note:
            flag.resolution_note = note
        flag.handled_by = actor
        flag.handled_at = timezone.now()
        flag.save()
        record(actor, f"safety_flag.{action}", flag, old=old,
               new={"status": flag.status, "resolution_note": flag.resolution_note})
    return flag
