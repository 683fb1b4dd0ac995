from django.urls import path

from . import views

app_name = "generation"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/new/", views.job_launch, name="job_launch"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/progress/", views.job_progress_fragment, name="job_progress"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("conversations/<int:pk>/", views.conversation_detail, name="conversation_detail"),
    path("cases/", views.case_list, name="case_list"),
    path("cases/import/", views.case_import, name="case_import"),
    path("cases/extract/", views.case_extract, name="case_extract"),
    path("cases/<int:pk>/", views.case_review, name="case_review"),
    path("models/", views.model_list, name="model_list"),
    path("models/new/", views.model_edit, name="model_create"),
    path("models/<int:pk>/", views.model_edit, name="model_edit"),
    path("models/add-local/", views.model_add_local, name="model_add_local"),
]
