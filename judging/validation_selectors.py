"""What the validation page shows, blinded like the rating page (see rating/selectors.py).

Only plain dataclasses leave this module: the transcript comes from rating's blinded_conversation, and
the judge's part is its score, the anchor label of that score, its rationale and cited message numbers.
The judge's model, provider, run name, raw reply and other clinicians' verdicts are never read into
them. The rationale is free text written by a model, so any name of the judge or of the models, jobs and
personas behind the conversation is redacted from it before it reaches the page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from generation.models import Conversation
from rating.campaigns import identity_terms
from rating.models import Assignment, Campaign
from rating.selectors import GROUP_LABELS, BlindedConversation, blinded_conversation

from .models import ValidationReview
from .validation import AGREE, DISAGREE, judge_identity_terms, judged_axes, name_pattern, review_for

REDACTED = "[name withheld]"


def redact(text: str, terms) -> str:
    """Replace every whole-word, any-case, any-spacing occurrence of the terms (longest first)."""
    for term in sorted(terms, key=len, reverse=True):
        text = re.sub(name_pattern(term), REDACTED, text, flags=re.IGNORECASE)
    return text


@dataclass
class VerdictAxisView:
    key: str
    name: str
    group: str
    help_text: str
    kind: str
    points: list
    shows_ground_truth: bool
    judge_value: float
    judge_label: str
    rationale: str
    cited: list[int]
    verdict: str | None = None
    corrected: int | None = None
    comment: str = ""
    errors: dict = field(default_factory=dict)

    @property
    def judge_display(self) -> str:
        return f"{self.judge_value:g}"

    @property
    def agrees(self) -> bool:
        return self.verdict == AGREE

    @property
    def disagrees(self) -> bool:
        return self.verdict == DISAGREE

    @property
    def field(self) -> str:
        return f"value__{self.key}"

    @property
    def verdict_error(self) -> str:
        return self.errors.get(f"verdict__{self.key}", "")

    @property
    def value_error(self) -> str:
        return self.errors.get(f"value__{self.key}", "")

    @property
    def comment_error(self) -> str:
        return self.errors.get(f"comment__{self.key}", "")

    @property
    def error(self) -> str:
        return self.verdict_error or self.value_error


@dataclass
class VerdictGroup:
    key: str
    label: str
    axes: list[VerdictAxisView]

    @property
    def shows_ground_truth(self) -> bool:
        return any(a.shows_ground_truth for a in self.axes)


@dataclass
class ValidationPage:
    assignment_id: int
    campaign_id: int
    campaign_name: str
    campaign_open: bool
    on_roster: bool
    rubric_name: str
    rubric_version: int
    instructions: str
    conversation: BlindedConversation
    groups: list[VerdictGroup]
    overall_comment: str
    status: str
    assignment_status: str
    submitted_at: object
    revision: int
    errors: dict
    citation: str = ""
    problem: str = ""

    @property
    def is_submitted(self) -> bool:
        return self.status == ValidationReview.Status.SUBMITTED

    @property
    def editable(self) -> bool:
        return self.campaign_open and self.on_roster and self.assignment_status != Assignment.Status.SKIPPED

    @property
    def axes(self) -> list[VerdictAxisView]:
        return [a for g in self.groups for a in g.axes]

    @property
    def error_list(self) -> list[tuple[str, str]]:
        return list(self.errors.items())


def _label(points: list, value: float) -> str:
    for p in points:
        if float(p.get("value")) == float(value):
            return str(p.get("label", ""))
    return ""


def validation_page(assignment: Assignment, errors: dict | None = None) -> ValidationPage:
    errors = errors or {}
    campaign = assignment.campaign
    review = review_for(assignment)
    axes = judged_axes(review)
    verdicts = {v.axis_id: v for v in review.verdicts.all()}
    terms = {**identity_terms(Conversation.objects.filter(pk=assignment.item.conversation_id)),
             **judge_identity_terms(review.validation.judge_run)}
    groups: list[VerdictGroup] = []
    by_key: dict[str, VerdictGroup] = {}
    for key, (axis, score) in axes.items():
        points = axis.points or [{"value": v, "label": str(v)} for v in axis.allowed_values()]
        v = verdicts.get(axis.pk)
        view = VerdictAxisView(
            key=key, name=axis.name, group=axis.group, help_text=axis.help_text, kind=axis.kind, points=points,
            shows_ground_truth=axis.shows_ground_truth, judge_value=score.value,
            judge_label=_label(points, score.value), rationale=redact(score.rationale, terms),
            cited=[n for n in score.cited_messages if isinstance(n, int)],
            verdict=(AGREE if v.agrees else DISAGREE if v.agrees is False else None) if v else None,
            corrected=int(v.corrected_value) if v and v.corrected_value is not None else None,
            comment=v.comment if v else "", errors=errors,
        )
        group_key = axis.group or f"axis:{key}"
        if group_key not in by_key:
            label = GROUP_LABELS.get(axis.group, axis.group.replace("_", " ").capitalize() if axis.group else "")
            by_key[group_key] = VerdictGroup(key=group_key, label=label, axes=[])
            groups.append(by_key[group_key])
        by_key[group_key].axes.append(view)
    conversation = blinded_conversation(
        assignment, with_ground_truth=any(a.shows_ground_truth for a, _ in axes.values()))
    rubric = campaign.rubric
    return ValidationPage(
        assignment_id=assignment.pk, campaign_id=campaign.pk, campaign_name=campaign.name,
        campaign_open=campaign.status == Campaign.Status.OPEN,
        on_roster=campaign.raters.filter(pk=assignment.rater_id).exists(),
        rubric_name=rubric.name, rubric_version=rubric.version, instructions=rubric.instructions,
        conversation=conversation, groups=groups, overall_comment=review.overall_comment, status=review.status,
        assignment_status=assignment.status, submitted_at=review.submitted_at, revision=review.revision,
        errors=errors, citation=rubric.citation,
    )
