from django.urls import path

from . import views

app_name = "results"

urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/<int:pk>/", views.campaign_results, name="campaign"),
    path("campaigns/<int:pk>/status", views.status, name="status"),
    path("campaigns/<int:pk>/recompute", views.recompute, name="recompute"),
    path("campaigns/<int:pk>/snapshot.json", views.snapshot_json, name="snapshot_json"),
    path("campaigns/<int:pk>/tables/<slug:name>.csv", views.table_csv, name="table_csv"),
    path("campaigns/<int:pk>/figures/<slug:name>.svg", views.figure_svg, name="figure"),
]
