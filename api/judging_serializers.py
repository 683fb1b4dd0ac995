"""Serializers of the judge-run API: runs, their launch request, and judge scores with provenance."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import Literacy, Trait
from judging.models import JudgeItem, JudgeRun
from judging.services import MAX_CONCURRENT_CALLS, MAX_SAMPLES

from .filters import MAX_ID, QueryFilter, id_field
from .serializers import JobProgressSerializer, ModelConfigRefSerializer, status_field


class JudgeRunSerializer(serializers.ModelSerializer):
    status = status_field(JudgeRun.Status.choices, read_only=True)
    judge_model = ModelConfigRefSerializer()
    rubric = serializers.SerializerMethodField(help_text="Slug and version of the rubric judged on.")
    is_simulated = serializers.BooleanField(help_text="The offline simulator's rule-based judge, not a clinical one.")

    class Meta:
        model = JudgeRun
        fields = ["id", "name", "status", "campaign", "rubric", "judge_model", "prompt_version", "samples", "seed",
                  "max_concurrent_calls", "is_simulated", "created_at", "started_at", "finished_at",
                  "cancel_requested_at"]

    @extend_schema_field({"type": "object", "properties": {"slug": {"type": "string"}, "version": {"type": "integer"}}})
    def get_rubric(self, obj):
        return {"slug": obj.rubric.slug, "version": obj.rubric.version}


class JudgeRunDetailSerializer(JudgeRunSerializer):
    model_snapshot = serializers.JSONField(help_text="The judge model's settings at launch (never a key).")
    selection = serializers.JSONField(help_text="How the conversations were chosen (campaign id or filter).")
    progress = serializers.SerializerMethodField()
    failures = serializers.SerializerMethodField(help_text="Up to 50 failed items with their reasons.")

    class Meta(JudgeRunSerializer.Meta):
        fields = [*JudgeRunSerializer.Meta.fields, "model_snapshot", "selection", "progress", "failures"]

    @extend_schema_field(JobProgressSerializer)
    def get_progress(self, obj):
        from judging.selectors import run_progress

        progress = run_progress(obj)
        if progress.get("cost_usd") is not None:
            progress["cost_usd"] = float(progress["cost_usd"])
        return {k: v for k, v in progress.items() if k in JobProgressSerializer().fields}

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_failures(self, obj):
        from judging.selectors import failure_reasons

        return [{"item": i.pk, "conversation": i.conversation_id, "sample_index": i.sample_index,
                 "attempts": i.attempts, "reason": i.failure_reason, "raw_reply": i.raw_reply}
                for i in failure_reasons(obj)]


class JudgeSelectionSerializer(serializers.Serializer):
    """Finished conversations chosen by filters, as for a campaign (empty lists mean any)."""

    jobs = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False)
    sensemaker_models = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    conditions = serializers.ListField(child=serializers.CharField(max_length=120), required=False)
    traits = serializers.ListField(child=serializers.ChoiceField(choices=Trait.choices), required=False)
    literacies = serializers.ListField(child=serializers.ChoiceField(choices=Literacy.choices), required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, required=False, default=0)


class JudgeRunCreateSerializer(serializers.Serializer):
    judge_model = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Model configuration id.")
    campaign = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                        help_text="Judge this campaign's conversations (or give `selection`).")
    selection = JudgeSelectionSerializer(required=False, help_text="Judge the finished conversations these match.")
    rubric = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                      help_text="Rubric id (default: the campaign's; required with `selection`).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    samples = serializers.IntegerField(min_value=1, max_value=MAX_SAMPLES, default=1)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, default=0)
    max_concurrent_calls = serializers.IntegerField(min_value=1, max_value=MAX_CONCURRENT_CALLS, default=8)


class JudgeRunActionSerializer(serializers.Serializer):
    run = JudgeRunSerializer()
    items = serializers.IntegerField(help_text="Items cancelled (cancel) or re-queued (retry).")


class JudgeRunFilter(QueryFilter):
    campaign = id_field("Runs over this campaign's conversations.")
    status = serializers.ChoiceField(required=False, choices=JudgeRun.Status.choices)


class JudgeScoreFilter(QueryFilter):
    status = serializers.ChoiceField(required=False, choices=JudgeItem.Status.choices,
                                     help_text="Only items in this state (default: all; scores exist for done ones).")
    conversation = id_field("Only this conversation's items.")


class JudgeAxisScoreSerializer(serializers.Serializer):
    value = serializers.FloatField()
    rationale = serializers.CharField()
    cited_messages = serializers.ListField(child=serializers.IntegerField(), help_text="1-based message numbers.")


class JudgeItemScoresSerializer(serializers.ModelSerializer):
    """One judge call (a conversation x sample) with its per-axis scores and full provenance."""

    status = status_field(JudgeItem.Status.choices, read_only=True)
    run = serializers.IntegerField(source="run_id")
    conversation = serializers.IntegerField(source="conversation_id")
    judge_model = serializers.SerializerMethodField(help_text="The judge's LiteLLM model string at launch.")
    judge_name = serializers.SerializerMethodField()
    prompt_version = serializers.CharField(source="run.prompt_version")
    rubric = serializers.CharField(source="run.rubric.slug")
    rubric_version = serializers.IntegerField(source="run.rubric.version")
    is_simulated = serializers.BooleanField(source="run.is_simulated")
    scores = serializers.SerializerMethodField()

    class Meta:
        model = JudgeItem
        fields = ["id", "run", "conversation", "sample_index", "seed", "status", "judge_model", "judge_name",
                  "prompt_version", "rubric", "rubric_version", "is_simulated", "scores", "raw_reply",
                  "failure_reason", "attempts", "calls", "prompt_tokens", "completion_tokens", "cost_usd",
                  "finished_at"]

    def get_judge_model(self, obj) -> str:
        return obj.run.model_snapshot.get("model", "")

    def get_judge_name(self, obj) -> str:
        return obj.run.model_snapshot.get("name", "")

    @extend_schema_field(serializers.DictField(child=JudgeAxisScoreSerializer()))
    def get_scores(self, obj):
        return {s.axis.key: {"value": s.value, "rationale": s.rationale, "cited_messages": s.cited_messages}
                for s in obj.scores.all()}
