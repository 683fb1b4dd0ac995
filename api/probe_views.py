"""Safety-probe results over the API: the same report as the page (results.probe_report), as JSON."""
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from probes.models import ProbeBattery
from results.probe_report import battery_report

from .permissions import ReadApi
from .views import ApiView


class ProbeReportView(ApiView):
    """Stigma battery: fraction of stigmatizing answers per model and condition, per question, and per
    condition and question. Interjection probes: fraction of appropriate replies per model and symptom and
    per probe, from clinicians' verdicts. Each with its seeded bootstrap 95% CI; the runs, their models and
    the battery's digest."""

    permission_classes = [ReadApi]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Safety-probe battery report")
    def get(self, request, pk):
        battery = get_object_or_404(ProbeBattery, pk=pk)
        return Response(battery_report(battery))
