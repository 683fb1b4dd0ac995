"""Precomputed agreement and results, as versioned snapshots of a campaign's submitted ratings.

Computing agreement with a 1,000-resample bootstrap on 10,000 conversations takes seconds, so the
pages never compute: `results.services.recompute_campaign` writes one `AgreementSnapshot` (with one
`AxisAgreement` row per rated axis) after ratings change, and pages and the API read the newest one.
Successive snapshots are kept (their headline figures at least) so agreement can be followed over time.
"""
from django.db import models
from django.utils import timezone

from rating.models import Campaign, RubricAxis


class AgreementSnapshot(models.Model):
    """Every statistic of one campaign, computed from one fixed set of submitted ratings."""

    class Trigger(models.TextChoices):
        AUTO = "auto", "After ratings changed"
        MANUAL = "manual", "Recompute now (admin)"
        SWEEP = "sweep", "Periodic check for stale results"
        COMMAND = "command", "Command line"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="agreement_snapshots")
    computed_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.AUTO)
    # Cheap summary of the inputs (submitted ratings' count and last change, gold items): when the
    # campaign's current fingerprint differs, the snapshot is stale.
    input_fingerprint = models.CharField(max_length=64)
    # SHA-256 of exactly the values used (axis, conversation, rater, value, gold), for reproducibility.
    input_hash = models.CharField(max_length=64)
    n_conversations = models.PositiveIntegerField(help_text="Conversations with at least one submitted rating.")
    n_raters = models.PositiveIntegerField(help_text="Raters with at least one submitted rating.")
    n_ratings = models.PositiveIntegerField(help_text="Submitted ratings (one per rater and conversation).")
    n_boot = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    duration_seconds = models.FloatField(default=0.0)
    # [{"id": user id, "pseudonym": ..., "axes": {axis key: per-rater statistics}, "summary": {...}}]
    rater_stats = models.JSONField(default=list, blank=True)
    # [{"rater_id", "rater", "axis", "axis_name", "baseline_agreement", "recent_agreement", "p_value", ...}]
    drift_flagged = models.JSONField(default=list, blank=True)
    # {table name: {"title", "columns", "rows", "note"}} plus "figures" data for the plots.
    tables = models.JSONField(default=dict, blank=True)
    # Old snapshots keep their per-axis headline figures but drop the bulky JSON (see services.prune).
    compacted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = ["computed_at", "id"]
        indexes = [models.Index(fields=["campaign", "-computed_at"], name="snapshot_campaign_time")]

    def __str__(self):
        return f"Agreement of {self.campaign} at {self.computed_at:%Y-%m-%d %H:%M:%S}"


class AxisAgreement(models.Model):
    """Agreement on one axis within a snapshot: the full output of results.stats.compute_agreement,
    with the headline figures also in columns (cheap to read for the over-time plot)."""

    snapshot = models.ForeignKey(AgreementSnapshot, on_delete=models.CASCADE, related_name="axes")
    axis = models.ForeignKey(RubricAxis, on_delete=models.PROTECT, related_name="+")
    axis_key = models.SlugField(max_length=80)
    level = models.CharField(max_length=20)
    n_pairable = models.PositiveIntegerField(help_text="Conversations with at least two ratings on this axis.")
    n_raters = models.PositiveIntegerField()
    alpha = models.FloatField(null=True, blank=True)
    alpha_ci_low = models.FloatField(null=True, blank=True)
    alpha_ci_high = models.FloatField(null=True, blank=True)
    # None when the axis has no submitted rating yet.
    statistics = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["snapshot", "axis__order", "axis_id"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "axis"], name="axis_agreement_once_per_snapshot")]

    def __str__(self):
        return f"{self.axis_key} in snapshot {self.snapshot_id}"


class JudgeAgreement(models.Model):
    """One judge run against the clinicians within a snapshot: the statistics of results.stats.judge per
    axis, and the judge's tables (per-model results from the judge, side by side with the clinicians')."""

    snapshot = models.ForeignKey(AgreementSnapshot, on_delete=models.CASCADE, related_name="judge_agreements")
    judge_run = models.ForeignKey("judging.JudgeRun", on_delete=models.CASCADE, related_name="agreements")
    # Judge model, prompt version, rubric version, samples, item counts: see judge_selectors.run_provenance.
    provenance = models.JSONField(default=dict)
    # SHA-256 of exactly the judge scores used (the clinicians' side is the snapshot's input_hash).
    input_hash = models.CharField(max_length=64)
    n_conversations = models.PositiveIntegerField(help_text="Conversations of the campaign the judge scored.")
    # {axis key: results.stats.judge.judge_agreement(...)}
    statistics = models.JSONField(default=dict)
    # {"tables": {name: table}, "figures": {...}}; emptied when the snapshot is compacted.
    tables = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["snapshot", "judge_run_id"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "judge_run"], name="judge_agreement_once_per_snapshot")
        ]

    def __str__(self):
        return f"Judge run {self.judge_run_id} in snapshot {self.snapshot_id}"
