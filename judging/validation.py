"""Validation mode (issue 10, as in the paper): clinicians see a judge's score and rationale per axis and
agree or disagree, giving a corrected score when they disagree.

A validation campaign is an ordinary rating.Campaign (so assignment, k, leases, heartbeats, skip and
safety flags are rating's own, with all their guarantees) plus a ValidationCampaign row naming the
judge run and sample shown. Verdicts are ValidationReview/ValidationVerdict rows here, never
rating.Rating scores. Drafts are saved on every change; before the first submission they are the
clinician's scratch space, from submission on every change is audited with old and new values.
"""
from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from audit.services import record
from generation.models import Conversation
from rating import assignment as assigning
from rating import campaigns as rating_campaigns
from rating.models import Assignment, Campaign, RubricAxis
from rating.services import DraftChanges, SaveOutcome, changes_from_post
from rating.services import _parse_value as parse_score  # a correction obeys exactly a rating's rules

from .models import JudgeItem, JudgeRun, JudgeScore, ValidationCampaign, ValidationReview, ValidationVerdict

MAX_TEXT_CHARS = 5000
# Campaign.selection marks a validation campaign, so rating's views can route its assignments here
# without a query (see rating/extensions.py).
SELECTION_KEY = "judge_validation"
# A run's scores can be validated once it has stopped producing them.
FINISHED = (JudgeRun.Status.DONE, JudgeRun.Status.FAILED)
AGREE, DISAGREE = "agree", "disagree"


class ValidationModeError(Exception):
    """An operation that cannot be done; `errors` maps form field names (or "__all__") to messages."""

    def __init__(self, errors: dict[str, str] | str):
        self.errors = errors if isinstance(errors, dict) else {"__all__": errors}
        super().__init__("; ".join(self.errors.values()))


class ReviewRejected(ValidationModeError):
    """The review cannot be submitted yet: per-field errors, shown beside each axis."""


# --- creating a validation campaign -----------------------------------------------------------------


def judged_items(run: JudgeRun, sample_index: int):
    """The run's finished items of one sample that hold at least one score: what clinicians can validate."""
    return (
        JudgeItem.objects.filter(run=run, sample_index=sample_index, status=JudgeItem.Status.DONE)
        .annotate(n_scores=Count("scores")).filter(n_scores__gt=0)
    )


def judge_identity_terms(run: JudgeRun) -> dict[str, str]:
    """What names the judge: its configuration's name and model string (with provider and model parts)."""
    terms: dict[str, str] = {}
    config = run.judge_model
    for model in {config.model, str(run.model_snapshot.get("model", ""))} - {""}:
        terms[model.lower()] = "the judge model"
        provider, _, rest = model.rpartition("/")
        if provider:
            terms.setdefault(rest.lower(), "the judge model")
            terms.setdefault(provider.split("/")[0].lower(), "the judge's provider")
    terms.setdefault(config.name.lower(), "the judge's model configuration")
    return {t: what for t, what in terms.items() if len(t) >= 3}


_SEPARATORS = r"[-_.\s]+"


def name_pattern(term: str) -> str:
    """A regex for `term` as a whole word, in any case, however it is spelled apart: "gpt-4o-mini" also
    matches "GPT 4o mini", "gpt_4o.mini" and "gpt4omini", so a rationale cannot name a model by
    re-spacing its name."""
    parts = [re.escape(part) for part in re.split(_SEPARATORS, term.strip()) if part]
    return r"(?<!\w)" + r"[-_.\s]*".join(parts) + r"(?!\w)"


def _mentioned(text: str, terms: dict[str, str]) -> list[str]:
    return sorted(f"“{t}” ({what})" for t, what in terms.items()
                  if re.search(name_pattern(t), text or "", flags=re.IGNORECASE))


def creation_errors(run: JudgeRun | None, *, name: str, description: str, raters, overlap_k: int,
                    lease_minutes: int, sample_index: int) -> tuple[dict[str, str], list[int]]:
    """What is wrong with these settings (by form field), and the conversations the campaign would hold."""
    if run is None:
        return {"judge_run": "Choose a judge run."}, []
    errors: dict[str, str] = {}
    if run.status not in FINISHED:
        errors["judge_run"] = (f"“{run.name}” is {run.get_status_display().lower()}: validate a run once it has "
                               "finished.")
    if not 0 <= sample_index < run.samples:
        errors["sample_index"] = f"This run has samples 0 to {run.samples - 1}."
    conversation_ids = list(judged_items(run, sample_index).values_list("conversation_id", flat=True))
    if not conversation_ids and not errors:
        errors["judge_run"] = f"The run has no scored conversation for sample {sample_index}."
    errors.update(rating_campaigns.settings_errors(
        name=name, raters=list(raters), overlap_k=overlap_k, lease_minutes=lease_minutes, description=description,
        conversations=Conversation.objects.filter(pk__in=conversation_ids),
    ))
    judge_terms = judge_identity_terms(run)
    for form_field, text in (("name", name), ("description", description)):
        found = _mentioned(text, judge_terms)
        if found and form_field not in errors:
            errors[form_field] = (f"Raters see the campaign's {form_field}, so it must not name the judge. "
                                  f"Remove: {'; '.join(found)}.")
    return errors, conversation_ids


@transaction.atomic
def create_validation_campaign(actor, *, judge_run: JudgeRun | None, name: str, description: str = "", raters,
                               overlap_k: int, lease_minutes: int, sample_index: int = 0,
                               open_now: bool = False) -> ValidationCampaign:
    """A campaign over the run's scored conversations, in validation mode. Raises ValidationModeError."""
    raters = list(raters)
    errors, conversation_ids = creation_errors(
        judge_run, name=name, description=description, raters=raters, overlap_k=overlap_k,
        lease_minutes=lease_minutes, sample_index=sample_index)
    if errors:
        raise ValidationModeError(errors)
    try:
        # rating's one create_campaign: the same rules (blinding included) and audit event as any campaign.
        campaign = rating_campaigns.create_campaign(
            actor, name=name, description=description, rubric=judge_run.rubric, raters=raters,
            overlap_k=overlap_k, lease_minutes=lease_minutes, conversation_ids=conversation_ids)
    except rating_campaigns.CampaignError as exc:
        raise ValidationModeError(exc.errors) from exc
    # How the conversations were chosen, for provenance; it also marks the campaign for rating's routing.
    campaign.selection = {SELECTION_KEY: {"judge_run": judge_run.pk, "sample_index": sample_index},
                          "conversations": len(conversation_ids), "status": "done"}
    campaign.save(update_fields=["selection"])
    validation = ValidationCampaign.objects.create(campaign=campaign, judge_run=judge_run,
                                                   sample_index=sample_index, created_by=actor)
    record(actor, "judge_validation.create", validation, new={
        "campaign": campaign.pk, "judge_run": judge_run.pk, "sample_index": sample_index,
        "conversations": len(conversation_ids),
    })
    if open_now:
        validation.campaign = rating_campaigns.open_campaign(actor, campaign)
    return validation


# --- routing rating's pages (registered in JudgingConfig.ready) --------------------------------------


def is_validation_campaign(campaign: Campaign) -> bool:
    return SELECTION_KEY in (campaign.selection or {})


def validation_page_url(assignment: Assignment) -> str | None:
    """rating.extensions resolver: no query, the campaign row is already loaded with the assignment."""
    if is_validation_campaign(assignment.campaign):
        return reverse("judge_validation:validate", args=[assignment.pk])
    return None


# --- drafts, submission and revision -----------------------------------------------------------------


def validation_for(campaign_id: int) -> ValidationCampaign | None:
    return ValidationCampaign.objects.select_related("judge_run").filter(campaign_id=campaign_id).first()


def review_for(assignment: Assignment) -> ValidationReview:
    """The clinician's review of this assignment, created with the judge item it shows."""
    review = ValidationReview.objects.filter(assignment=assignment).first()
    if review is not None:
        return review
    validation = validation_for(assignment.campaign_id)
    if validation is None:
        raise ValidationModeError("This campaign is not in validation mode.")
    item = judged_items(validation.judge_run, validation.sample_index).filter(
        conversation_id=assignment.item.conversation_id).first()
    if item is None:  # e.g. a conversation added to the campaign after it was created from the run
        raise ValidationModeError("The judge has no scores for this conversation: please skip it.")
    review, _ = ValidationReview.objects.get_or_create(
        assignment=assignment, defaults={"validation": validation, "judge_item": item})
    return review


def judged_axes(review: ValidationReview) -> dict[str, tuple[RubricAxis, JudgeScore]]:
    """The axes the judge scored for this conversation (computed axes are never judged), by key."""
    scores = JudgeScore.objects.filter(item_id=review.judge_item_id).select_related("axis").order_by(
        "axis__order", "axis__id")
    return {s.axis.key: (s.axis, s) for s in scores if s.axis.is_rated}


def verdict_changes_from_post(data) -> tuple[DraftChanges, dict[str, str]]:
    """The rating form's fields (value__<axis> is the corrected score, comment__<axis>, overall_comment)
    plus verdict__<axis> = agree | disagree | "" (clear)."""
    changes = changes_from_post(data)
    verdicts = {}
    for name in data:
        prefix, _, key = name.partition("__")
        if prefix == "verdict" and key:
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
            verdicts[key] = (values[-1] if values else "").strip()
    return changes, verdicts


def _state(v: ValidationVerdict | None) -> dict:
    if v is None:
        return {"verdict": None, "corrected": None, "comment": ""}
    verdict = AGREE if v.agrees else DISAGREE if v.agrees is False else None
    corrected = v.corrected_value
    return {"verdict": verdict, "corrected": int(corrected) if corrected is not None else None,
            "comment": v.comment}


def _hold(assignment: Assignment) -> None:
    try:
        assigning.hold_for_rating(assignment)
    except assigning.AssignmentError as exc:
        raise ValidationModeError(str(exc)) from exc


def save_verdicts(assignment: Assignment, actor, changes: DraftChanges, verdicts: dict[str, str]) -> SaveOutcome:
    """Save the valid part of the changes; invalid fields are reported and nothing of them is saved.

    A corrected score implies disagreeing; agreeing clears the corrected score. Raises ValidationModeError
    when nothing can be changed (closed campaign, rater removed, skipped, lease lost): checked under
    rating's locks, inside the writing transaction, exactly as ratings are."""
    outcome = SaveOutcome(errors=dict(changes.bad_fields))
    review = review_for(assignment)
    with transaction.atomic():
        _hold(assignment)
        review = ValidationReview.objects.select_for_update(of=("self",), no_key=True).get(pk=review.pk)
        submitted = review.status == ValidationReview.Status.SUBMITTED
        axes = judged_axes(review)
        existing = {v.axis_id: v for v in review.verdicts.all()}
        rows: dict[str, ValidationVerdict] = {}
        old, new = {}, {}

        def row(key):
            axis, score = axes[key]
            if key not in rows:
                rows[key] = existing.get(axis.pk) or ValidationVerdict(review=review, axis=axis, judge_score=score)
                old[key] = _state(existing.get(axis.pk))
            return rows[key]

        for key in dict.fromkeys([*verdicts, *changes.values, *changes.comments]):
            if key not in axes:
                for name, sent in ((f"verdict__{key}", key in verdicts), (f"value__{key}", key in changes.values),
                                   (f"comment__{key}", key in changes.comments)):
                    if sent:
                        outcome.errors[name] = f"The judge gave no score for “{key}” here."
                continue
            axis, score = axes[key]
            if key in verdicts:
                name, choice = f"verdict__{key}", verdicts[key]
                if choice not in (AGREE, DISAGREE, ""):
                    outcome.errors[name] = "Choose agree or disagree."
                elif choice == "" and submitted:
                    outcome.errors[name] = f"{axis.name}: a submitted review keeps a verdict; choose one."
                else:
                    v = row(key)
                    v.agrees = {AGREE: True, DISAGREE: False, "": None}[choice]
                    if choice != DISAGREE:
                        v.corrected_value = None
                    outcome.saved.append(name)
            if key in changes.values:
                name = f"value__{key}"
                value, error = parse_score(axis, changes.values[key])
                if error is None and value is not None and value == score.value:
                    error = f"{score.value:g} is the judge's own score: choose Agree, or another score."
                current = rows.get(key) or existing.get(axis.pk)
                if error is None and value is None and submitted and current is not None and current.agrees is False:
                    error = f"{axis.name}: a disagreement needs the corrected score; choose one."
                if error:
                    outcome.errors[name] = error
                else:
                    v = row(key)
                    v.corrected_value = value
                    if value is not None:
                        v.agrees = False  # a corrected score is a disagreement
                    outcome.saved.append(name)
            if key in changes.comments:
                name = f"comment__{key}"
                if len(changes.comments[key]) > MAX_TEXT_CHARS:
                    outcome.errors[name] = f"Comments are limited to {MAX_TEXT_CHARS} characters."
                else:
                    row(key).comment = changes.comments[key]
                    outcome.saved.append(name)

        if changes.overall_comment is not None:
            if len(changes.overall_comment) > MAX_TEXT_CHARS:
                outcome.errors["overall_comment"] = f"Comments are limited to {MAX_TEXT_CHARS} characters."
            else:
                if changes.overall_comment != review.overall_comment:
                    old["overall_comment"], new["overall_comment"] = review.overall_comment, changes.overall_comment
                    review.overall_comment = changes.overall_comment
                outcome.saved.append("overall_comment")
        for name in changes.notes:
            outcome.errors[f"note__{name}"] = "Message notes are not part of a validation review."

        for key, v in rows.items():
            state = _state(v)
            if state != old[key]:
                new[key] = state
                v.save()
        old = {k: o for k, o in old.items() if k in new}
        if new:
            if submitted:
                review.revision += 1
                record(actor, "judge_validation.revise", review, old=old, new=new, revision=review.revision,
                       assignment=assignment.pk)
            review.save()
    return outcome


def completeness_errors(review: ValidationReview) -> dict[str, str]:
    """What stops the review from being submitted, by form field name."""
    verdicts = {v.axis_id: v for v in review.verdicts.all()}
    errors = {}
    for key, (axis, _score) in judged_axes(review).items():
        v = verdicts.get(axis.pk)
        if v is None or v.agrees is None:
            errors[f"verdict__{key}"] = f"{axis.name}: agree or disagree with the judge."
        elif v.agrees is False and v.corrected_value is None:
            errors[f"value__{key}"] = f"{axis.name}: you disagree, so give the corrected score."
    return errors


def snapshot(review: ValidationReview) -> dict:
    """Every verdict as plain JSON, for the audit trail."""
    return {"verdicts": {v.axis.key: _state(v) for v in review.verdicts.select_related("axis")},
            "overall_comment": review.overall_comment}


def submit_review(assignment: Assignment, actor, changes: DraftChanges | None = None,
                  verdicts: dict[str, str] | None = None) -> ValidationReview:
    """Save the changes, check every judged axis, submit (a submitted review stays submitted: its changes
    were revisions). Raises ReviewRejected with per-field errors; the valid part is kept."""
    outcome = save_verdicts(assignment, actor, changes or DraftChanges(), verdicts or {})
    review = review_for(assignment)
    errors = {**completeness_errors(review), **outcome.errors}
    if errors:
        raise ReviewRejected(errors)
    if review.status == ValidationReview.Status.SUBMITTED:
        return review
    with transaction.atomic():
        _hold(assignment)  # campaign open, rater on the roster, a place on the item
        review = ValidationReview.objects.select_for_update(of=("self",), no_key=True).get(pk=review.pk)
        if review.status == ValidationReview.Status.SUBMITTED:
            return review
        errors = completeness_errors(review)  # again under the lock: another tab may have cleared one
        if errors:
            raise ReviewRejected(errors)
        now = timezone.now()
        review.status, review.submitted_at = ValidationReview.Status.SUBMITTED, now
        review.save(update_fields=["status", "submitted_at", "updated_at"])
        # The assignment's state is rating's: submitted assignments occupy their item for good.
        Assignment.objects.filter(pk=assignment.pk).update(
            status=Assignment.Status.SUBMITTED, submitted_at=now, updated_at=now)
        assignment.refresh_from_db()
        record(actor, "judge_validation.submit", review, old={"status": "draft"},
               new={"status": "submitted", **snapshot(review)}, assignment=assignment.pk)
    return review


def submitted_verdicts(campaign_id: int):
    """Every submitted verdict of a validation campaign, for the results."""
    return ValidationVerdict.objects.filter(
        review__validation__campaign_id=campaign_id, review__status=ValidationReview.Status.SUBMITTED,
    ).filter(~Q(agrees=None))
