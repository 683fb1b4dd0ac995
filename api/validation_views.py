"""Validation mode in the API: create a validation campaign from a finished judge run (admins), and read
the clinicians' agreement rate with the judge per axis, as on the results page."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from judging import validation
from judging.models import JudgeRun, ValidationCampaign
from results.validation_reporting import validation_report
from study_data.selectors import campaign_queryset

from . import serializers as s
from .permissions import CampaignAccess, ReadApi
from .views import ApiView, _campaign_error


class ValidationCampaignCreateSerializer(s.CampaignCreateSerializer):
    """A campaign's settings, with the judge run (and sample) whose scores clinicians check instead of a
    choice of conversations: the campaign holds the run's scored conversations, under the run's rubric."""

    rubric = None
    conversations = None
    selection = None
    judge_run = serializers.IntegerField(min_value=1, max_value=s.MAX_ID, help_text="A finished judge run's id.")
    sample_index = serializers.IntegerField(min_value=0, default=0, help_text="Which of its samples is shown.")
    open = serializers.BooleanField(default=False, help_text="Open the campaign at once.")

    def validate_judge_run(self, value):
        run = JudgeRun.objects.filter(pk=value).first()
        if run is None:
            raise serializers.ValidationError(f"No judge run with id {value}.")
        return run

    def validate(self, attrs):
        return attrs


@extend_schema(request=ValidationCampaignCreateSerializer, responses={201: OpenApiTypes.OBJECT},
               summary="Create a validation campaign from a judge run (admins)")
class JudgeValidationCreateView(ApiView):
    permission_classes = [CampaignAccess]

    def post(self, request):
        payload = ValidationCampaignCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            created = validation.create_validation_campaign(
                request.user, judge_run=data["judge_run"], name=data["name"], description=data["description"],
                raters=data["raters"], overlap_k=data["overlap_k"], lease_minutes=data["lease_minutes"],
                sample_index=data["sample_index"], open_now=data["open"])
        except validation.ValidationModeError as exc:
            raise _campaign_error(exc) from None
        campaign = campaign_queryset().get(pk=created.campaign_id)
        return Response({"campaign": s.CampaignSerializer(campaign).data, "judge_run": created.judge_run_id,
                         "sample_index": created.sample_index}, status=201)


@extend_schema(responses=OpenApiTypes.OBJECT, summary="Agreement of clinicians with the judge (validation mode)")
class CampaignJudgeValidationView(ApiView):
    """For a campaign in validation mode: per axis, the share of submitted verdicts agreeing with the judge,
    its 95% CI (`ci_method` says which: a seeded bootstrap over conversations, or Wilson below 30
    conversations), n, and the mean corrected-minus-judge score over the disagreements. 404 for a campaign
    that is not in validation mode."""

    permission_classes = [ReadApi]

    def get(self, request, pk):
        validation_campaign = get_object_or_404(ValidationCampaign.objects.select_related("judge_run"),
                                                campaign_id=pk)
        return Response(validation_report(validation_campaign))
