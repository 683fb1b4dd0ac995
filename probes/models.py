"""Probe batteries (versioned data), runs of a battery against one model configuration, and one item
per (vignette variant x question x sample) with the model's reply, its parsed answer and its score."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generation.models import CaseStudy, Conversation, JobStatus, LLMRun, ModelConfig, Persona


class Protocol(models.TextChoices):
    STIGMA = "stigma", "Stigma battery (Moore et al. 2025, Experiment 1 design)"
    INTERJECTION = "interjection", "Interjection probes (Moore et al. 2025, Experiment 2 design)"


class ProbeBattery(models.Model):
    """One version of a battery file. Its content is kept as loaded, so runs and reports can always
    say exactly which vignettes, questions and stigma rules they used."""

    protocol = models.CharField(max_length=20, choices=Protocol.choices)
    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    content = models.JSONField(help_text="The validated file content (probes.battery_files.parse_battery).")
    digest = models.CharField(max_length=64, help_text="sha256 of the content.")
    source_name = models.CharField(max_length=255, blank=True, help_text="The file it was loaded from.")
    is_demo = models.BooleanField(default=False)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug", "-version"]
        verbose_name_plural = "probe batteries"
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="probe_battery_slug_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="probe_battery_version_positive"),
            models.CheckConstraint(condition=Q(protocol__in=Protocol.values), name="probe_battery_protocol_valid"),
        ]

    def __str__(self):
        return f"{self.name} ({self.slug} v{self.version})"

    @property
    def conditions(self) -> list[tuple[str, str]]:
        """(condition key, label) in file order, each once: the vignettes' conditions, or the probes' symptoms."""
        seen = {}
        for vignette in self.content.get("vignettes", []):
            seen.setdefault(vignette["condition"], vignette["label"])
        for probe in self.content.get("probes", []):
            seen.setdefault(probe["symptom"], probe["label"])
        return list(seen.items())


class Placement(models.TextChoices):
    STANDALONE = "standalone", "Stand-alone exchange (the probe is the only patient message)"
    MEDAGENT = "medagent", "Inside a MedAgent conversation, as the patient's turn at a chosen stage"


class ProbeRun(LLMRun):
    """A battery run against one model configuration, `samples` replies per prompt.

    Interjection probes are sent either as stand-alone exchanges or inside a MedAgent conversation:
    the model under test plays the sensemaker, the simulated patient (`patient_model`, with the case
    and persona) talks to it through the real engine until stage `stage`, and then the probe
    statement is the patient's turn. An optional LLM judge (`judge_model`) answers the verification
    question about every reply, beside the clinicians (ProbeJudgeAnswer)."""

    name = models.CharField(max_length=200)
    battery = models.ForeignKey(ProbeBattery, on_delete=models.PROTECT, related_name="runs")
    model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="probe_runs")
    # The model's settings at launch (ModelSpec.to_dict() and the name), never the key.
    model_snapshot = models.JSONField(default=dict, blank=True)
    prompt_version = models.CharField(max_length=40)
    samples = models.PositiveSmallIntegerField(default=1)
    placement = models.CharField(max_length=20, choices=Placement.choices, default=Placement.STANDALONE)
    # MedAgent placement only: the stage at which the probe is the patient's turn, and the conversation's
    # other participants. Their settings at launch are in conversation_snapshot (never a key).
    stage = models.PositiveSmallIntegerField(null=True, blank=True)
    case = models.ForeignKey(CaseStudy, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    patient_model = models.ForeignKey(ModelConfig, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    helper_model = models.ForeignKey(ModelConfig, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    conversation_snapshot = models.JSONField(default=dict, blank=True)
    # The judge that answers the verification questions of this run's replies at launch, if any
    # (more can be added later: ProbeJudgeAnswer rows name their own judge).
    judge_model = models.ForeignKey(ModelConfig, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")

    class Meta(LLMRun.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(placement__in=Placement.values), name="probe_run_placement_valid"),
            # A MedAgent placement names its stage (1-5: stage 6 is the Exit, after which nobody speaks)
            # and the conversation's participants; a stand-alone one names none of them.
            models.CheckConstraint(
                condition=(Q(placement="standalone") & Q(stage__isnull=True) & Q(case__isnull=True))
                | (Q(placement="medagent") & Q(stage__gte=1) & Q(stage__lte=5) & Q(case__isnull=False)
                   & Q(persona__isnull=False) & Q(patient_model__isnull=False) & Q(helper_model__isnull=False)),
                name="probe_run_placement_settings"),
            models.CheckConstraint(condition=Q(samples__gte=1), name="probe_run_samples_positive"),
            models.CheckConstraint(condition=Q(max_concurrent_calls__gte=1), name="probe_run_concurrency_positive"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="probe_run_status_valid"),
        ]


    @property
    def model_label(self) -> str:
        """How reports name the model: its configuration name, marked when the simulator played it."""
        name = self.model_snapshot.get("name") or self.model.name
        return f"{name} [simulated]" if self.is_simulated else name


class ItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ProbeItem(models.Model):
    """One prompt and one sample of the model's reply.

    Stigma items (a vignette variant and a question): `done` ones have either a chosen option (`answer`,
    scored in `stigmatizing`) or, when the reply picked no valid option, an empty answer and
    `parse_error` saying why: never a guess. Interjection items (vignette_key is the probe, condition its
    symptom): the exchange is stored as a two-message Conversation (`conversation`) that clinicians rate.
    `failed` items are LLM calls that failed for good (`failure_reason`); Retry failed re-runs them."""

    Status = ItemStatus

    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="items")
    vignette_key = models.SlugField(max_length=80)
    condition = models.SlugField(max_length=80)
    variant_key = models.SlugField(max_length=80)
    question_key = models.SlugField(max_length=80)
    sample_index = models.PositiveSmallIntegerField(default=0)
    seed = models.BigIntegerField()
    prompt = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    raw_reply = models.TextField(blank=True)
    answer = models.CharField(max_length=200, blank=True)
    # None when the question has no stigma rule (descriptive only) or no valid option was picked.
    stigmatizing = models.BooleanField(null=True, blank=True)
    parse_error = models.TextField(blank=True)
    # Interjection probes: the exchange (the probe as the patient's message, the reply) for the rating page.
    conversation = models.OneToOneField(Conversation, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="probe_item")
    # MedAgent placement: the stage the conversation was in when the probe was sent as the patient's turn
    # (the run's stage, or a later one when the sensemaker skipped past it).
    stage = models.PositiveSmallIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "vignette_key", "variant_key", "question_key", "sample_index"],
                name="probe_item_once_per_cell",
            ),
            models.CheckConstraint(condition=Q(status__in=ItemStatus.values), name="probe_item_status_valid"),
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(failure_reason=""),
                                   name="failed_probe_item_has_reason"),
            # A finished stigma item picked an option or says why it picked none, never both, never neither;
            # a finished interjection item has its exchange.
            models.CheckConstraint(
                condition=~Q(status="done") | (Q(answer="") & ~Q(parse_error="")) | (~Q(answer="") & Q(parse_error=""))
                | Q(conversation__isnull=False),
                name="done_probe_item_answer_or_reason",
            ),
            # No answer, no score.
            models.CheckConstraint(condition=~Q(answer="") | Q(stigmatizing=None),
                                   name="probe_item_no_answer_no_score"),
        ]
        indexes = [models.Index(fields=["run", "status"], name="probe_item_run_status")]

    def __str__(self):
        return f"{self.run} / {self.vignette_key}:{self.variant_key} / {self.question_key} #{self.sample_index}"


class ProbeJudgeAnswer(models.Model):
    """An LLM judge's answer to one interjection item's verification question (yes/no), with its
    provenance: the judge's settings at launch, the prompt version, the reply as received. A work item
    like a probe item (queued/running/done/failed, attempts, a lease while it runs). `done` answers
    parsed strictly as yes or no; a judge that never replied so is `failed` with the reason, never
    guessed."""

    Status = ItemStatus

    item = models.ForeignKey(ProbeItem, on_delete=models.CASCADE, related_name="judge_answers")
    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="judge_answers")
    judge_model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="+")
    judge_snapshot = models.JSONField(default=dict, blank=True)
    prompt_version = models.CharField(max_length=40)
    seed = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default=ItemStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    answer_yes = models.BooleanField(null=True, blank=True)
    raw_reply = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "judge_model", "prompt_version"],
                                    name="probe_judge_answer_once_per_item_judge"),
            models.CheckConstraint(condition=Q(status__in=ItemStatus.values), name="probe_judge_answer_status_valid"),
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(failure_reason=""),
                                   name="failed_probe_judge_answer_has_reason"),
            # Done means a yes or a no; anything else has none.
            models.CheckConstraint(condition=Q(status="done", answer_yes__isnull=False)
                                   | (~Q(status="done") & Q(answer_yes__isnull=True)),
                                   name="probe_judge_answer_done_has_answer"),
        ]
        indexes = [models.Index(fields=["run", "status"], name="probe_judge_run_status")]

    def __str__(self):
        return f"Judge answer {self.pk} on item {self.item_id}"

    @property
    def is_simulated(self) -> bool:
        return str(self.judge_snapshot.get("model", "")).startswith("simulator/")

    @property
    def judge_label(self) -> str:
        name = self.judge_snapshot.get("name") or self.judge_model.name
        return f"{name} [simulated]" if self.is_simulated else name
