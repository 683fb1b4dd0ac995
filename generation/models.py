"""Case studies, personas, model configurations, generation jobs and the conversations they make."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.text import validate_storable


class Trait(models.TextChoices):
    OPENNESS = "openness", "Openness"
    CONSCIENTIOUSNESS = "conscientiousness", "Conscientiousness"
    EXTRAVERSION = "extraversion", "Extraversion"
    AGREEABLENESS = "agreeableness", "Agreeableness"
    NEUROTICISM = "neuroticism", "Neuroticism"


class Literacy(models.TextChoices):
    BASIC = "basic", "Basic"
    ADVANCED = "advanced", "Advanced"
    FUNCTIONAL = "functional", "Functional"


class Intent(models.TextChoices):
    INTERPRETING = "interpreting_information", "Interpreting medical information"
    LIFESTYLE = "lifestyle_literacy", "Lifestyle recommendations and health literacy"
    PERSONALISING = "personalising_care", "Personalising the care journey"


class Goal(models.TextChoices):
    COMFORT = "comfort", "Comfort and avoiding suffering"
    FUNCTIONING = "functioning", "Maintaining or improving functioning"
    LONGEVITY = "longevity", "Longevity"


class Stage(models.IntegerChoices):
    FOSTERING = 1, "Fostering the relationship"
    GATHERING = 2, "Gathering information"
    PROVIDING = 3, "Providing information"
    DECISION = 4, "Decision making"
    EMOTIONS = 5, "Responding to emotions"
    EXIT = 6, "Exit"


class CaseStudy(models.Model):
    class FactsStatus(models.TextChoices):
        PENDING = "pending", "Not extracted yet"
        EXTRACTED = "extracted", "Extracted, not reviewed"
        REVIEWED = "reviewed", "Reviewed by an admin"
        FAILED = "failed", "Extraction failed"

    external_id = models.CharField(max_length=100, unique=True, help_text="The id given at import.")
    text = models.TextField()
    ground_truth_diagnosis = models.CharField(max_length=300)
    condition = models.CharField(max_length=120, blank=True)
    # Atomic first-person-usable facts; vital signs are kept apart, as in MedAgent.
    facts = models.JSONField(default=list, blank=True)
    vital_facts = models.JSONField(default=list, blank=True)
    intent = models.CharField(max_length=40, choices=Intent.choices, blank=True)
    goal = models.CharField(max_length=40, choices=Goal.choices, blank=True)
    facts_status = models.CharField(max_length=20, choices=FactsStatus.choices, default=FactsStatus.PENDING)
    facts_error = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name_plural = "case studies"
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="case_text_not_empty"),
            models.CheckConstraint(condition=~Q(ground_truth_diagnosis=""), name="case_ground_truth_not_empty"),
            models.CheckConstraint(condition=Q(intent="") | Q(intent__in=Intent.values), name="case_intent_valid"),
            models.CheckConstraint(condition=Q(goal="") | Q(goal__in=Goal.values), name="case_goal_valid"),
        ]

    def __str__(self):
        return f"{self.external_id}: {self.ground_truth_diagnosis}"

    @property
    def ready_for_generation(self) -> bool:
        return bool(self.facts) and bool(self.intent) and bool(self.goal)


class Persona(models.Model):
    """One cell of the persona grid: a dominant Big Five trait, a literacy level, intent and goal."""

    trait = models.CharField(max_length=20, choices=Trait.choices)
    literacy = models.CharField(max_length=20, choices=Literacy.choices)
    intent = models.CharField(max_length=40, choices=Intent.choices)
    goal = models.CharField(max_length=40, choices=Goal.choices)

    class Meta:
        ordering = ["trait", "literacy", "intent", "goal"]
        constraints = [
            models.UniqueConstraint(fields=["trait", "literacy", "intent", "goal"], name="persona_unique"),
            models.CheckConstraint(condition=Q(trait__in=Trait.values), name="persona_trait_valid"),
            models.CheckConstraint(condition=Q(literacy__in=Literacy.values), name="persona_literacy_valid"),
            models.CheckConstraint(condition=Q(intent__in=Intent.values), name="persona_intent_valid"),
            models.CheckConstraint(condition=Q(goal__in=Goal.values), name="persona_goal_valid"),
        ]

    def __str__(self):
        return f"High {self.get_trait_display()} · {self.get_literacy_display()} literacy"


key_env_validator = RegexValidator(
    r"^[A-Z][A-Z0-9_]*_API_KEY$",
    "Give the NAME of an environment variable ending in _API_KEY (e.g. OPENAI_API_KEY), never the key.",
)


def validate_api_base(value: str) -> None:
    from .medagent.types import api_base_problem

    problem = api_base_problem(value)
    if problem:
        raise ValidationError(problem, code="api_base_credentials")


class ModelConfig(models.Model):
    """A LiteLLM model string with its parameters. The key stays in the environment."""

    name = models.CharField(max_length=100, unique=True)
    model = models.CharField(max_length=200, help_text="LiteLLM model string, e.g. openai/gpt-4o-mini.")
    temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    api_base = models.URLField(
        blank=True, validators=[validate_api_base],
        help_text="For Ollama, vLLM, llama.cpp or any OpenAI-compatible server. No credentials or query string: "
                  "the key goes in an environment variable.",
    )
    api_key_env = models.CharField(max_length=100, blank=True, validators=[key_env_validator])
    extra_params = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2), name="modelconfig_temperature_range"
            ),
            models.CheckConstraint(
                condition=Q(api_key_env="") | Q(api_key_env__regex=r"^[A-Z][A-Z0-9_]*_API_KEY$"),
                name="modelconfig_key_env_is_a_name",
            ),
            models.CheckConstraint(condition=~Q(model=""), name="modelconfig_model_not_empty"),
            # The same rule as validate_api_base, for writes that skip validation (get_or_create, update()).
            models.CheckConstraint(
                condition=~Q(api_base__contains="?") & ~Q(api_base__contains="#")
                & ~Q(api_base__regex=r"^[^/]*//[^/]*@"),
                name="modelconfig_api_base_without_credentials",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.model})"

    def clean(self):
        """Checked by every form, the Django admin included. The rules are ModelSpec's (one schema):
        extra parameters are copied into job snapshots, conversation provenance and exports, so
        they must never carry a credential, and must not shadow the dedicated fields."""
        from .medagent.types import ModelSpecError

        super().clean()
        if not self.model:
            return  # the required-field error already says it
        try:
            validate_storable(self.extra_params)
        except ValidationError as exc:
            raise ValidationError({"extra_params": exc.messages}) from exc
        try:
            self.to_spec()
        except ModelSpecError as exc:
            raise ValidationError({exc.field: str(exc)}) from exc

    def to_spec(self):
        """This configuration as the engine's ModelSpec (raises ModelSpecError if it breaks a rule)."""
        from .medagent.types import ModelSpec

        return ModelSpec(
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_base=self.api_base or None,
            api_key_env=self.api_key_env or None,
            extra_params=dict(self.extra_params) if isinstance(self.extra_params, dict) else self.extra_params,
        )

    @property
    def is_simulator(self) -> bool:
        return self.model.startswith("simulator/")

    def provenance(self) -> dict:
        """What is recorded with each job and conversation: the spec's to_dict() and the name, never the key."""
        return {"name": self.name, **self.to_spec().to_dict()}


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Finished with failures"
    CANCELLED = "cancelled", "Cancelled"


def derive_job_status(counts: dict[str, int], cancel_requested: bool) -> str:
    """A job's status from how many of its items (conversations, probe items...) are in each state:
    the one rule for every kind of job, so their pages read the same way."""
    unfinished = counts.get("queued", 0) + counts.get("running", 0)
    if unfinished:
        started = counts.get("running", 0) or counts.get("done", 0) or counts.get("failed", 0)
        return JobStatus.RUNNING if started else JobStatus.QUEUED
    if cancel_requested:
        return JobStatus.CANCELLED
    return JobStatus.FAILED if counts.get("failed", 0) else JobStatus.DONE


def apply_job_status(job, counts: dict[str, int]) -> list[str]:
    """Set a job's (a generation job's, a probe run's...) status, started_at and finished_at from its items'
    counts; return the fields that changed, for save(update_fields=...)."""
    unfinished = counts.get("queued", 0) + counts.get("running", 0)
    status = derive_job_status(counts, job.cancel_requested_at is not None)
    fields = []
    if status != job.status:
        job.status = status
        fields.append("status")
    if status == JobStatus.RUNNING and job.started_at is None:
        job.started_at = timezone.now()
        fields.append("started_at")
    if not unfinished and job.finished_at is None:
        job.finished_at = timezone.now()
        fields.append("finished_at")
    return fields


class LLMRun(models.Model):
    """What every run of LLM calls over many items shares (a judge run, a probe run): its seed, its limit on
    calls in flight, its derived status (apply_job_status) and its timeline. Each run adds its own subject
    and keeps its own constraints (named after it)."""

    Status = JobStatus

    seed = models.BigIntegerField(default=0)
    max_concurrent_calls = models.PositiveSmallIntegerField(default=8)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def is_simulated(self) -> bool:
        """The offline simulator played the model: its output is labelled, never taken for a model's."""
        return str(self.model_snapshot.get("model", "")).startswith("simulator/")


class GenerationJob(models.Model):
    Status = JobStatus

    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    patient_model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="+")
    sensemaker_model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="jobs_under_test")
    helper_model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="+")
    prompt_version = models.CharField(max_length=20, default="v1")
    seed = models.BigIntegerField(default=0)
    max_concurrent_calls = models.PositiveSmallIntegerField(default=8)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Snapshot of the model configurations at launch, so later edits do not rewrite history.
    settings_snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrent_calls__gte=1), name="job_concurrency_positive"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
        ]

    def __str__(self):
        return self.name

    @property
    def simulated_roles(self) -> list[str]:
        """Roles played by the offline simulator, from the launch snapshot. Any one of them makes the
        job's conversations simulated (Conversation.is_simulated), so pages label the job by this."""
        return [role for role in ("sensemaker", "patient", "helper")
                if str((self.settings_snapshot.get(role) or {}).get("model", "")).startswith("simulator/")]


class ConversationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ConversationSource(models.TextChoices):
    GENERATED = "generated", "Generated by MedAgent"
    IMPORTED = "imported", "Imported"


class Conversation(models.Model):
    Status = ConversationStatus

    Source = ConversationSource

    source = models.CharField(max_length=20, choices=Source.choices, default=Source.GENERATED)
    job = models.ForeignKey(
        GenerationJob, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations"
    )
    case = models.ForeignKey(CaseStudy, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # For imported conversations: where they came from and their id there.
    source_label = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    seed = models.BigIntegerField(null=True, blank=True)
    prompt_version = models.CharField(max_length=20, blank=True)
    # Model strings are copied here (and in full in `provenance`) so history survives config edits.
    sensemaker_model = models.CharField(max_length=200, blank=True)
    patient_model = models.CharField(max_length=200, blank=True)
    helper_model = models.CharField(max_length=200, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    ground_truth_diagnosis = models.CharField(max_length=300, blank=True)
    condition = models.CharField(max_length=120, blank=True)
    trace = models.JSONField(default=dict, blank=True)
    is_simulated = models.BooleanField(default=False)
    llm_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    smog_grade = models.FloatField(null=True, blank=True)
    sensemaker_message_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A job makes one conversation per (case, persona): a redelivered task cannot add another.
            models.UniqueConstraint(
                fields=["job", "case", "persona"], condition=Q(job__isnull=False), name="conversation_once_per_job_cell"
            ),
            models.UniqueConstraint(
                fields=["source_label", "external_id"],
                condition=Q(source="imported"),
                name="imported_conversation_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(source="imported")
                | (Q(job__isnull=False) & Q(case__isnull=False) & Q(persona__isnull=False)),
                name="generated_conversation_has_job_case_persona",
            ),
            models.CheckConstraint(condition=Q(status__in=ConversationStatus.values), name="conversation_status_valid"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(finished_at__gte=F("started_at")),
                name="conversation_finished_after_started",
            ),
        ]
        indexes = [models.Index(fields=["job", "status"]), models.Index(fields=["sensemaker_model"])]

    def __str__(self):
        return f"Conversation {self.pk}"


class MessageRole(models.TextChoices):
    PATIENT = "patient", "Patient"
    SENSEMAKER = "sensemaker", "Sensemaker"


class Message(models.Model):
    Role = MessageRole

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=20, choices=Role.choices)
    stage = models.PositiveSmallIntegerField(choices=Stage.choices, null=True, blank=True)
    text = models.TextField()
    # The per-turn trace: facts, stage decision and confidence, candidates, redundancy, chosen index.
    trace = models.JSONField(default=dict, blank=True)
    smog_grade = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["conversation", "index"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "index"], name="message_index_unique"),
            models.CheckConstraint(condition=Q(role__in=["patient", "sensemaker"]), name="message_role_valid"),
            models.CheckConstraint(
                condition=Q(stage__isnull=True) | (Q(stage__gte=1) & Q(stage__lte=6)), name="message_stage_range"
            ),
        ]

    def __str__(self):
        return f"#{self.index} {self.role}"
