"""Query-parameter filters, validated by serializers so a bad value is a 400 naming the parameter.

The same serializers document the parameters in the OpenAPI schema (`extend_schema(parameters=[...])`).
"""
import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from generation.models import ConversationSource, ConversationStatus, JobStatus, Literacy, Trait
from rating.models import CampaignStatus

MAX_ID = 2**63 - 1  # Postgres bigint: a larger id is a 400, not a database error


def id_field(help_text=""):
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text=help_text)


@extend_schema_field(OpenApiTypes.DATETIME)
class DateOrDateTimeField(serializers.Field):
    """ISO 8601 date-time, or a date (meaning its midnight, UTC). Naive date-times are UTC."""

    default_error_messages = {"invalid": "Give an ISO 8601 date (2026-05-01) or date-time (2026-05-01T12:00:00Z)."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data)
            if value is None:
                day = parse_date(data)
                value = None if day is None else dt.datetime.combine(day, dt.time.min)
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if timezone.is_naive(value):
            value = value.replace(tzinfo=dt.UTC)
        try:
            # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python accepts.
            return value.astimezone(dt.UTC)
        except OverflowError:
            self.fail("invalid")

    def to_representation(self, value):
        return value.isoformat()


def _optional_bool(help_text):
    return serializers.BooleanField(required=False, allow_null=True, default=None, help_text=help_text)


class QueryFilter(serializers.Serializer):
    """Base: validate request.query_params; unknown parameters are ignored."""

    @classmethod
    def parse(cls, request) -> dict:
        serializer = cls(data=request.query_params)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        return {k: v for k, v in serializer.validated_data.items() if v not in (None, "")}


class DateRange(QueryFilter):
    created_after = DateOrDateTimeField(required=False, help_text="Created at or after (inclusive).")
    created_before = DateOrDateTimeField(required=False, help_text="Created before (exclusive).")

    def validate(self, attrs):
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and before <= after:
            raise ValidationError({"created_before": "must be later than created_after"})
        return attrs

    @staticmethod
    def by_date(queryset, params: dict):
        if "created_after" in params:
            queryset = queryset.filter(created_at__gte=params["created_after"])
        if "created_before" in params:
            queryset = queryset.filter(created_at__lt=params["created_before"])
        return queryset


class ConversationFilter(DateRange):
    campaign = id_field("Conversations in this campaign.")
    job = id_field("Made by this generation job.")
    model = serializers.CharField(
        required=False, max_length=200, help_text="The model under test (sensemaker), e.g. openai/gpt-4o-mini."
    )
    condition = serializers.CharField(required=False, max_length=120, help_text="Case condition (case-insensitive).")
    trait = serializers.ChoiceField(required=False, choices=Trait.choices, help_text="The persona's dominant trait.")
    literacy = serializers.ChoiceField(required=False, choices=Literacy.choices, help_text="Persona health literacy.")
    rubric = serializers.SlugField(required=False, max_length=80, help_text="In a campaign rated with this rubric.")
    rubric_version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="In a campaign rated with this rubric version."
    )
    source = serializers.ChoiceField(required=False, choices=ConversationSource.choices)
    status = serializers.ChoiceField(required=False, choices=ConversationStatus.choices)
    is_simulated = _optional_bool("Only simulated (true) or only real-model (false) conversations.")
    ordering = serializers.ChoiceField(
        required=False, choices=["id", "-id", "created_at", "-created_at"], default="id"
    )

    @staticmethod
    def apply(queryset, params: dict):
        if "campaign" in params:
            queryset = queryset.filter(campaign_items__campaign_id=params["campaign"])
        if "job" in params:
            queryset = queryset.filter(job_id=params["job"])
        if "model" in params:
            queryset = queryset.filter(sensemaker_model=params["model"])
        if "condition" in params:
            queryset = queryset.filter(condition__iexact=params["condition"])
        if "trait" in params:
            queryset = queryset.filter(persona__trait=params["trait"])
        if "literacy" in params:
            queryset = queryset.filter(persona__literacy=params["literacy"])
        if "rubric" in params or "rubric_version" in params:
            rubric = {}
            if "rubric" in params:
                rubric["campaign_items__campaign__rubric__slug"] = params["rubric"]
            if "rubric_version" in params:
                rubric["campaign_items__campaign__rubric__version"] = params["rubric_version"]
            queryset = queryset.filter(**rubric)
        for name in ("source", "status", "is_simulated"):
            if name in params:
                queryset = queryset.filter(**{name: params[name]})
        queryset = DateRange.by_date(queryset, params)
        # Joins through campaign items can repeat a conversation.
        if any(k in params for k in ("campaign", "rubric", "rubric_version")):
            queryset = queryset.distinct()
        return queryset


class CampaignFilter(DateRange):
    status = serializers.ChoiceField(required=False, choices=CampaignStatus.choices)
    rubric = serializers.SlugField(required=False, max_length=80)
    rubric_version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    ordering = serializers.ChoiceField(
        required=False, choices=["id", "-id", "created_at", "-created_at"], default="-created_at"
    )

    @staticmethod
    def apply(queryset, params: dict):
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "rubric" in params:
            queryset = queryset.filter(rubric__slug=params["rubric"])
        if "rubric_version" in params:
            queryset = queryset.filter(rubric__version=params["rubric_version"])
        queryset = DateRange.by_date(queryset, params)
        return queryset


class RatingFilter(QueryFilter):
    conversation = id_field("Ratings of this conversation.")
    rater = serializers.CharField(required=False, max_length=16, help_text="A rater pseudonym (R-XXXXXXXX).")
    status = serializers.ChoiceField(
        required=False, choices=["submitted", "draft", "any"], default="submitted",
        help_text="Drafts are work in progress and are not data; the default lists submitted ratings only.",
    )
    submitted_after = DateOrDateTimeField(required=False)
    submitted_before = DateOrDateTimeField(required=False)
    identify = serializers.BooleanField(
        required=False, default=False,
        help_text="Admins only: add each rater's username. Everyone else gets pseudonyms only.",
    )
    job = id_field("Ratings of conversations made by this generation job.")
    model = serializers.CharField(required=False, max_length=200, help_text="The model under test (sensemaker).")
    condition = serializers.CharField(required=False, max_length=120, help_text="Case condition (case-insensitive).")
    trait = serializers.ChoiceField(required=False, choices=Trait.choices, help_text="The persona's dominant trait.")
    literacy = serializers.ChoiceField(required=False, choices=Literacy.choices, help_text="Persona health literacy.")
    rubric_version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="Given under this rubric version."
    )
    ordering = serializers.ChoiceField(required=False, choices=["id", "-id"], default="id")

    @staticmethod
    def apply(queryset, params: dict):
        if "conversation" in params:
            queryset = queryset.filter(assignment__item__conversation_id=params["conversation"])
        conversation = "assignment__item__conversation__"
        for name, lookup in (("job", "job_id"), ("model", "sensemaker_model"), ("condition", "condition__iexact"),
                             ("trait", "persona__trait"), ("literacy", "persona__literacy")):
            if name in params:
                queryset = queryset.filter(**{conversation + lookup: params[name]})
        if "rubric_version" in params:
            queryset = queryset.filter(rubric__version=params["rubric_version"])
        if "rater" in params:
            queryset = queryset.filter(assignment__rater__pseudonym=params["rater"])
        if params.get("status", "submitted") != "any":
            queryset = queryset.filter(status=params.get("status", "submitted"))
        if "submitted_after" in params:
            queryset = queryset.filter(submitted_at__gte=params["submitted_after"])
        if "submitted_before" in params:
            queryset = queryset.filter(submitted_at__lt=params["submitted_before"])
        return queryset


class JobFilter(DateRange):
    status = serializers.ChoiceField(required=False, choices=JobStatus.choices)
    model = serializers.CharField(required=False, max_length=200, help_text="The sensemaker model string.")
    ordering = serializers.ChoiceField(
        required=False, choices=["id", "-id", "created_at", "-created_at"], default="-created_at"
    )

    @staticmethod
    def apply(queryset, params: dict):
        if "status" in params:
            queryset = queryset.filter(status=params["status"])
        if "model" in params:
            queryset = queryset.filter(sensemaker_model__model=params["model"])
        queryset = DateRange.by_date(queryset, params)
        return queryset


class ScoreFilter(QueryFilter):
    campaign = id_field("Only this campaign's ratings.")


class PageFilter(QueryFilter):
    """Only the pagination parameters (documented by the paginator)."""
