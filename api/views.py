"""REST API views, under /api/v1/. Thin: queries are in selectors.py, use cases in the apps' services,
exports, datasheets and imports in the study_data app. Every error leaves in the one JSON shape (errors.py)."""

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, generics, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from accounts.roles import ROLE_CAPABILITIES, Capability, can
from audit.services import record
from generation import services as generation_services
from generation.models import Conversation, GenerationJob
from rating import campaigns as campaign_ops
from rating.models import Campaign, Rubric
from rating.rubric_files import default_rubric
from results import agreement
from study_data import datasheet, export, importer
from study_data.selectors import campaign_queryset

from . import filters, selectors
from . import serializers as s
from .errors import error_body
from .pagination import ApiCursorPagination
from .permissions import CampaignAccess, ExportAccess, ImportAccess, JobAccess, OwnAssignments, ReadApi
from .schema import ApiAutoSchema, ErrorSerializer


class ExportThrottle(UserRateThrottle):
    """Exports stream whole campaigns: a tighter budget than ordinary reads."""

    scope = "export"  # rate: settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["export"]


class ImportThrottle(UserRateThrottle):
    scope = "import"


class ApiSchemaMixin:
    """Every API view: errors documented in the schema, and JSON only (no browsable-API HTML), so
    even a browser's Accept: text/html gets the one JSON error shape."""

    schema = ApiAutoSchema()
    renderer_classes = [JSONRenderer]


class ApiView(ApiSchemaMixin, APIView):
    pass


class RunActionView(ApiView):
    """POST one use case (cancel, retry) on one run: a generation job or a judge run. The answer is the run as
    it is afterwards and how many of its items the use case touched. A subclass per kind of run names its
    model, how to load it for the serializer, the answer's serializer and keys; one per action, the use case
    (and its schema: summary, description)."""

    model = None  # the use case gets the plain row
    # Not `action`: drf-spectacular (like ViewSets) reads view.action as a method name.
    use_case = None  # staticmethod: (run, actor) -> number of items cancelled or re-queued
    answer_serializer = None  # renders {run_key: the run, count_key: that number}; the schema names it too
    run_key = count_key = None

    def load(self, pk):
        """The run with what its serializer reads (related rows, counts)."""
        raise NotImplementedError

    def post(self, request, pk):
        n = self.use_case(get_object_or_404(self.model, pk=pk), request.user)
        return Response(self.answer_serializer({self.run_key: self.load(pk), self.count_key: n}).data)


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """`?format=` names the export or datasheet format here, not a DRF renderer: answer errors in JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


# --- me, schema -----------------------------------------------------------------------------------


class MeView(ApiView):
    """Who the token or session belongs to, and what that role may do."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "role": serializers.CharField(),
                "capabilities": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        user = request.user
        caps = sorted(str(c) for c in ROLE_CAPABILITIES.get(user.role, ()))
        return Response({"username": user.username, "role": user.role, "capabilities": caps})


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema; its errors use the API's JSON error shape, not the YAML renderer."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response


# --- conversations --------------------------------------------------------------------------------


@extend_schema(parameters=[filters.ConversationFilter], summary="List conversations")
class ConversationListView(ApiSchemaMixin, generics.ListAPIView):
    """Conversations with their provenance (no messages: see the detail). Cursor-paginated."""

    permission_classes = [ReadApi]
    serializer_class = s.ConversationSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        self.params = filters.ConversationFilter.parse(self.request)
        return filters.ConversationFilter.apply(selectors.conversations(), self.params)

    def cursor_ordering(self):
        order = self.params.get("ordering", "id")
        return (order, "id") if order.lstrip("-") != "id" else (order,)


@extend_schema(
    parameters=[OpenApiParameter("trace", OpenApiTypes.BOOL, description="Include the per-turn trace.")],
    summary="One conversation with its messages, stages and provenance",
)
class ConversationDetailView(ApiSchemaMixin, generics.RetrieveAPIView):
    permission_classes = [ReadApi]
    serializer_class = s.ConversationDetailSerializer
    queryset = selectors.conversation_detail()

    def get_serializer_context(self):
        flag = self.request.query_params.get("trace", "")
        return {**super().get_serializer_context(), "with_trace": flag.lower() in ("1", "true", "yes")}


@extend_schema(parameters=[filters.ScoreFilter], responses=s.ConversationScoresSerializer,
               summary="Aggregated scores of one conversation, per campaign")
class ConversationScoresView(ApiView):
    """Mean, SD and number of raters per axis over submitted ratings (SQL aggregates), per campaign."""

    permission_classes = [ReadApi]

    def get(self, request, pk):
        params = filters.ScoreFilter.parse(request)
        conversation = get_object_or_404(Conversation, pk=pk)
        return Response(selectors.conversation_scores(conversation, params.get("campaign")))


class JSONLinesParser(BaseParser):
    """The raw body of a JSONL upload, read up to the import size limit (413 beyond it)."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = importer.max_import_bytes()
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(importer.too_large_message(None))
        return data


class JSONLParser(JSONLinesParser):
    media_type = "application/jsonl"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = "The request body is too large."


class ImportParams(filters.QueryFilter):
    source = serializers.CharField(
        required=False, max_length=100, help_text="Source label for lines that do not name one (default 'import')."
    )
    on_duplicate = serializers.ChoiceField(
        required=False, choices=["error", "skip"], default="error",
        help_text="error: any already-imported (source, external_id) rejects the whole file (409); skip: import "
        "the rest and list the duplicates.",
    )


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .jsonl file, one conversation per line.")


class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField()
    skipped_duplicates = serializers.IntegerField()
    conversations = inline_serializer("ImportedConversation", {
        "line": serializers.IntegerField(), "id": serializers.IntegerField(), "source": serializers.CharField(),
        "external_id": serializers.CharField()}, many=True)
    duplicates = inline_serializer("SkippedDuplicate", {
        "line": serializers.IntegerField(), "existing_id": serializers.IntegerField(),
        "source": serializers.CharField(), "external_id": serializers.CharField()}, many=True)


@extend_schema(
    summary="Import conversations (JSONL, OpenAI chat format)",
    parameters=[ImportParams],
    request={"application/x-ndjson": OpenApiTypes.STR, "application/jsonl": OpenApiTypes.STR,
             "multipart/form-data": ImportUploadSerializer},
    responses={201: ImportResultSerializer, 200: ImportResultSerializer,
               409: OpenApiResponse(ErrorSerializer, description="Only duplicates; nothing imported."),
               413: OpenApiResponse(ErrorSerializer, description="Larger than the import size limit.")},
)
class ConversationImportView(ApiView):
    """Each line: {"messages": [{"role": "user"|"assistant"|"system", "content": ...}], optional "source",
    "external_id", "model", "ground_truth_diagnosis", "condition", "is_simulated", "metadata"}. Every error
    is listed with its line and field, and nothing is imported unless every line is valid."""

    permission_classes = [ImportAccess]
    parser_classes = [JSONLinesParser, JSONLParser, MultiPartParser]
    throttle_classes = [AnonRateThrottle, UserRateThrottle, ImportThrottle]
    extra_error_responses = {"409": "Only duplicates; nothing imported.", "413": "Larger than the size limit."}

    def post(self, request):
        params = ImportParams.parse(request)
        try:
            importer.check_declared_length(request.META)  # before the body is read at all
            data = self._jsonl_bytes(request)
            result = importer.import_conversations(
                request.user, data, default_source=params.get("source", importer.DEFAULT_SOURCE),
                on_duplicate=params.get("on_duplicate", "error"),
            )
        except importer.ImportRejected as exc:
            details = {"errors": [e.as_dict() for e in exc.errors]} if exc.errors else None
            return Response(error_body(exc.status, exc.code, exc.message, details), status=exc.status)
        code = status.HTTP_201_CREATED if result.imported else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)

    @staticmethod
    def _jsonl_bytes(request) -> bytes:
        """The JSONL: the raw body (read by the JSONL parsers up to the limit) or the multipart file."""
        data = request.data
        raw_types = (JSONLinesParser.media_type, JSONLParser.media_type)
        if not isinstance(data, bytes) and request.content_type.split(";")[0].strip() in raw_types:
            return b""  # an empty body: DRF hands parsers nothing to parse
        if isinstance(data, bytes):
            return data
        upload = data.get("file") if hasattr(data, "get") else None
        if upload is None or isinstance(upload, str):
            raise exceptions.ValidationError({"file": [
                "Send the JSONL as the request body (Content-Type: application/x-ndjson) or upload it in the "
                "'file' field of a multipart form."]})
        return importer.read_upload(upload)


# --- rubrics and campaigns ------------------------------------------------------------------------


@extend_schema(summary="Rubric versions")
class RubricListView(ApiSchemaMixin, generics.ListAPIView):
    permission_classes = [ReadApi]
    serializer_class = s.RubricSerializer
    pagination_class = ApiCursorPagination
    queryset = Rubric.objects.prefetch_related("axes")


def _campaign_error(exc: campaign_ops.CampaignError):
    return exceptions.ValidationError({k if k != "__all__" else "non_field_errors": [v] for k, v in exc.errors.items()})


class CampaignListView(ApiSchemaMixin, generics.ListAPIView):
    """Campaigns with progress counts. Admins create them with POST."""

    permission_classes = [CampaignAccess]
    serializer_class = s.CampaignSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        self.params = filters.CampaignFilter.parse(self.request)
        return filters.CampaignFilter.apply(campaign_queryset(), self.params)

    def cursor_ordering(self):
        order = self.params.get("ordering", "-created_at")
        return (order, "id") if order.lstrip("-") != "id" else (order,)

    @extend_schema(parameters=[filters.CampaignFilter], summary="List campaigns")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.CampaignCreateSerializer, responses={201: s.CampaignSerializer},
                   summary="Create a campaign (admins)")
    def post(self, request):
        payload = s.CampaignCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        common = dict(
            name=data["name"], description=data.get("description", ""),
            rubric=data.get("rubric") or default_rubric(), raters=data["raters"], overlap_k=data["overlap_k"],
            lease_minutes=data["lease_minutes"],
        )
        if "conversations" in data:
            common["conversation_ids"] = data["conversations"]
        else:
            common["selection"] = campaign_ops.Selection(**data["selection"])
        try:
            campaign = campaign_ops.create_campaign(request.user, **common)
        except campaign_ops.CampaignError as exc:
            raise _campaign_error(exc) from None
        return Response(s.CampaignSerializer(campaign_queryset().get(pk=campaign.pk)).data, status=201)


class CampaignDetailView(ApiView):
    permission_classes = [CampaignAccess]

    @extend_schema(responses=s.CampaignSerializer, summary="One campaign")
    def get(self, request, pk):
        return Response(s.CampaignSerializer(get_object_or_404(campaign_queryset(), pk=pk)).data)

    @extend_schema(request=s.CampaignPatchSerializer, responses=s.CampaignSerializer,
                   summary="Change a campaign (admins)")
    def patch(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        payload = s.CampaignPatchSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        settings_fields = {"name", "description", "overlap_k", "lease_minutes", "raters"}
        try:
            campaign_ops.change_campaign(
                request.user, campaign, settings={k: v for k, v in data.items() if k in settings_fields},
                add_conversation_ids=data.get("add_conversations") or [], status=data.get("status"),
            )
        except campaign_ops.CampaignError as exc:
            raise _campaign_error(exc) from None
        return Response(s.CampaignSerializer(campaign_queryset().get(pk=pk)).data)


@extend_schema(parameters=[filters.RatingFilter], summary="Ratings of a campaign (raters pseudonymised)")
class CampaignRatingsView(ApiSchemaMixin, generics.ListAPIView):
    """Submitted ratings by default. Raters appear as stable pseudonyms; admins may add usernames with
    ?identify=1 (researchers may not)."""

    permission_classes = [ReadApi]
    serializer_class = s.RatingSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        self.params = filters.RatingFilter.parse(self.request)
        if self.params.get("identify") and not can(self.request.user, Capability.MANAGE_USERS):
            raise exceptions.PermissionDenied("Only admins may see who the raters are (identify=1).")
        campaign = get_object_or_404(Campaign, pk=self.kwargs["pk"])
        return filters.RatingFilter.apply(selectors.ratings_of_campaign(campaign), self.params)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "identify": bool(getattr(self, "params", {}).get("identify"))}

    def cursor_ordering(self):
        return (self.params.get("ordering", "id"),)


@extend_schema(summary="Aggregated scores per conversation of a campaign")
class CampaignScoresView(ApiSchemaMixin, generics.ListAPIView):
    """Per conversation: submitted raters and per-axis mean, SD and n (one SQL GROUP BY per page)."""

    permission_classes = [ReadApi]
    serializer_class = s.CampaignConversationScoresSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        self.campaign = get_object_or_404(Campaign, pk=self.kwargs["pk"])
        return selectors.campaign_items(self.campaign)

    def cursor_ordering(self):
        return ("conversation_id",)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = selectors.campaign_scores_for_page(self.campaign, page)
        return self.get_paginated_response(rows)


class AgreementParams(filters.QueryFilter):
    n_boot = serializers.IntegerField(
        required=False, min_value=0, max_value=agreement.MAX_N_BOOT,
        help_text="Bootstrap resamples for alpha's confidence interval. Without it, the results app's current "
        f"snapshot is served when there is one, else it is computed with {agreement.DEFAULT_N_BOOT}.",
    )


@extend_schema(parameters=[AgreementParams], responses=s.AgreementSerializer,
               summary="Inter-rater agreement per axis")
class CampaignAgreementView(ApiView):
    """Krippendorff's alpha (with bootstrap CI), Gwet's AC1/AC2, percent agreement, pairwise kappa, ICC and
    per-rater statistics per rated axis (results.stats), over submitted ratings; categorical (nominal) axes
    add "nominal": AC1 with its interval, confusion matrices, agreement with a reference label and
    high-risk recall. Cached until a rating of the campaign changes."""

    permission_classes = [ReadApi]

    def get(self, request, pk):
        params = AgreementParams.parse(request)
        campaign = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
        return Response(agreement.campaign_agreement(campaign, params.get("n_boot")))


class CampaignJudgeAgreementView(ApiView):
    """For every finished judge run that scored the campaign's conversations: Krippendorff's alpha and Gwet's
    AC2 between the judge and the clinicians' mean, the judge as one more rater (alpha with and without it),
    bias with limits of agreement and self-consistency, each with the platform's seeded bootstrap interval.
    Judge scores never count as a clinician's rating."""

    permission_classes = [ReadApi]

    def answer(self, pk, run_pk=None):
        from results.judge_reporting import campaign_judge_agreement

        campaign = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
        payload = campaign_judge_agreement(campaign, run_pk)
        if payload is None:
            raise exceptions.NotFound("This judge run has no finished scores on this campaign's conversations.")
        return Response(payload)

    @extend_schema(responses=s.JudgeAgreementSerializer, operation_id="campaigns_judge_agreement",
                   summary="LLM judge against the clinicians, per judge run and axis")
    def get(self, request, pk):
        return self.answer(pk)


class CampaignJudgeRunAgreementView(CampaignJudgeAgreementView):
    """The same statistics for one judge run (404 if it scored none of the campaign's conversations)."""

    @extend_schema(responses=s.JudgeAgreementSerializer, operation_id="campaigns_judge_run_agreement",
                   summary="One LLM judge run against the clinicians")
    def get(self, request, pk, run_pk):
        return self.answer(pk, run_pk)


class ExportParams(filters.QueryFilter):
    format = serializers.ChoiceField(choices=export.FORMAT_NAMES, required=False, default=export.FORMAT_NAMES[0])
    layout = serializers.ChoiceField(choices=export.LAYOUTS, required=False, default=export.LAYOUTS[0],
                                     help_text="CSV only: long (conversation x rater x axis) or wide.")


def _datasheet_links(request, campaign) -> str:
    url = request.build_absolute_uri(f"/api/v1/campaigns/{campaign.pk}/datasheet")
    return (f'<{url}>; rel="describedby"; type="application/json", '
            f'<{url}?format=md>; rel="describedby"; type="text/markdown"')


@extend_schema(
    parameters=[ExportParams],
    responses={
        (200, f.content_type.split(";")[0]): OpenApiTypes.BINARY if f.binary else OpenApiTypes.STR
        for f in export.EXPORT_FORMATS
    },
    summary="Export a scored campaign (streamed)",
)
class CampaignExportView(ApiView):
    """Streamed with server-side cursors; memory stays flat however large the campaign. The `Link` header
    points at the datasheet (rel="describedby")."""

    permission_classes = [ExportAccess]
    content_negotiation_class = JsonOnlyNegotiation
    throttle_classes = [AnonRateThrottle, UserRateThrottle, ExportThrottle]

    def get(self, request, pk):
        params = ExportParams.parse(request)
        campaign = get_object_or_404(Campaign, pk=pk)
        fmt = export.export_format(params.get("format", export.FORMAT_NAMES[0]),
                                   params.get("layout", export.LAYOUTS[0]))
        response = StreamingHttpResponse(fmt.stream(campaign), content_type=fmt.content_type)
        response["Content-Disposition"] = f'attachment; filename="{fmt.filename(campaign)}"'
        response["Link"] = _datasheet_links(request, campaign)
        response["X-Export-Schema-Version"] = export.EXPORT_SCHEMA_VERSION
        response["Cache-Control"] = "no-store"
        record(request.user, "campaign.export", campaign,
               new={"format": fmt.name, "layout": params.get("layout", export.LAYOUTS[0])})
        return response


class DatasheetParams(filters.QueryFilter):
    format = serializers.ChoiceField(choices=["json", "md"], required=False, default="json")


@extend_schema(
    parameters=[DatasheetParams],
    responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/markdown"): OpenApiTypes.STR},
    summary="The datasheet of a campaign's export",
)
class CampaignDatasheetView(ApiView):
    """Field meanings, counts, rubric version, agreement per axis, generation settings, export time and
    platform version, as JSON or Markdown."""

    permission_classes = [ExportAccess]
    content_negotiation_class = JsonOnlyNegotiation

    def get(self, request, pk):
        params = DatasheetParams.parse(request)
        campaign = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
        base = request.build_absolute_uri("/").rstrip("/")
        sheet = datasheet.build_datasheet(campaign, base_url=base)
        if params.get("format") == "md":
            response = HttpResponse(datasheet.render_markdown(sheet), content_type="text/markdown; charset=utf-8")
            response["Content-Disposition"] = f'inline; filename="campaign-{campaign.pk}-datasheet.md"'
            return response
        return Response(sheet)


# --- jobs -----------------------------------------------------------------------------------------


class JobListView(ApiSchemaMixin, generics.ListAPIView):
    """Generation jobs with conversation counts by status. Admins launch them with POST."""

    permission_classes = [JobAccess]
    serializer_class = s.JobSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        self.params = filters.JobFilter.parse(self.request)
        return filters.JobFilter.apply(selectors.jobs(), self.params)

    def cursor_ordering(self):
        order = self.params.get("ordering", "-created_at")
        return (order, "id") if order.lstrip("-") != "id" else (order,)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return selectors.attach_job_counts(page) if page is not None else page

    @extend_schema(parameters=[filters.JobFilter], summary="List generation jobs")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.JobCreateSerializer, responses={201: s.JobDetailSerializer},
                   summary="Launch a generation job (admins)")
    def post(self, request):
        payload = s.JobCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        job_request = generation_services.JobRequest(
            name=data["name"], cases=data["cases"], patient_model=data["patient_model"],
            sensemaker_model=data["sensemaker_model"], helper_model=data["helper_model"],
            seed=data["seed"], max_concurrent_calls=data["max_concurrent_calls"],
            prompt_version=data["prompt_version"],
            **{k: tuple(data[k]) for k in ("traits", "literacies") if data.get(k)},
        )
        try:
            job = generation_services.launch_job(request.user, job_request)
        except generation_services.GenerationError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(_job_detail(job.pk), status=201)


def _job(pk):
    """One job with what its serializers read (models, conversation counts by status)."""
    job = get_object_or_404(selectors.jobs(), pk=pk)
    selectors.attach_job_counts([job])
    return job


def _job_detail(pk):
    return s.JobDetailSerializer(_job(pk)).data


class JobDetailView(ApiView):
    permission_classes = [JobAccess]

    @extend_schema(responses=s.JobDetailSerializer, summary="One generation job with its progress")
    def get(self, request, pk):
        return Response(_job_detail(pk))


class JobActionView(RunActionView):
    permission_classes = [JobAccess]
    model = GenerationJob
    answer_serializer = s.JobActionSerializer
    run_key, count_key = "job", "conversations"
    load = staticmethod(_job)


@extend_schema(request=None, responses=s.JobActionSerializer, summary="Cancel a job (admins)")
class JobCancelView(JobActionView):
    """Queued conversations are cancelled at once; running ones finish cleanly."""

    use_case = staticmethod(generation_services.cancel_job)


@extend_schema(request=None, responses=s.JobActionSerializer, summary="Retry a job's failed conversations (admins)")
class JobRetryView(JobActionView):
    """Failed conversations are queued again with their original seeds."""

    use_case = staticmethod(generation_services.retry_failed_conversations)


# --- a rater's own assignments --------------------------------------------------------------------


class OwnAssignmentParams(filters.QueryFilter):
    campaign = filters.id_field("Only this campaign.")


@extend_schema(parameters=[OwnAssignmentParams], summary="My assignments (raters)")
class MyAssignmentsView(ApiSchemaMixin, generics.ListAPIView):
    """A rater's own assignments. Nothing about models or other raters."""

    permission_classes = [OwnAssignments]
    serializer_class = s.OwnAssignmentSerializer
    pagination_class = ApiCursorPagination

    def get_queryset(self):
        params = OwnAssignmentParams.parse(self.request)
        queryset = selectors.own_assignments(self.request.user)
        if "campaign" in params:
            queryset = queryset.filter(campaign_id=params["campaign"])
        return queryset


# --- unknown routes -------------------------------------------------------------------------------


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Any other path under /api/v1/: a 404 in the JSON error shape (after authentication, so a bad
    token is still a 401)."""

    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def _not_found(self, request, *args, **kwargs):
        path = request.path
        hint = ""
        other = path + "/"
        try:
            if resolve(other).url_name != "not_found":
                hint = f" Did you mean {other}?"
        except Resolver404:
            pass
        raise exceptions.NotFound(f"There is no API route {path}.{hint}")

    get = post = put = patch = delete = head = options = _not_found


_not_found_view = NotFoundView.as_view()


@csrf_exempt  # the view it hands over to is a DRF view, which enforces CSRF for session users itself
def fallback_view(request, rest=""):
    """The last route under /api/v1/. A resource path written with a trailing slash
    (`POST /api/v1/jobs/`, as clients and our own docs often write it) is served by its route rather
    than answered 404: a redirect would turn a POST into a GET and lose its body. Everything else is
    the JSON 404."""
    if request.path.endswith("/") and request.path.rstrip("/"):
        try:
            match = resolve(request.path.rstrip("/"))
        except Resolver404:
            match = None
        if match is not None and match.url_name != "not_found":
            return match.func(request, *match.args, **match.kwargs)
    return _not_found_view(request, rest=rest)
