"""Serializers of the probe-run API: runs (researchers and admins: they name the model under test),
their launch request (admins), and the item-level dataset (study_data/probe_export.py)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import Literacy, Trait
from probes.models import ItemStatus, Placement, ProbeRun
from probes.services import MAX_SAMPLES
from study_data import probe_export

from .filters import MAX_ID, QueryFilter, id_field
from .serializers import JobProgressSerializer, ModelConfigRefSerializer, status_field


class ProbeRunSerializer(serializers.ModelSerializer):
    status = status_field(ProbeRun.Status.choices, read_only=True)
    battery = serializers.SerializerMethodField(help_text="The battery version the run used.")
    model = ModelConfigRefSerializer(help_text="The model under test.")
    judge_model = ModelConfigRefSerializer(allow_null=True, help_text="The run's LLM judge, if any.")
    placement = serializers.ChoiceField(choices=Placement.choices)
    is_simulated = serializers.BooleanField(help_text="The offline simulator played the model: not research data.")

    class Meta:
        model = ProbeRun
        fields = ["id", "name", "status", "battery", "model", "judge_model", "prompt_version", "samples", "seed",
                  "max_concurrent_calls", "placement", "stage", "is_simulated", "created_at", "started_at",
                  "finished_at", "cancel_requested_at"]

    @extend_schema_field({"type": "object", "properties": {
        "id": {"type": "integer"}, "slug": {"type": "string"}, "version": {"type": "integer"},
        "protocol": {"type": "string"}, "digest": {"type": "string"}}})
    def get_battery(self, obj):
        b = obj.battery
        return {"id": b.pk, "slug": b.slug, "version": b.version, "protocol": b.protocol, "digest": b.digest}


class ProbeRunProgressSerializer(JobProgressSerializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Items by status.")
    answered = serializers.IntegerField(help_text="Done items with an answer (stigma) or an exchange (interjection).")
    no_valid_option = serializers.IntegerField(help_text="Done stigma items whose reply picked no valid option.")
    judge = serializers.DictField(child=serializers.IntegerField(), help_text="LLM judge answers by status.")
    judge_total = serializers.IntegerField()
    judge_calls = serializers.IntegerField(help_text="LLM judge calls (not in llm_calls).")
    judge_prompt_tokens = serializers.IntegerField()
    judge_completion_tokens = serializers.IntegerField()
    judge_cost_usd = serializers.FloatField(allow_null=True)


class ProbeRunDetailSerializer(ProbeRunSerializer):
    model_snapshot = serializers.JSONField(help_text="The model's settings at launch (never a key).")
    conversation_snapshot = serializers.JSONField(
        help_text="MedAgent placement: the patient and helper models' settings (never keys), case and persona.")
    progress = serializers.SerializerMethodField()
    failures = serializers.SerializerMethodField(
        help_text="Up to 50 failed items and replies that picked no valid option, with their reasons.")

    class Meta(ProbeRunSerializer.Meta):
        fields = [*ProbeRunSerializer.Meta.fields, "model_snapshot", "conversation_snapshot", "progress", "failures"]

    @extend_schema_field(ProbeRunProgressSerializer)
    def get_progress(self, obj):
        from django.db.models import Sum

        from probes.selectors import run_progress

        progress = run_progress(obj)
        judge = obj.judge_answers.aggregate(calls=Sum("calls"), prompt=Sum("prompt_tokens"),
                                            completion=Sum("completion_tokens"), cost=Sum("cost_usd"))
        progress.update(judge_calls=judge["calls"] or 0, judge_prompt_tokens=judge["prompt"] or 0,
                        judge_completion_tokens=judge["completion"] or 0,
                        judge_cost_usd=None if judge["cost"] is None else float(judge["cost"]))
        if progress.get("cost_usd") is not None:
            progress["cost_usd"] = float(progress["cost_usd"])
        return {k: v for k, v in progress.items() if k in ProbeRunProgressSerializer().fields}

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_failures(self, obj):
        from probes.selectors import attention_items

        return [{"item": i.pk, "status": i.status, "vignette_key": i.vignette_key, "variant_key": i.variant_key,
                 "question_key": i.question_key, "sample_index": i.sample_index, "attempts": i.attempts,
                 "reason": i.failure_reason or i.parse_error, "raw_reply": i.raw_reply}
                for i in attention_items(obj, limit=50)]


class ProbeRunCreateSerializer(serializers.Serializer):
    """The launch page's fields (probes/forms.py RunLaunchForm), by id. JSON types are checked here; the
    page's form then checks the values exactly as on the page (active models, ready cases, a MedAgent
    placement's required fields), and probes.services.launch_run the rest."""

    battery = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Battery version id.")
    model = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Model configuration id (under test).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    samples = serializers.IntegerField(min_value=1, max_value=MAX_SAMPLES, default=1)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, default=0)
    max_concurrent_calls = serializers.IntegerField(min_value=1, max_value=256, default=8)
    placement = serializers.ChoiceField(choices=Placement.choices, default=Placement.STANDALONE,
                                        help_text="Interjection probes only: medagent places each probe as the "
                                                  "patient's turn in a MedAgent conversation.")
    stage = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True,
                                     help_text="medagent: the stage (1-5) at which the probe is the patient's turn.")
    case = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                                    help_text="medagent: the simulated patient's case study id.")
    # Inline enums: the schema's TraitsEnum/LiteraciesEnum components are named after the list fields.
    trait = status_field(Trait.choices, default=Trait.NEUROTICISM, help_text="medagent: the patient's trait.")
    literacy = status_field(Literacy.choices, default=Literacy.BASIC, help_text="medagent: the patient's literacy.")
    patient_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    helper_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    judge_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                                           help_text="Interjection probes only: an LLM judge of the verification "
                                                     "question, beside the clinicians.")


class ProbeRunActionSerializer(serializers.Serializer):
    run = ProbeRunSerializer()
    items = serializers.IntegerField(help_text="Items cancelled (cancel), or items and judge answers re-queued "
                                               "(retry).")


class ProbeRunFilter(QueryFilter):
    battery = id_field("Runs of this battery version.")
    status = serializers.ChoiceField(required=False, choices=ProbeRun.Status.choices)
    model = serializers.CharField(required=False, max_length=200,
                                  help_text="The model under test: its LiteLLM model string at launch.")
    model_config = id_field("The model under test: its model configuration id.")
    protocol = serializers.ChoiceField(required=False, choices=["stigma", "interjection"])


class ProbeItemParams(QueryFilter):
    format = serializers.ChoiceField(
        required=False, choices=probe_export.FORMATS, default="json",
        help_text="json: a cursor-paginated page; jsonl or csv: the whole run, streamed.")
    status = serializers.ChoiceField(required=False, choices=ItemStatus.choices,
                                     help_text="json only: items in this state.")
    condition = serializers.SlugField(required=False, max_length=80,
                                      help_text="json only: this condition (stigma) or symptom (interjection).")


class ClinicianVerdictSerializer(serializers.Serializer):
    rater = serializers.CharField(help_text="Pseudonym (R-XXXXXXXX).")
    rating_id = serializers.IntegerField()
    campaign_id = serializers.IntegerField()
    answer_yes = serializers.BooleanField(allow_null=True)
    appropriate = serializers.BooleanField(allow_null=True)
    safe = serializers.BooleanField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)


class ProbeJudgeAnswerSerializer(serializers.Serializer):
    judge_model = serializers.CharField()
    judge_name = serializers.CharField()
    judge_is_simulated = serializers.BooleanField()
    prompt_version = serializers.CharField()
    seed = serializers.IntegerField()
    status = status_field(ItemStatus.choices)
    answer_yes = serializers.BooleanField(allow_null=True)
    appropriate = serializers.BooleanField(allow_null=True)
    raw_reply = serializers.CharField(allow_blank=True)
    failure_reason = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _item_fields() -> dict:
    """One schema field per dataset field, described by probe_export.FIELDS."""
    ints = {"item_id", "run_id", "battery_id", "battery_version", "stage_requested", "stage", "variant_age",
            "sample_index", "seed", "conversation_id", "calls", "prompt_tokens", "completion_tokens",
            "clinician_n", "clinician_yes", "clinician_appropriate", "clinician_unsafe", "judge_n", "judge_yes",
            "judge_appropriate"}
    nullable = {"stage_requested", "stage", "case_id", "persona_trait", "persona_literacy", "variant_age",
                "variant_gender", "variant_ethnicity", "variant_education", "question_group", "stigmatizing",
                "verification_question", "correct_answer", "conversation_id", "cost_usd", "finished_at"}
    fields = {}
    for name, help_text in probe_export.FIELDS.items():
        kw = {"help_text": help_text, "allow_null": name in nullable}
        if name == "clinician_verdicts":
            fields[name] = ClinicianVerdictSerializer(many=True, help_text=help_text)
        elif name == "judge_answers":
            fields[name] = ProbeJudgeAnswerSerializer(many=True, help_text=help_text)
        elif name in ints:
            fields[name] = serializers.IntegerField(**kw)
        elif name in ("model_is_simulated", "stigmatizing"):
            fields[name] = serializers.BooleanField(**kw)
        elif name == "cost_usd":
            fields[name] = serializers.FloatField(**kw)
        elif name == "finished_at":
            fields[name] = serializers.DateTimeField(**kw)
        else:
            fields[name] = serializers.CharField(allow_blank=True, **kw)
    return fields


ProbeItemRowSerializer = type("ProbeItemRow", (serializers.Serializer,), {
    **_item_fields(), "__doc__": "One probe item of the dataset (study_data/probe_export.py)."})
