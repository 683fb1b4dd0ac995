"""Judge-run pages, mounted at /judging/ (admins only)."""
from django.urls import path

from . import views

app_name = "judging"

urlpatterns = [
    path("campaigns/<int:campaign_pk>/panel/", views.campaign_panel, name="campaign_panel"),
    path("campaigns/<int:campaign_pk>/panel/runs/", views.campaign_runs, name="campaign_runs"),
    path("campaigns/<int:campaign_pk>/launch/", views.launch, name="launch"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run_retry"),
]
