"""Validation mode in the API: clinicians' agreement rate with the judge per axis, as on the results page."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from judging.models import ValidationCampaign
from results.validation_reporting import validation_report

from .permissions import ReadApi
from .views import ApiView


@extend_schema(responses=OpenApiTypes.OBJECT, summary="Agreement of clinicians with the judge (validation mode)")
class CampaignJudgeValidationView(ApiView):
    """For a campaign in validation mode: per axis, the share of submitted verdicts agreeing with the judge,
    its 95% CI (`ci_method` says which: a seeded bootstrap over conversations, or Wilson below 30
    conversations), n, and the mean corrected-minus-judge score over the disagreements. 404 for a campaign
    that is not in validation mode."""

    permission_classes = [ReadApi]

    def get(self, request, pk):
        validation = get_object_or_404(ValidationCampaign.objects.select_related("judge_run"), campaign_id=pk)
        return Response(validation_report(validation))
