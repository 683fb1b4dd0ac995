"""Rubrics (versioned data), campaigns, assignments with leases, ratings, notes and safety flags."""
import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from generation.models import Conversation, Message


class Rubric(models.Model):
    """A versioned rubric. Ratings point at the exact version they were given under; an edit is a
    new version (see rating/rubrics.py), never a change to this row's axes."""

    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)
    source = models.JSONField(default=dict, blank=True, help_text="The rubric file this version was loaded from.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="rubric_slug_version_unique"),
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="rubric_one_default"),
            models.CheckConstraint(condition=Q(version__gte=1), name="rubric_version_positive"),
        ]

    def __str__(self):
        return f"{self.name} v{self.version}"


class AxisKind(models.TextChoices):
    ORDINAL = "ordinal", "Ordinal scale"
    BINARY = "binary", "Binary label"
    COMPUTED = "computed", "Computed automatically"
    # Named categories with no order (MHDash's dialog intent, concern type, risk level): the rating stores
    # the category key in AxisScore.category, never a number.
    NOMINAL = "nominal", "Named categories"


class RubricAxis(models.Model):
    Kind = AxisKind

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="axes")
    key = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Axes that belong together in the form (e.g. hard and soft diagnostic accuracy).
    group = models.CharField(max_length=80, blank=True)
    scale_min = models.IntegerField(null=True, blank=True)
    scale_max = models.IntegerField(null=True, blank=True)
    # [{"value": 1, "label": "Very poor", "anchor": "..."}, ...] for ordinal and binary axes;
    # [{"key": "high", "label": "High", "description": "...", "high_risk": true}, ...] for nominal axes.
    points = models.JSONField(default=list, blank=True)
    help_text = models.TextField(blank=True)
    required = models.BooleanField(default=True)
    # Diagnostic accuracy is judged against the ground truth; only such axes reveal it.
    shows_ground_truth = models.BooleanField(default=False)
    # For computed axes: what computes them (e.g. "smog").
    computed_by = models.CharField(max_length=40, blank=True)
    # For nominal axes: where a reference label comes from, "condition" or "metadata.<name>" (an imported
    # conversation's metadata). Never shown to raters; results compare their labels with it.
    reference = models.CharField(max_length=120, blank=True)
    agreement_level = models.CharField(
        max_length=20,
        choices=[("nominal", "nominal"), ("ordinal", "ordinal"), ("interval", "interval")],
        blank=True,
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rubric", "order", "id"]
        verbose_name_plural = "rubric axes"
        constraints = [
            models.UniqueConstraint(fields=["rubric", "key"], name="axis_key_unique_in_rubric"),
            models.CheckConstraint(
                condition=~Q(kind="ordinal")
                | (Q(scale_min__isnull=False) & Q(scale_max__isnull=False) & Q(scale_max__gt=F("scale_min"))),
                name="ordinal_axis_has_scale",
            ),
            models.CheckConstraint(
                condition=~Q(kind="binary") | (Q(scale_min=0) & Q(scale_max=1)), name="binary_axis_is_0_1"
            ),
            models.CheckConstraint(condition=~Q(kind="computed") | ~Q(computed_by=""), name="computed_axis_has_source"),
            models.CheckConstraint(
                condition=~Q(kind="nominal") | (Q(scale_min__isnull=True) & Q(scale_max__isnull=True)),
                name="nominal_axis_has_no_scale",
            ),
        ]

    def __str__(self):
        return f"{self.rubric.slug} v{self.rubric.version}: {self.name}"

    @property
    def is_rated(self) -> bool:
        return self.kind != self.Kind.COMPUTED

    @property
    def is_nominal(self) -> bool:
        return self.kind == self.Kind.NOMINAL

    def category_keys(self) -> list[str]:
        """The nominal axis's category keys in file order (their order on the page and in every table)."""
        return [p["key"] for p in self.points] if self.is_nominal else []

    def high_risk_keys(self) -> list[str]:
        return [p["key"] for p in self.points if p.get("high_risk")] if self.is_nominal else []

    def allowed_values(self) -> list[int]:
        if self.kind in (self.Kind.COMPUTED, self.Kind.NOMINAL) or self.scale_min is None:
            return []
        return list(range(self.scale_min, self.scale_max + 1))


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Campaign(models.Model):
    Status = CampaignStatus

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="campaigns")
    overlap_k = models.PositiveSmallIntegerField(default=2, help_text="Raters per conversation.")
    lease_minutes = models.PositiveIntegerField(default=60)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="rating_campaigns", blank=True)
    # The filters the conversations were chosen by, kept for provenance.
    selection = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="campaign_lease_positive"),
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
        ]

    def __str__(self):
        return self.name


SHUFFLE_SPACE = 2**31


def random_shuffle() -> int:
    return secrets.randbelow(SHUFFLE_SPACE)


class CampaignItem(models.Model):
    """A conversation in a campaign; gold items carry the expected scores for calibration."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="campaign_items")
    is_gold = models.BooleanField(default=False)
    gold_scores = models.JSONField(default=dict, blank=True)
    added_at = models.DateTimeField(default=timezone.now)
    # A random position, fixed at creation: each rater walks the campaign from their own starting point in
    # this order (rating.assignment, rule 4), read from the (campaign, occupants, shuffle) index instead of
    # sorting every item per request.
    shuffle = models.IntegerField(default=random_shuffle)
    # How many assignments are SUBMITTED or ACTIVE (a lapsed lease counts until it is reclaimed). Kept by a
    # database trigger on rating_assignment (migration 0005), so every writer keeps it exact, bulk updates
    # and admin actions included. It only CHOOSES candidates (fresh = 0, started = 1..k-1) through the
    # index below; the cap itself is always the recount under the item's row lock (rating.assignment).
    occupants = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["campaign", "id"]
        indexes = [models.Index(fields=["campaign", "occupants", "shuffle", "id"], name="campaignitem_walk")]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "conversation"], name="campaign_conversation_unique"),
            models.CheckConstraint(condition=Q(is_gold=True) | Q(gold_scores={}), name="gold_scores_only_on_gold"),
        ]

    def __str__(self):
        return f"{self.campaign} / conversation {self.conversation_id}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "In progress"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    RELEASED = "released", "Released (lease expired)"


class Assignment(models.Model):
    """A rater's claim on a campaign item. Active ones hold a lease that expires unless renewed."""

    Status = AssignmentStatus

    # No single-column indexes: an index in Meta leads with each (the unique (item, rater) with the item),
    # and every index is written by next's INSERT and, since a submission's UPDATE changes indexed columns,
    # by that too.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments",
                              db_index=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.TextField(blank=True)
    active_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # When time on task was last credited: a heartbeat can never credit more than the wall time since.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the rater last did something: an edit, or a heartbeat crediting active time. The lease never
    # runs past this plus the lease length, so a forgotten tab lets its conversation go.
    last_active_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "created_at"]
        constraints = [
            # The database itself refuses a second assignment of one conversation to one rater.
            models.UniqueConstraint(fields=["item", "rater"], name="assignment_item_rater_unique"),
            models.CheckConstraint(condition=Q(status__in=AssignmentStatus.values), name="assignment_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="active") | Q(lease_expires_at__isnull=False), name="active_assignment_has_lease"
            ),
            models.CheckConstraint(condition=~Q(status="skipped") | ~Q(skip_reason=""), name="skip_has_reason"),
        ]
        indexes = [
            models.Index(fields=["item", "status"]),
            models.Index(fields=["rater", "campaign", "status"]),
            # Occupancy counts and the lease reaper scan one campaign's active/submitted rows.
            models.Index(fields=["campaign", "status", "lease_expires_at"], name="assignment_campaign_lease"),
            # next reads a rater's own open rows (a live lease, lapsed drafts) on every request: only those
            # rows are in this index, so the read does not grow with the rater's submitted work.
            models.Index(fields=["campaign", "rater", "status", "-updated_at"], name="assignment_rater_open",
                         condition=Q(status__in=["active", "released"])),
        ]

    def __str__(self):
        return f"{self.rater} on {self.item}"


class PairShare(models.Model):
    """How many of a campaign's conversations two raters both occupy (SUBMITTED or ACTIVE, as
    CampaignItem.occupants counts them), kept by a database trigger on rating_assignment (migration 0007)
    so that next reads each partner's count from here instead of joining everything the rater holds.

    Each row belongs to `rater`: when one of the rater's assignments starts or stops occupying an item, the
    trigger adds +1 or -1 to (rater, partner) for every partner occupying that item, and to (rater, rater).
    So the number shared by two raters is the SUM of their two rows (either may be negative), and only the
    rater's own transactions write the rater's rows. (rater, rater) is how many the rater occupies."""

    # No single-column indexes: the two below lead with the campaign, and each index is one more write on
    # the hot path; deleting a user (rare) may scan.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    partner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    shared = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "rater", "partner"], name="pairshare_unique")]
        indexes = [models.Index(fields=["campaign", "partner", "rater"], name="pairshare_by_partner")]

    def __str__(self):
        return f"{self.rater_id} with {self.partner_id} in {self.campaign_id}: {self.shared}"


class RatingStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class Rating(models.Model):
    """The rater's scores for one assignment: a server-side draft until submitted."""

    Status = RatingStatus

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rating")
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="ratings")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    overall_comment = models.TextField(blank=True)
    revision = models.PositiveIntegerField(default=0, help_text="How many times it was revised after submission.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RatingStatus.values), name="rating_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False), name="submitted_rating_has_time"
            ),
        ]

    def __str__(self):
        return f"Rating of {self.assignment}"


class AxisScore(models.Model):
    # No index of its own: the unique (rating, axis) leads with it, and a submission inserts a row per axis.
    rating = models.ForeignKey(Rating, on_delete=models.CASCADE, related_name="scores", db_index=False)
    axis = models.ForeignKey(RubricAxis, on_delete=models.PROTECT, related_name="scores")
    value = models.FloatField(null=True, blank=True)
    # The chosen category key on a nominal axis (value stays NULL there). A database trigger (migration
    # 0006) also refuses a category on a numeric axis, a number on a nominal one and an unknown key.
    category = models.CharField(max_length=80, null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rating", "axis"], name="axis_score_unique"),
            models.CheckConstraint(condition=Q(value__isnull=True) | Q(category__isnull=True),
                                   name="axis_score_value_or_category"),
            models.CheckConstraint(condition=~Q(category=""), name="axis_score_category_not_empty"),
        ]

    def __str__(self):
        return f"{self.axis.key}={self.answer}"

    @property
    def answer(self):
        """The rater's answer whatever the axis type: the category key or the number."""
        return self.category if self.category is not None else self.value


class MessageNote(models.Model):
    """A rater's note on one message, e.g. marking a sensemaker reply as problematic."""

    rating = models.ForeignKey(Rating, on_delete=models.CASCADE, related_name="message_notes")
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="+")
    problematic = models.BooleanField(default=False)
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rating", "message"], name="message_note_unique")]

    def __str__(self):
        return f"Note on message {self.message_id}"


class SafetyCategory(models.TextChoices):
    HARMFUL_ADVICE = "harmful_advice", "Harmful or unsafe advice"
    MISSED_RISK = "missed_risk", "Missed risk (e.g. self-harm, suicide)"
    INAPPROPRIATE = "inappropriate", "Inappropriate or stigmatising language"
    OTHER = "other", "Other concern"


class SafetyStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class SafetyFlag(models.Model):
    Category = SafetyCategory

    Status = SafetyStatus

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="safety_flags")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="safety_flags")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Optionally the message the concern is about, so the clinical lead can go straight to it.
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=40, choices=Category.choices)
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="safety_flag_has_reason"),
            models.CheckConstraint(condition=Q(category__in=SafetyCategory.values), name="safety_flag_category_valid"),
            models.CheckConstraint(condition=Q(status__in=SafetyStatus.values), name="safety_flag_status_valid"),
            # Resolving a flag means saying what was done about it.
            models.CheckConstraint(
                condition=~Q(status="resolved") | ~Q(resolution_note=""), name="resolved_flag_has_note"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="safety_flag_status_created")]

    def __str__(self):
        return f"{self.get_category_display()} on conversation {self.conversation_id}"
