"""Safety-probe results over the API: the same report as the page (results.probe_report), as JSON."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from probes.models import ProbeBattery
from results.probe_report import stigma_report

from .permissions import ReadApi
from .views import ApiView


class ProbeReportView(ApiView):
    """Fraction of stigmatizing answers per model and condition, per question, and per condition and
    question, each with its seeded bootstrap 95% CI; the runs, their models and the battery's digest."""

    permission_classes = [ReadApi]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Stigma battery report")
    def get(self, request, pk):
        battery = get_object_or_404(ProbeBattery, pk=pk)
        return Response(stigma_report(battery))
