"""Admin-facing campaign pages (create, monitor, safety queue), mounted at /campaigns/."""
from django.urls import path

from . import campaign_views as views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("new/preview/", views.selection_preview, name="preview"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/open/", views.campaign_open, name="open"),
    path("<int:pk>/close/", views.campaign_close, name="close"),
    path("<int:pk>/reclaim/", views.campaign_reclaim, name="reclaim"),
    path("<int:pk>/gold/", views.campaign_gold, name="gold"),
    path("assignments/<int:pk>/release/", views.assignment_release, name="release"),
    path("safety/", views.safety_queue, name="safety_queue"),
    path("safety/<int:pk>/", views.flag_handle, name="flag_handle"),
    path("rubrics/", views.rubrics, name="rubrics"),
]
