"""Read side of the results: campaign ratings as reliability matrices, conversation facts, snapshots.

Only SUBMITTED ratings count (drafts are work in progress). Each read is one query per campaign, never
one per conversation, so a 10,000-conversation campaign loads in well under a second.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC

import numpy as np
from django.db.models import Case, Count, FloatField, Max, Q, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Extract

from accounts.models import User
from generation.models import Conversation, Message
from rating.models import AxisScore, Campaign, CampaignItem, Rating, RubricAxis
from rating.rubric_files import LEVEL_FOR_KIND

from .judge_selectors import judge_fingerprint
from .models import AgreementSnapshot, AxisAgreement


def axis_level(axis: RubricAxis) -> str:
    """Krippendorff's level of measurement of an axis: ordinal Likert, nominal binary, interval numbers."""
    return axis.agreement_level or LEVEL_FOR_KIND.get(axis.kind, "interval")


def axis_categories(axis: RubricAxis) -> list[float] | None:
    """Every possible value of the axis (from its scale), so unused categories still count where they
    matter (Gwet's AC1/AC2); None for unbounded (computed) axes. A nominal axis's categories are their
    codes 0..q-1 in the rubric's order (see campaign_ratings)."""
    if axis.is_nominal:
        return [float(i) for i in range(len(axis.category_keys()))]
    values = axis.allowed_values()
    return [float(v) for v in values] if values else None


def rated_axes(campaign: Campaign) -> list[RubricAxis]:
    return [axis for axis in campaign.rubric.axes.order_by("order", "id") if axis.is_rated]


@dataclass
class CampaignRatings:
    """Submitted ratings of one campaign, one units x raters matrix per rated axis (NaN = not rated).

    Rows are the conversations with at least one submitted rating (ascending id), columns the raters
    with at least one submitted rating (ascending user id), the same on every axis.
    """

    campaign_id: int
    axes: list[RubricAxis]
    conversation_ids: np.ndarray
    rater_ids: list[int]
    rater_labels: list[str]
    matrices: dict[str, np.ndarray]
    # Submission time of each rating (epoch seconds), NaN where the rater has no submitted rating.
    times: np.ndarray
    gold: dict[str, np.ndarray | None] = field(default_factory=dict)
    n_ratings: int = 0

    def level(self, key: str) -> str:
        return axis_level(self.axis(key))

    def axis(self, key: str) -> RubricAxis:
        return next(a for a in self.axes if a.key == key)

    def times_for(self, key: str) -> np.ndarray:
        """Submission times where this axis has a value (what the drift check needs)."""
        return np.where(np.isnan(self.matrices[key]), np.nan, self.times)

    def input_hash(self) -> str:
        """SHA-256 of exactly the values used, so a published figure can be tied to its inputs."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.conversation_ids, dtype=np.int64).tobytes())
        digest.update(json.dumps(list(zip(self.rater_ids, self.rater_labels, strict=True))).encode())
        for axis in self.axes:
            digest.update(axis.key.encode())
            digest.update(np.ascontiguousarray(self.matrices[axis.key]).tobytes())
            gold = self.gold.get(axis.key)
            digest.update(b"-" if gold is None else np.ascontiguousarray(gold).tobytes())
        return digest.hexdigest()


def campaign_ratings(campaign: Campaign) -> CampaignRatings:
    """Build the per-axis matrices of a campaign with ONE query over its submitted axis scores."""
    axes = rated_axes(campaign)
    axis_index = {axis.pk: i for i, axis in enumerate(axes)}
    # Nominal axes store a category key: it enters the matrix as its code (position in the rubric's list).
    codes = {axis.pk: {key: float(i) for i, key in enumerate(axis.category_keys())} for axis in axes if axis.is_nominal}
    answer = Coalesce("value", Case(*[When(axis_id=pk, category=key, then=Value(code)) for pk, keys in codes.items()
                                      for key, code in keys.items()], output_field=FloatField())) if codes else "value"
    rows = list(
        AxisScore.objects.filter(
            Q(value__isnull=False) | Q(category__isnull=False) if codes else Q(value__isnull=False),
            rating__assignment__campaign_id=campaign.pk,
            rating__status=Rating.Status.SUBMITTED,
            axis_id__in=list(axis_index),
        )
        .order_by()
        .values_list(
            "axis_id",
            "rating__assignment__item__conversation_id",
            "rating__assignment__rater_id",
            answer,
            # Epoch seconds in SQL: building 100,000s of aware datetimes in Python costs more than the stats.
            Cast(Extract("rating__submitted_at", "epoch", tzinfo=UTC), FloatField()),
        )
    )
    if rows:
        data = np.array(rows, dtype=np.float64)
    else:
        data = np.empty((0, 5))
    conv_ids, unit = np.unique(data[:, 1].astype(np.int64), return_inverse=True)
    rater_ids, col = np.unique(data[:, 2].astype(np.int64), return_inverse=True)
    n_units, n_raters = conv_ids.size, rater_ids.size
    axis_pos = np.array([axis_index[int(a)] for a in data[:, 0]], dtype=np.int64) if rows else np.empty(0, np.int64)

    matrices = {}
    for i, axis in enumerate(axes):
        m = np.full((n_units, n_raters), np.nan)
        sel = axis_pos == i
        m[unit[sel], col[sel]] = data[sel, 3]
        matrices[axis.key] = m
    times = np.full((n_units, n_raters), np.nan)
    times[unit, col] = data[:, 4]

    labels = dict(User.objects.filter(pk__in=rater_ids.tolist()).values_list("pk", "pseudonym"))
    gold_rows = dict(
        CampaignItem.objects.filter(campaign_id=campaign.pk, is_gold=True).values_list("conversation_id", "gold_scores")
    )
    # Gold conversations nobody has rated yet have no row, so they cannot enter the statistics.
    gold_at = {}
    for conv_id, scores in gold_rows.items():
        r = int(np.searchsorted(conv_ids, conv_id))
        if r < n_units and conv_ids[r] == conv_id:
            gold_at[r] = scores or {}
    gold = {}
    for axis in axes:
        vector = np.full(n_units, np.nan)
        for r, scores in gold_at.items():
            value = scores.get(axis.key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                vector[r] = float(value)
        gold[axis.key] = None if np.isnan(vector).all() else vector
    n_ratings = int((~np.isnan(times)).sum())
    return CampaignRatings(
        campaign_id=campaign.pk,
        axes=axes,
        conversation_ids=conv_ids,
        rater_ids=rater_ids.tolist(),
        rater_labels=[labels.get(r, f"user-{r}") for r in rater_ids.tolist()],
        matrices=matrices,
        times=times,
        gold=gold,
        n_ratings=n_ratings,
    )


def nominal_references(campaign: Campaign, data: CampaignRatings) -> dict[str, dict]:
    """For each nominal axis that names a reference ("condition" or "metadata.<name>", the metadata an
    imported conversation came with), the reference label of every rated conversation as its category code
    (NaN where there is none), and how many conversations had a label that is not one of the axis's
    categories (left out, never guessed). One query for all axes."""
    axes = [a for a in data.axes if a.is_nominal and a.reference]
    if not axes or not data.conversation_ids.size:
        return {}
    fields = {a.key: ("condition" if a.reference == "condition"
                      else KT(f"provenance__metadata__{a.reference.removeprefix('metadata.')}")) for a in axes}
    rows = Conversation.objects.filter(pk__in=data.conversation_ids.tolist()).annotate(
        **{f"ref_{key}": expr for key, expr in fields.items() if expr != "condition"}).values_list(
        "id", *[("condition" if expr == "condition" else f"ref_{key}") for key, expr in fields.items()])
    labels = {row[0]: row[1:] for row in rows}
    out = {}
    for i, axis in enumerate(axes):
        code = {key: float(c) for c, key in enumerate(axis.category_keys())}
        vector = np.full(data.conversation_ids.size, np.nan)
        unknown = 0
        for r, conv_id in enumerate(data.conversation_ids.tolist()):
            label = (labels.get(conv_id) or (None,) * len(axes))[i]
            label = label.strip() if isinstance(label, str) else label
            if label in (None, ""):
                continue
            if label in code:
                vector[r] = code[label]
            else:
                unknown += 1
        out[axis.key] = {"codes": vector, "n_not_a_category": unknown, "source": axis.reference}
    return out


def conversation_means(ratings: CampaignRatings) -> dict[str, np.ndarray]:
    """Per axis, each conversation's mean over its raters (NaN if nobody rated that axis there).

    Model comparisons and results tables use these, so a conversation rated by three clinicians counts
    once, not three times."""
    from .stats import unit_means

    return {key: unit_means(matrix) for key, matrix in ratings.matrices.items()}


@dataclass
class ConversationFacts:
    """Facts about every conversation of a campaign, as parallel arrays (ascending id).

    `model` is the group label of the results tables: the sensemaker model string, with SIMULATED_MARK
    appended when any model of the conversation was the offline simulator (Conversation.is_simulated),
    so simulator output is never pooled with, or mistaken for, a real model's."""

    ids: np.ndarray
    model: list[str]
    simulated: list[bool]
    smog: np.ndarray
    sensemaker_messages: np.ndarray
    trait: list[str]
    literacy: list[str]
    condition: list[str]
    source: list[str]

    def rows_of(self, conversation_ids: np.ndarray) -> np.ndarray:
        """Positions in these arrays of the given conversation ids (all must belong to the campaign)."""
        pos = np.searchsorted(self.ids, conversation_ids)
        if conversation_ids.size and (pos.max() >= self.ids.size or (self.ids[pos] != conversation_ids).any()):
            raise ValueError("a rated conversation is not an item of the campaign")
        return pos


UNKNOWN_MODEL = "(model not recorded)"
SIMULATED_MARK = " [simulated]"


def model_label(model: str | None, is_simulated: bool) -> str:
    return (model or UNKNOWN_MODEL) + (SIMULATED_MARK if is_simulated else "")


def conversation_facts(campaign: Campaign) -> ConversationFacts:
    """One query: model string (generated and imported alike), SMOG grade, length and persona."""
    rows = list(
        Conversation.objects.filter(campaign_items__campaign_id=campaign.pk)
        .order_by("id")
        .values_list(
            "id", "sensemaker_model", "smog_grade", "sensemaker_message_count", "persona__trait",
            "persona__literacy", "condition", "source", "is_simulated",
        )
    )
    return ConversationFacts(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        model=[model_label(r[1], r[8]) for r in rows],
        simulated=[bool(r[8]) for r in rows],
        smog=np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
        sensemaker_messages=np.array([r[3] for r in rows], dtype=np.int64),
        trait=[r[4] or "" for r in rows],
        literacy=[r[5] or "" for r in rows],
        condition=[r[6] or "" for r in rows],
        source=[r[7] for r in rows],
    )


def stage_message_counts(campaign: Campaign) -> list[tuple[str, int | None, int]]:
    """(model label, stage, number of messages) over the campaign's conversations, both roles,
    aggregated in SQL (the paper's Table 1 counts messages per stage)."""
    rows = (
        Message.objects.filter(conversation__campaign_items__campaign_id=campaign.pk)
        .values_list("conversation__sensemaker_model", "conversation__is_simulated", "stage")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(model_label(model, simulated), stage, n) for model, simulated, stage, n in rows]


def ratings_fingerprint(campaign_id: int) -> str:
    """Changes whenever a rating of the campaign is submitted or revised, gold answers change, or a judge
    run of the campaign finishes.

    A revision saves the Rating row (its updated_at moves); drafts are ignored, they are not results."""
    agg = Rating.objects.filter(assignment__campaign_id=campaign_id, status=Rating.Status.SUBMITTED).aggregate(
        n=Count("id"), last=Max("updated_at"), last_submit=Max("submitted_at")
    )
    gold = list(
        CampaignItem.objects.filter(campaign_id=campaign_id, is_gold=True)
        .order_by("conversation_id")
        .values_list("conversation_id", "gold_scores")
    )
    rubric_id = Campaign.objects.filter(pk=campaign_id).values_list("rubric_id", flat=True).first()
    parts = [
        agg["n"],
        agg["last"].isoformat() if agg["last"] else None,
        agg["last_submit"].isoformat() if agg["last_submit"] else None,
        rubric_id,
        gold,
        # Finished judge runs and their scores: a run finishing makes the snapshot stale too.
        judge_fingerprint(campaign_id),
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def has_submitted_ratings(campaign_id: int) -> bool:
    return Rating.objects.filter(assignment__campaign_id=campaign_id, status=Rating.Status.SUBMITTED).exists()


# --- snapshots ---------------------------------------------------------------------------------------


def latest_snapshot(campaign) -> AgreementSnapshot | None:
    campaign_id = getattr(campaign, "pk", campaign)
    return AgreementSnapshot.objects.filter(campaign_id=campaign_id).order_by("-computed_at", "-id").first()


def is_stale(snapshot: AgreementSnapshot) -> bool:
    return snapshot.input_fingerprint != ratings_fingerprint(snapshot.campaign_id)


def alpha_history(campaign, limit: int = 200) -> list[dict]:
    """Alpha with its CI per axis over successive snapshots (oldest first), thinned to at most `limit`
    snapshots evenly spread over time so the plot stays readable and cheap."""
    campaign_id = getattr(campaign, "pk", campaign)
    snapshot_ids = list(
        AgreementSnapshot.objects.filter(campaign_id=campaign_id)
        .order_by("computed_at", "id")
        .values_list("id", flat=True)
    )
    if len(snapshot_ids) > limit:
        step = (len(snapshot_ids) - 1) / (limit - 1)
        snapshot_ids = sorted({snapshot_ids[round(i * step)] for i in range(limit)})
    rows = (
        AxisAgreement.objects.filter(snapshot_id__in=snapshot_ids)
        .order_by("snapshot__computed_at", "snapshot_id", "axis__order", "axis_id")
        .values_list(
            "snapshot_id", "snapshot__computed_at", "axis_key", "axis__name", "alpha", "alpha_ci_low",
            "alpha_ci_high", "n_pairable", "snapshot__n_ratings",
        )
    )
    return [
        {
            "snapshot": s, "computed_at": t, "axis": key, "axis_name": name, "alpha": a, "ci_low": lo,
            "ci_high": hi, "n": n, "n_ratings": n_ratings,
        }
        for s, t, key, name, a, lo, hi, n, n_ratings in rows
    ]


def precomputed_agreement(campaign) -> dict | None:
    """The newest snapshot's agreement in the shape results.agreement expects, or None when there is no
    snapshot or it no longer matches the ratings (the API then computes afresh rather than serve
    stale figures)."""
    snapshot = latest_snapshot(campaign)
    if snapshot is None or snapshot.compacted or is_stale(snapshot):
        return None
    axes = [
        {"axis": row.axis_key, "name": row.axis.name, "level": row.level, "statistics": row.statistics}
        for row in snapshot.axes.select_related("axis").order_by("axis__order", "axis_id")
    ]
    return {
        "computed_at": snapshot.computed_at,
        "snapshot_id": snapshot.pk,
        "n_boot": snapshot.n_boot,
        "seed": snapshot.seed,
        "input_hash": snapshot.input_hash,
        "drift_flagged": snapshot.drift_flagged,
        "axes": axes,
    }


def drift_alerts(campaign) -> list[dict]:
    """Raters whose agreement drifted down, from the newest snapshot (for the campaign page)."""
    snapshot = latest_snapshot(campaign)
    return list(snapshot.drift_flagged) if snapshot is not None else []


def snapshot_summary(campaign_ids) -> dict[int, dict]:
    """Newest snapshot time and drift count per campaign, for the results index (one query)."""
    out = {}
    rows = (
        AgreementSnapshot.objects.filter(campaign_id__in=list(campaign_ids))
        .order_by("campaign_id", "-computed_at", "-id")
        .distinct("campaign_id")
        .values_list("campaign_id", "computed_at", "n_ratings", "drift_flagged", "input_fingerprint")
    )
    for campaign_id, computed_at, n_ratings, drift, fingerprint in rows:
        out[campaign_id] = {
            "computed_at": computed_at, "n_ratings": n_ratings, "n_drift": len(drift or []), "fingerprint": fingerprint
        }
    return out

