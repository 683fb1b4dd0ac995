"""Representations of the API's resources. Read serializers never expose secrets (API keys stay in the
environment; model configurations carry only the NAME of the variable) and never rater usernames
unless an admin asks for them."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from generation.models import (
    Conversation,
    GenerationJob,
    Goal,
    Intent,
    Literacy,
    Message,
    ModelConfig,
    Stage,
    Trait,
)
from rating.models import Assignment, Campaign, CampaignStatus, Rating, Rubric
from rating.selectors import conversation_label

from .filters import MAX_ID


def status_field(choices, **kwargs):
    """A status choice field whose enum stays inline in the schema (wrapped in allOf, which the enum
    post-processing leaves alone): several resources have a `status` with different values, and
    conversations and jobs share one set, so named enum components would collide."""
    values = [c[0] if isinstance(c, list | tuple) else str(c) for c in choices]
    field_class = extend_schema_field({"allOf": [{"type": "string", "enum": values}]})(
        type("StatusChoiceField", (serializers.ChoiceField,), {})
    )
    return field_class(choices=choices, **kwargs)

# --- conversations -------------------------------------------------------------------------------


class PersonaSerializer(serializers.Serializer):
    trait = serializers.CharField()
    literacy = serializers.CharField()
    intent = serializers.CharField()
    goal = serializers.CharField()


class ModelsSerializer(serializers.Serializer):
    sensemaker = serializers.CharField(help_text="The model under test (LiteLLM model string).")
    patient = serializers.CharField()
    helper = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    stage_name = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["index", "role", "stage", "stage_name", "text", "smog_grade"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_stage_name(self, obj) -> str | None:
        return Stage(obj.stage).label if obj.stage else None


class MessageWithTraceSerializer(MessageSerializer):
    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "trace"]


class ConversationSerializer(serializers.ModelSerializer):
    """One conversation with its provenance, without messages (see the detail endpoint)."""

    status = status_field(Conversation.Status.choices, read_only=True)
    case_id = serializers.SerializerMethodField(help_text="The case study's external id (generated only).")
    persona = serializers.SerializerMethodField()
    models = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id", "source", "source_label", "external_id", "status", "is_simulated", "job", "case_id",
            "persona", "models", "prompt_version", "seed", "ground_truth_diagnosis", "condition",
            "smog_grade", "sensemaker_message_count", "llm_calls", "prompt_tokens", "completion_tokens",
            "cost_usd", "created_at", "started_at", "finished_at",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_case_id(self, obj) -> str | None:
        return obj.case.external_id if obj.case_id else None

    @extend_schema_field(PersonaSerializer(allow_null=True))
    def get_persona(self, obj):
        if not obj.persona_id:
            return None
        p = obj.persona
        return {"trait": p.trait, "literacy": p.literacy, "intent": p.intent, "goal": p.goal}

    @extend_schema_field(ModelsSerializer)
    def get_models(self, obj):
        return {"sensemaker": obj.sensemaker_model, "patient": obj.patient_model, "helper": obj.helper_model}


class StageCountSerializer(serializers.Serializer):
    stage = serializers.IntegerField()
    name = serializers.CharField()
    messages = serializers.IntegerField()


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField(help_text="Messages per sensemaker stage, in stage order.")
    provenance = serializers.JSONField(
        help_text="Model settings snapshot (never keys), persona, case id, prompt version; for imports the "
        "source, system messages and metadata."
    )
    failure_reason = serializers.CharField()
    trace = serializers.SerializerMethodField(help_text="The conversation-level trace (only with ?trace=1).")

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "failure_reason", "provenance", "stages", "messages", "trace"]

    def _with_trace(self) -> bool:
        return bool(self.context.get("with_trace"))

    @extend_schema_field(MessageWithTraceSerializer(many=True))
    def get_messages(self, obj):
        serializer = MessageWithTraceSerializer if self._with_trace() else MessageSerializer
        return serializer(obj.messages.all(), many=True).data

    @extend_schema_field(StageCountSerializer(many=True))
    def get_stages(self, obj):
        counts = {}
        for message in obj.messages.all():
            if message.stage:
                counts[message.stage] = counts.get(message.stage, 0) + 1
        return [{"stage": s, "name": Stage(s).label, "messages": n} for s, n in sorted(counts.items())]

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_trace(self, obj):
        return obj.trace if self._with_trace() else None


# --- rubrics and campaigns -----------------------------------------------------------------------


class RubricRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rubric
        fields = ["id", "slug", "version", "name"]


class AxisSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    scale_min = serializers.IntegerField(allow_null=True)
    scale_max = serializers.IntegerField(allow_null=True)
    agreement_level = serializers.CharField()


class CampaignSerializer(serializers.ModelSerializer):
    status = status_field(CampaignStatus.choices, read_only=True)
    rubric = RubricRefSerializer()
    conversations = serializers.IntegerField(source="item_count", help_text="Conversations in the campaign.")
    ratings_submitted = serializers.IntegerField(source="submitted_count")
    raters = serializers.SerializerMethodField(help_text="Pseudonyms of the campaign's raters.")

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "description", "status", "rubric", "overlap_k", "lease_minutes", "selection",
            "conversations", "ratings_submitted", "raters", "created_at", "opened_at", "closed_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_raters(self, obj):
        return sorted(u.pseudonym for u in obj.raters.all())


class IdListField(serializers.ListField):
    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100_000)
        super().__init__(**kwargs)


class SelectionSerializer(serializers.Serializer):
    """Filters over finished conversations (rating.campaigns.Selection); empty lists mean "any"."""

    jobs = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False,
                                 max_length=1000)
    sensemaker_models = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                              max_length=100)
    conditions = serializers.ListField(child=serializers.CharField(max_length=120), required=False, max_length=100)
    traits = serializers.ListField(child=serializers.ChoiceField(choices=Trait.choices), required=False,
                                   max_length=len(Trait.values))
    literacies = serializers.ListField(child=serializers.ChoiceField(choices=Literacy.choices), required=False,
                                       max_length=len(Literacy.values))
    intents = serializers.ListField(child=serializers.ChoiceField(choices=Intent.choices), required=False,
                                    max_length=len(Intent.values))
    goals = serializers.ListField(child=serializers.ChoiceField(choices=Goal.choices), required=False,
                                  max_length=len(Goal.values))
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10_000_000,
                                     help_text="A reproducible random sample of this many.")
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_ID)


class CampaignCreateSerializer(serializers.Serializer):
    """Create a campaign (admins). Give the conversations as `conversations` (ids, e.g. from an import)
    or as `selection` filters, not both. It starts as a draft; PATCH status=open to open it."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    rubric = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Rubric version id (GET /api/v1/rubrics); the "
        "default rubric when omitted.",
    )
    overlap_k = serializers.IntegerField(required=False, default=2, min_value=1, max_value=20,
                                         help_text="Raters per conversation.")
    lease_minutes = serializers.IntegerField(required=False, default=60, min_value=1, max_value=24 * 60)
    raters = IdListField(help_text="User ids of active clinician raters (at least overlap_k).")
    conversations = IdListField(required=False, help_text="Finished conversation ids.")
    selection = SelectionSerializer(required=False)

    def validate_rubric(self, value):
        try:
            return Rubric.objects.get(pk=value)
        except Rubric.DoesNotExist:
            raise serializers.ValidationError(f"No rubric with id {value}.") from None

    def validate_raters(self, value):
        return _users(value)

    def validate(self, attrs):
        if ("conversations" in attrs) == ("selection" in attrs):
            raise serializers.ValidationError(
                {"conversations": "Give either conversations (ids) or selection (filters), not both or neither."}
            )
        return attrs


def _users(ids):
    users = User.objects.in_bulk(ids)
    missing = [pk for pk in ids if pk not in users]
    if missing:
        raise serializers.ValidationError(f"No users with ids {missing[:20]}.")
    return [users[pk] for pk in dict.fromkeys(ids)]


class CampaignPatchSerializer(serializers.Serializer):
    """Change a campaign (admins). Raters replace the list; add_conversations only adds; status moves a
    draft to open, an open campaign to closed, or reopens a closed one."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    overlap_k = serializers.IntegerField(required=False, min_value=1, max_value=20,
                                         help_text="Only while the campaign is a draft.")
    lease_minutes = serializers.IntegerField(required=False, min_value=1, max_value=24 * 60)
    raters = IdListField(required=False, help_text="User ids of active clinician raters (replaces the list).")
    add_conversations = IdListField(required=False, help_text="Finished conversation ids to add.")
    status = status_field([CampaignStatus.OPEN, CampaignStatus.CLOSED], required=False)

    def validate_raters(self, value):
        return _users(value)


# --- ratings -------------------------------------------------------------------------------------


class ScoreSerializer(serializers.Serializer):
    axis = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    category = serializers.CharField(allow_null=True, help_text="The category key on a nominal axis, else null.")
    comment = serializers.CharField(allow_blank=True)


class MessageNoteSerializer(serializers.Serializer):
    message_index = serializers.IntegerField()
    problematic = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)


class RatingSerializer(serializers.ModelSerializer):
    status = status_field(Rating.Status.choices, read_only=True)
    campaign = serializers.IntegerField(source="assignment.campaign_id")
    conversation = serializers.IntegerField(source="assignment.item.conversation_id")
    rater = serializers.CharField(source="assignment.rater.pseudonym", help_text="The rater's stable pseudonym.")
    rater_username = serializers.SerializerMethodField(help_text="Only for admins who pass ?identify=1.")
    rubric = serializers.SerializerMethodField()
    active_seconds = serializers.IntegerField(source="assignment.active_seconds", help_text="Time on task.")
    scores = serializers.SerializerMethodField()
    message_notes = serializers.SerializerMethodField()

    class Meta:
        model = Rating
        fields = [
            "id", "campaign", "conversation", "rater", "rater_username", "rubric", "status", "submitted_at",
            "revision", "active_seconds", "overall_comment", "scores", "message_notes",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_rater_username(self, obj) -> str | None:
        return obj.assignment.rater.username if self.context.get("identify") else None

    @extend_schema_field(RubricRefSerializer)
    def get_rubric(self, obj):
        return {"id": obj.rubric_id, "slug": obj.rubric.slug, "version": obj.rubric.version, "name": obj.rubric.name}

    @extend_schema_field(ScoreSerializer(many=True))
    def get_scores(self, obj):
        return [
            {"axis": s.axis.key, "value": s.value, "category": s.category, "comment": s.comment}
            for s in sorted(obj.scores.all(), key=lambda s: (s.axis.order, s.axis_id))
        ]

    @extend_schema_field(MessageNoteSerializer(many=True))
    def get_message_notes(self, obj):
        return [
            {"message_index": n.message.index, "problematic": n.problematic, "note": n.note}
            for n in sorted(obj.message_notes.all(), key=lambda n: n.message.index)
        ]


class AxisAggregateSerializer(serializers.Serializer):
    axis = serializers.CharField()
    mean = serializers.FloatField(allow_null=True, help_text="Mean of the submitted ratings' values.")
    sd = serializers.FloatField(allow_null=True, help_text="Sample standard deviation (null for one rating).")
    n = serializers.IntegerField(help_text="Raters who gave a value on this axis.")


class CampaignScoresSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    rubric = RubricRefSerializer()
    n_raters = serializers.IntegerField(help_text="Submitted ratings of this conversation in the campaign.")
    axes = AxisAggregateSerializer(many=True)


class ConversationScoresSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    smog_grade = serializers.FloatField(allow_null=True, help_text="Computed SMOG grade (readability axis).")
    campaigns = CampaignScoresSerializer(many=True)


class CampaignConversationScoresSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    smog_grade = serializers.FloatField(allow_null=True)
    n_raters = serializers.IntegerField()
    axes = AxisAggregateSerializer(many=True)


# --- agreement -----------------------------------------------------------------------------------


class AxisAgreementSerializer(serializers.Serializer):
    axis = serializers.CharField()
    name = serializers.CharField()
    level = serializers.CharField()
    statistics = serializers.JSONField(
        allow_null=True, help_text="results.stats.compute_agreement for this axis (null: no ratings yet)."
    )


class AgreementSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    rubric = RubricRefSerializer()
    n_boot = serializers.IntegerField(help_text="Bootstrap resamples behind alpha's confidence interval.")
    seed = serializers.IntegerField(help_text="Seed of the bootstrap.")
    computed_at = serializers.DateTimeField()
    source = serializers.CharField(
        help_text="'precomputed' (the results app's current snapshot), 'cache' or 'computed' (just now)."
    )
    snapshot_id = serializers.IntegerField(required=False, help_text="The results snapshot served (precomputed).")
    axes = AxisAgreementSerializer(many=True)


class JudgeAxisAgreementSerializer(serializers.Serializer):
    axis = serializers.CharField()
    name = serializers.CharField()
    level = serializers.CharField(help_text="The axis's level; the paired comparison always uses the interval metric.")
    statistics = serializers.JSONField(
        allow_null=True, help_text="results.stats.judge.judge_agreement for this axis: 'paired' (judge's mean of "
        "samples against the clinicians' mean: alpha, Gwet AC2, bias, limits of agreement), 'one_more_rater' (alpha "
        "without and with the judge's first sample, paired difference), 'self_consistency' (n >= 2 samples). "
        "null: the run did not score this axis.",
    )


class JudgeRunAgreementSerializer(serializers.Serializer):
    run = serializers.JSONField(help_text="Provenance: run id, judge model, prompt version, rubric version, samples, "
                                          "seed, status, item counts.")
    n_conversations = serializers.IntegerField(help_text="Conversations of the campaign the run scored.")
    input_hash = serializers.CharField(help_text="SHA-256 of the judge scores used.")
    axes = JudgeAxisAgreementSerializer(many=True)


class JudgeAgreementSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    rubric = RubricRefSerializer()
    source = serializers.CharField(help_text="'precomputed' (the current results snapshot), 'cache' or 'computed'.")
    snapshot_id = serializers.IntegerField(required=False)
    computed_at = serializers.DateTimeField()
    n_boot = serializers.IntegerField(help_text="Bootstrap resamples behind every interval.")
    seed = serializers.IntegerField(help_text="Seed of the bootstrap.")
    definitions = serializers.DictField(child=serializers.CharField())
    runs = JudgeRunAgreementSerializer(many=True)


# --- jobs ----------------------------------------------------------------------------------------


class ModelConfigRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelConfig
        fields = ["id", "name", "model"]


class JobSerializer(serializers.ModelSerializer):
    status = status_field(GenerationJob.Status.choices, read_only=True)
    patient_model = ModelConfigRefSerializer()
    sensemaker_model = ModelConfigRefSerializer()
    helper_model = ModelConfigRefSerializer()
    conversations = serializers.SerializerMethodField(help_text="Conversations by status.")

    class Meta:
        model = GenerationJob
        fields = [
            "id", "name", "status", "patient_model", "sensemaker_model", "helper_model", "prompt_version", "seed",
            "max_concurrent_calls", "conversations", "created_at", "started_at", "finished_at", "cancel_requested_at",
        ]

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_conversations(self, obj):
        counts = {s: 0 for s in Conversation.Status.values}
        for status, n in getattr(obj, "status_counts", None) or []:
            counts[status] = n
        return counts


class JobProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    finished = serializers.IntegerField()
    percent = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    llm_calls = serializers.IntegerField()
    cost_usd = serializers.FloatField(allow_null=True, help_text="Sum of priced conversations, in US dollars.")
    is_finished = serializers.BooleanField()


class JobDetailSerializer(JobSerializer):
    settings_snapshot = serializers.JSONField(help_text="Model settings at launch (never keys), grid and cases.")
    progress = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "settings_snapshot", "progress"]

    @extend_schema_field(JobProgressSerializer)
    def get_progress(self, obj):
        from generation.selectors import job_progress

        progress = job_progress(obj)
        if progress.get("cost_usd") is not None:
            progress["cost_usd"] = float(progress["cost_usd"])
        return {k: v for k, v in progress.items() if k in JobProgressSerializer().fields}


class JobCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    cases = IdListField(help_text="Case study ids (each must have reviewed facts, intent and goal).")
    patient_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Model configuration id.")
    sensemaker_model = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="Model configuration id of the model under test."
    )
    helper_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Model configuration id.")
    traits = serializers.ListField(
        child=serializers.ChoiceField(choices=Trait.choices), required=False, max_length=len(Trait.values),
        help_text="Dominant traits of the persona grid (default: all five).",
    )
    literacies = serializers.ListField(
        child=serializers.ChoiceField(choices=Literacy.choices), required=False, max_length=len(Literacy.values),
        help_text="Literacy levels (default: basic and advanced, as in the paper).",
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=-(2**63), max_value=MAX_ID)
    max_concurrent_calls = serializers.IntegerField(required=False, default=8, min_value=1, max_value=256)
    prompt_version = serializers.CharField(required=False, default="", allow_blank=True, max_length=20)

    def _model(self, pk):
        try:
            return ModelConfig.objects.get(pk=pk)
        except ModelConfig.DoesNotExist:
            raise serializers.ValidationError(f"No model configuration with id {pk}.") from None

    def validate_patient_model(self, value):
        return self._model(value)

    def validate_sensemaker_model(self, value):
        return self._model(value)

    def validate_helper_model(self, value):
        return self._model(value)

    def validate_cases(self, value):
        from generation.models import CaseStudy

        ids = list(dict.fromkeys(value))
        cases = {c.pk: c for c in CaseStudy.objects.filter(pk__in=ids)}
        missing = [pk for pk in ids if pk not in cases]
        if missing:
            raise serializers.ValidationError(f"No case studies with ids {missing[:20]}.")
        if not ids:
            raise serializers.ValidationError("Choose at least one case study.")
        return [cases[pk] for pk in ids]


class JobActionSerializer(serializers.Serializer):
    job = JobSerializer()
    conversations = serializers.IntegerField(help_text="Conversations cancelled (cancel) or re-queued (retry).")


# --- a rater's own assignments -------------------------------------------------------------------


class CampaignRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OwnAssignmentSerializer(serializers.ModelSerializer):
    """What a rater may see of their own work: never model identity or other raters."""

    status = status_field(Assignment.Status.choices, read_only=True)
    campaign = serializers.SerializerMethodField()
    # Not the conversation's database id: ids are handed out job by job, so they hint at the model.
    conversation = serializers.SerializerMethodField(help_text="The blinded label the rating page shows.")

    class Meta:
        model = Assignment
        fields = ["id", "campaign", "conversation", "status", "lease_expires_at", "active_seconds", "created_at",
                  "submitted_at"]

    def get_conversation(self, obj) -> str:
        return conversation_label(obj.pk)

    @extend_schema_field(CampaignRefSerializer)
    def get_campaign(self, obj):
        return {"id": obj.campaign_id, "name": obj.campaign.name}


class RubricSerializer(serializers.ModelSerializer):
    axes = serializers.SerializerMethodField()

    class Meta:
        model = Rubric
        fields = ["id", "slug", "version", "name", "description", "citation", "is_default", "axes"]

    @extend_schema_field(AxisSerializer(many=True))
    def get_axes(self, obj):
        return [
            {"key": a.key, "name": a.name, "kind": a.kind, "scale_min": a.scale_min, "scale_max": a.scale_max,
             "agreement_level": a.agreement_level}
            for a in obj.axes.all()
        ]
