"""Safety probes over the API: the battery report (results.probe_report, as on the page); probe runs (list,
detail, launch by admins, cancel and retry by admins); and each run's item-level dataset as paginated JSON
or a streamed JSONL/CSV download (study_data/probe_export.py). Runs name the model under test, so raters
get none of it (as for judge runs). Use cases are probes/services.py's."""
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from audit.services import record
from probes import services
from probes.forms import RunLaunchForm
from probes.models import ProbeBattery, ProbeItem, ProbeRun
from results.probe_report import battery_report
from study_data import probe_export

from . import probe_serializers as s
from .pagination import ApiCursorPagination
from .permissions import ExportAccess, ProbeRunAccess, ReadApi
from .views import ApiSchemaMixin, ApiView, ExportThrottle, JsonOnlyNegotiation, RunActionView


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


def _runs():
    return ProbeRun.objects.select_related("battery", "model", "judge_model")


class ProbeRunListView(ApiSchemaMixin, generics.ListAPIView):
    """Probe runs, newest first, with the model under test. Admins launch one with POST."""

    permission_classes = [ProbeRunAccess]
    serializer_class = s.ProbeRunSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        params = s.ProbeRunFilter.parse(self.request)
        runs = _runs()
        if "battery" in params:
            runs = runs.filter(battery_id=params["battery"])
        if "status" in params:
            runs = runs.filter(status=params["status"])
        if "model" in params:
            runs = runs.filter(model_snapshot__model=params["model"])
        if "model_config" in params:
            runs = runs.filter(model_id=params["model_config"])
        if "protocol" in params:
            runs = runs.filter(battery__protocol=params["protocol"])
        return runs

    def cursor_ordering(self):
        return ("-created_at", "-id")

    @extend_schema(parameters=[s.ProbeRunFilter], summary="List probe runs")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.ProbeRunCreateSerializer, responses={201: s.ProbeRunDetailSerializer},
                   summary="Launch a probe run (admins)")
    def post(self, request):
        payload = s.ProbeRunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        # The launch page's own form checks the values (so the API refuses exactly what the page refuses).
        form = RunLaunchForm(data={k: v for k, v in payload.validated_data.items() if v is not None})
        if not form.is_valid():
            raise exceptions.ValidationError({("non_field_errors" if field == "__all__" else field): list(errors)
                                              for field, errors in form.errors.items()})
        try:
            run = services.launch_run(request.user, form.run_request())
        except services.ProbeError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(s.ProbeRunDetailSerializer(_runs().get(pk=run.pk)).data, status=201)


class ProbeRunDetailView(ApiView):
    permission_classes = [ProbeRunAccess]

    @extend_schema(responses=s.ProbeRunDetailSerializer,
                   summary="One probe run with its progress, calls, tokens, cost and failures")
    def get(self, request, pk):
        return Response(s.ProbeRunDetailSerializer(get_object_or_404(_runs(), pk=pk)).data)


class ProbeRunActionView(RunActionView):
    permission_classes = [ProbeRunAccess]
    model = ProbeRun
    answer_serializer = s.ProbeRunActionSerializer
    run_key, count_key = "run", "items"

    def load(self, pk):
        return get_object_or_404(_runs(), pk=pk)


@extend_schema(request=None, responses=s.ProbeRunActionSerializer, summary="Cancel a probe run (admins)")
class ProbeRunCancelView(ProbeRunActionView):
    """Queued items and queued judge answers stop at once; running ones finish. `items` counts the items."""

    use_case = staticmethod(services.cancel_run)


@extend_schema(request=None, responses=s.ProbeRunActionSerializer,
               summary="Retry a probe run's failed items and judge answers (admins)")
class ProbeRunRetryView(ProbeRunActionView):
    """Failed items are queued again with their original seeds, and failed judge answers of finished items;
    `items` counts both."""

    use_case = staticmethod(services.retry_failed_items)


@extend_schema(
    parameters=[s.ProbeItemParams],
    responses={
        (200, "application/json"): s.ProbeItemRowSerializer(many=True),
        (200, "application/x-ndjson"): OpenApiTypes.STR,
        (200, "text/csv"): OpenApiTypes.STR,
    },
    summary="A probe run's items: the item-level dataset (paginated JSON, or streamed JSONL/CSV)",
)
class ProbeRunItemsView(ApiSchemaMixin, generics.ListAPIView):
    """One row per probe item: battery and version, condition or symptom, demographic variant, placement,
    the model under test, the parsed answer or the reply, the stigmatizing flag (stigma) or the clinicians'
    verdicts with their appropriate flags per rater pseudonym (interjection), the failure reason, and the
    LLM judges' answers with their provenance, apart from the clinicians'. `?format=jsonl` or `csv` streams
    the whole run (X-Export-Schema-Version gives the fields' version)."""

    permission_classes = [ExportAccess]
    serializer_class = s.ProbeItemRowSerializer
    pagination_class = ApiCursorPagination
    content_negotiation_class = JsonOnlyNegotiation

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.query_params.get("format") in probe_export.STREAMS:
            throttles = [AnonRateThrottle(), UserRateThrottle(), ExportThrottle()]
        return throttles

    def get_queryset(self):
        items = ProbeItem.objects.filter(run=self.run)
        if "status" in self.params:
            items = items.filter(status=self.params["status"])
        if "condition" in self.params:
            items = items.filter(condition=self.params["condition"])
        return items

    def list(self, request, *args, **kwargs):
        self.params = s.ProbeItemParams.parse(request)
        self.run = get_object_or_404(probe_export.run_queryset(), pk=self.kwargs["pk"])
        fmt = self.params.get("format", "json")
        if fmt in probe_export.STREAMS:
            response = StreamingHttpResponse(probe_export.STREAMS[fmt](self.run),
                                             content_type=probe_export.CONTENT_TYPES[fmt])
            response["Content-Disposition"] = f'attachment; filename="{probe_export.filename(self.run, fmt)}"'
            response["X-Export-Schema-Version"] = probe_export.PROBE_EXPORT_SCHEMA_VERSION
            response["Cache-Control"] = "no-store"
            record(request.user, "probes.run_export", self.run, new={"format": fmt})
            return response
        page = self.paginate_queryset(self.get_queryset())
        response = self.get_paginated_response(probe_export.rows_for(self.run, page))
        response["X-Export-Schema-Version"] = probe_export.PROBE_EXPORT_SCHEMA_VERSION
        return response
