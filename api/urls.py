from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from accounts.access import capability_required
from accounts.roles import Capability

from . import judging_views, probe_views, validation_views, views

app_name = "api"

# Resource paths are written without a trailing slash (as in the published API: /api/v1/campaigns/7/export);
# the fallback serves them with one too (POST /api/v1/jobs/ works). schema/, docs/ and me/ keep theirs.
urlpatterns = [
    path("schema/", views.SchemaView.as_view(), name="schema"),
    # A browser page: people without API rights get the login page or a 403, like any other page.
    path(
        "docs/",
        capability_required(Capability.USE_API)(SpectacularSwaggerView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("me/", views.MeView.as_view(), name="me"),
    path("conversations", views.ConversationListView.as_view(), name="conversation_list"),
    path("conversations/import", views.ConversationImportView.as_view(), name="conversation_import"),
    path("conversations/<int:pk>", views.ConversationDetailView.as_view(), name="conversation_detail"),
    path("conversations/<int:pk>/scores", views.ConversationScoresView.as_view(), name="conversation_scores"),
    path("rubrics", views.RubricListView.as_view(), name="rubric_list"),
    path("campaigns", views.CampaignListView.as_view(), name="campaign_list"),
    path("campaigns/<int:pk>", views.CampaignDetailView.as_view(), name="campaign_detail"),
    path("campaigns/<int:pk>/ratings", views.CampaignRatingsView.as_view(), name="campaign_ratings"),
    path("campaigns/<int:pk>/scores", views.CampaignScoresView.as_view(), name="campaign_scores"),
    path("campaigns/<int:pk>/agreement", views.CampaignAgreementView.as_view(), name="campaign_agreement"),
    path("campaigns/<int:pk>/judge-agreement", views.CampaignJudgeAgreementView.as_view(),
         name="campaign_judge_agreement"),
    path("campaigns/<int:pk>/judge-agreement/<int:run_pk>", views.CampaignJudgeRunAgreementView.as_view(),
         name="campaign_judge_run_agreement"),
    path("campaigns/<int:pk>/export", views.CampaignExportView.as_view(), name="campaign_export"),
    path("judge-validations", validation_views.JudgeValidationCreateView.as_view(), name="judge_validation_create"),
    path("campaigns/<int:pk>/judge-validation", validation_views.CampaignJudgeValidationView.as_view(),
         name="campaign_judge_validation"),
    path("campaigns/<int:pk>/datasheet", views.CampaignDatasheetView.as_view(), name="campaign_datasheet"),
    path("jobs", views.JobListView.as_view(), name="job_list"),
    path("jobs/<int:pk>", views.JobDetailView.as_view(), name="job_detail"),
    path("jobs/<int:pk>/cancel", views.JobCancelView.as_view(), name="job_cancel"),
    path("jobs/<int:pk>/retry", views.JobRetryView.as_view(), name="job_retry"),
    path("probes/batteries/<int:pk>/report", probe_views.ProbeReportView.as_view(), name="probe_report"),
    path("probe-runs", probe_views.ProbeRunListView.as_view(), name="probe_run_list"),
    path("probe-runs/<int:pk>", probe_views.ProbeRunDetailView.as_view(), name="probe_run_detail"),
    path("probe-runs/<int:pk>/cancel", probe_views.ProbeRunCancelView.as_view(), name="probe_run_cancel"),
    path("probe-runs/<int:pk>/retry", probe_views.ProbeRunRetryView.as_view(), name="probe_run_retry"),
    path("probe-runs/<int:pk>/items", probe_views.ProbeRunItemsView.as_view(), name="probe_run_items"),
    path("judge-runs", judging_views.JudgeRunListView.as_view(), name="judge_run_list"),
    path("judge-runs/<int:pk>", judging_views.JudgeRunDetailView.as_view(), name="judge_run_detail"),
    path("judge-runs/<int:pk>/cancel", judging_views.JudgeRunCancelView.as_view(), name="judge_run_cancel"),
    path("judge-runs/<int:pk>/retry", judging_views.JudgeRunRetryView.as_view(), name="judge_run_retry"),
    path("judge-runs/<int:pk>/scores", judging_views.JudgeScoresView.as_view(), name="judge_run_scores"),
    path("my/assignments", views.MyAssignmentsView.as_view(), name="my_assignments"),
    # Last: every other path under /api/v1/ is a 404 in the JSON error shape.
    re_path(r"^(?P<rest>[\s\S]*)$", views.fallback_view, name="not_found"),  # any character, newlines too
]
