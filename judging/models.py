"""Judge runs, their items (one conversation x one sample) and the per-axis scores they produced."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generation.models import Conversation, JobStatus, LLMRun, ModelConfig
from rating.models import Campaign, Rubric, RubricAxis


class JudgeRun(LLMRun):
    """One judge model scoring a set of conversations on one rubric, n samples each."""

    name = models.CharField(max_length=200)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_runs",
        help_text="The campaign whose conversations are judged; empty when a filter chose them.",
    )
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="judge_runs")
    judge_model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="judge_runs")
    # The judge model's settings at launch, so later edits of the configuration do not rewrite history.
    model_snapshot = models.JSONField(default=dict, blank=True)
    prompt_version = models.CharField(max_length=20, default="judge-v1")
    samples = models.PositiveSmallIntegerField(default=1, help_text="Judge replies per conversation (n >= 1).")
    # How the conversations were chosen (campaign id or API filter), kept for provenance.
    selection = models.JSONField(default=dict, blank=True)

    class Meta(LLMRun.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(samples__gte=1), name="judge_run_samples_positive"),
            models.CheckConstraint(condition=Q(max_concurrent_calls__gte=1), name="judge_run_concurrency_positive"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="judge_run_status_valid"),
        ]


class JudgeItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JudgeItem(models.Model):
    """One judge call (with its retries) for one conversation and one sample index."""

    Status = JudgeItemStatus

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="items")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="judge_items")
    sample_index = models.PositiveSmallIntegerField(default=0)
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The judge's reply exactly as received (the last one, when a malformed reply was retried).
    raw_reply = models.TextField(blank=True)
    calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True,
                                   help_text="Empty when LiteLLM knows no price for the judge model.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "conversation", "sample_index"], name="judge_item_unique"),
            models.CheckConstraint(condition=Q(status__in=JudgeItemStatus.values), name="judge_item_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(failure_reason=""), name="failed_judge_item_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["run", "status"], name="judge_item_run_status")]

    def __str__(self):
        return f"{self.run} on conversation {self.conversation_id} (sample {self.sample_index})"


class JudgeScore(models.Model):
    """The judge's score for one axis, with the rationale and the message numbers it cited."""

    item = models.ForeignKey(JudgeItem, on_delete=models.CASCADE, related_name="scores")
    axis = models.ForeignKey(RubricAxis, on_delete=models.PROTECT, related_name="judge_scores")
    value = models.FloatField()
    rationale = models.TextField(blank=True)
    cited_messages = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "axis"], name="judge_score_unique")]

    def __str__(self):
        return f"{self.axis.key}={self.value}"


# --- validation mode: clinicians agree or disagree with a judge's scores ----------------------------


class ValidationCampaign(models.Model):
    """A rating campaign in validation mode: its raters see one judge run's scores and rationales (one
    sample per conversation) and agree or disagree, as in the paper. Assignment, leases and heartbeats
    are rating's own; the verdicts live here, never in rating.Rating."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="judge_validation")
    judge_run = models.ForeignKey(JudgeRun, on_delete=models.PROTECT, related_name="validation_campaigns")
    sample_index = models.PositiveSmallIntegerField(default=0, help_text="Which of the judge's samples is shown.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Validation of {self.judge_run} in {self.campaign}"


class ValidationReviewStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class ValidationReview(models.Model):
    """One clinician's verdicts on one conversation: a server-side draft until submitted."""

    Status = ValidationReviewStatus

    assignment = models.OneToOneField("rating.Assignment", on_delete=models.PROTECT, related_name="validation_review")
    validation = models.ForeignKey(ValidationCampaign, on_delete=models.PROTECT, related_name="reviews")
    judge_item = models.ForeignKey(JudgeItem, on_delete=models.PROTECT, related_name="validation_reviews")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    overall_comment = models.TextField(blank=True)
    revision = models.PositiveIntegerField(default=0, help_text="How many times it was revised after submission.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ValidationReviewStatus.values),
                                   name="validation_review_status_valid"),
            models.CheckConstraint(condition=~Q(status="submitted") | Q(submitted_at__isnull=False),
                                   name="submitted_review_has_time"),
        ]

    def __str__(self):
        return f"Validation review of {self.assignment}"


class ValidationVerdict(models.Model):
    """Agree or disagree with the judge's score on one axis; a disagreement carries the corrected score."""

    review = models.ForeignKey(ValidationReview, on_delete=models.CASCADE, related_name="verdicts")
    axis = models.ForeignKey(RubricAxis, on_delete=models.PROTECT, related_name="validation_verdicts")
    # The exact judge score the clinician saw.
    judge_score = models.ForeignKey(JudgeScore, on_delete=models.PROTECT, related_name="verdicts")
    agrees = models.BooleanField(null=True, blank=True, help_text="Empty until the clinician decides.")
    corrected_value = models.FloatField(null=True, blank=True)
    comment = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "axis"], name="validation_verdict_unique"),
            # Agreeing means the judge's score stands: no corrected score beside it.
            models.CheckConstraint(condition=~Q(agrees=True) | Q(corrected_value__isnull=True),
                                   name="agreeing_verdict_has_no_correction"),
        ]

    def __str__(self):
        return f"{self.axis.key}: {'agree' if self.agrees else 'disagree' if self.agrees is False else '-'}"
