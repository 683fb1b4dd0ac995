"""Judge-run API: list, detail, launch (admins), cancel and retry (admins), and judge scores with
provenance (researchers and admins). Use cases are judging/services.py's."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response

from generation.models import ModelConfig
from judging import services
from judging.models import JudgeItem, JudgeRun
from rating.campaigns import Selection
from rating.models import Campaign, Rubric

from . import judging_serializers as s
from .pagination import ApiCursorPagination
from .permissions import JudgeAccess
from .views import ApiSchemaMixin, ApiView, RunActionView


def _runs():
    return JudgeRun.objects.select_related("judge_model", "rubric")


class JudgeRunListView(ApiSchemaMixin, generics.ListAPIView):
    """Judge runs, newest first. Admins launch one with POST."""

    permission_classes = [JudgeAccess]
    serializer_class = s.JudgeRunSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        params = s.JudgeRunFilter.parse(self.request)
        runs = _runs()
        if "campaign" in params:
            runs = runs.filter(campaign_id=params["campaign"])
        if "status" in params:
            runs = runs.filter(status=params["status"])
        return runs

    def cursor_ordering(self):
        return ("-created_at", "-id")

    @extend_schema(parameters=[s.JudgeRunFilter], summary="List judge runs")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.JudgeRunCreateSerializer, responses={201: s.JudgeRunDetailSerializer},
                   summary="Launch a judge run (admins)")
    def post(self, request):
        payload = s.JudgeRunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        not_found = {}
        judge = ModelConfig.objects.filter(pk=data["judge_model"]).first()
        if judge is None:
            not_found["judge_model"] = [f"No model configuration {data['judge_model']}."]
        campaign = rubric = selection = None
        if "campaign" in data:
            campaign = Campaign.objects.select_related("rubric").filter(pk=data["campaign"]).first()
            if campaign is None:
                not_found["campaign"] = [f"No campaign {data['campaign']}."]
        if "rubric" in data:
            rubric = Rubric.objects.filter(pk=data["rubric"]).first()
            if rubric is None:
                not_found["rubric"] = [f"No rubric {data['rubric']}."]
        if "selection" in data:
            selection = Selection(**data["selection"])
        if not_found:
            raise exceptions.ValidationError(not_found)
        try:
            run = services.launch_run(request.user, services.JudgeRequest(
                judge_model=judge, campaign=campaign, selection=selection, rubric=rubric, name=data["name"],
                samples=data["samples"], seed=data["seed"], max_concurrent_calls=data["max_concurrent_calls"],
            ))
        except services.JudgeRunError as exc:
            raise exceptions.ValidationError({("non_field_errors" if field == "__all__" else field): [message]
                                              for field, message in exc.errors.items()}) from None
        return Response(s.JudgeRunDetailSerializer(_runs().get(pk=run.pk)).data, status=201)


class JudgeRunDetailView(ApiView):
    permission_classes = [JudgeAccess]

    @extend_schema(responses=s.JudgeRunDetailSerializer, summary="One judge run with its progress and failures")
    def get(self, request, pk):
        return Response(s.JudgeRunDetailSerializer(get_object_or_404(_runs(), pk=pk)).data)


class JudgeRunActionView(RunActionView):
    permission_classes = [JudgeAccess]
    model = JudgeRun
    answer_serializer = s.JudgeRunActionSerializer
    run_key, count_key = "run", "items"

    def load(self, pk):
        return get_object_or_404(_runs(), pk=pk)


@extend_schema(request=None, responses=s.JudgeRunActionSerializer, summary="Cancel a judge run (admins)")
class JudgeRunCancelView(JudgeRunActionView):
    """Queued items are cancelled at once; running ones finish."""

    use_case = staticmethod(services.cancel_run)


@extend_schema(request=None, responses=s.JudgeRunActionSerializer, summary="Retry a judge run's failed items (admins)")
class JudgeRunRetryView(JudgeRunActionView):
    """Failed items are queued again with their original seeds."""

    use_case = staticmethod(services.retry_failed_judge_items)


class JudgeScoresView(ApiSchemaMixin, generics.ListAPIView):
    """A judge run's items (conversation x sample), each with its per-axis scores, rationales, cited
    messages, the raw reply and provenance: judge model, prompt version, rubric version, sample, seed.
    Judge scores are kept apart from the clinicians' ratings (`/campaigns/{id}/ratings`)."""

    permission_classes = [JudgeAccess]
    serializer_class = s.JudgeItemScoresSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        run = get_object_or_404(JudgeRun, pk=self.kwargs["pk"])
        params = s.JudgeScoreFilter.parse(self.request)
        items = JudgeItem.objects.filter(run=run).select_related("run__rubric").prefetch_related("scores__axis")
        if "status" in params:
            items = items.filter(status=params["status"])
        if "conversation" in params:
            items = items.filter(conversation_id=params["conversation"])
        return items

    @extend_schema(parameters=[s.JudgeScoreFilter], summary="A judge run's scores with provenance")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
