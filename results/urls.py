from django.urls import path

from . import judge_views, probe_views, views

app_name = "results"

urlpatterns = [
    path("", views.index, name="index"),
    path("campaigns/<int:pk>/", views.campaign_results, name="campaign"),
    path("campaigns/<int:pk>/status", views.status, name="status"),
    path("campaigns/<int:pk>/recompute", views.recompute, name="recompute"),
    path("campaigns/<int:pk>/snapshot.json", views.snapshot_json, name="snapshot_json"),
    path("campaigns/<int:pk>/tables/<slug:name>.csv", views.table_csv, name="table_csv"),
    path("campaigns/<int:pk>/figures/<slug:name>.svg", views.figure_svg, name="figure"),
    path("campaigns/<int:pk>/judge/<int:run_pk>/tables/<slug:name>.csv", judge_views.judge_table_csv,
         name="judge_table_csv"),
    path("campaigns/<int:pk>/judge/<int:run_pk>/figures/<slug:name>.svg", judge_views.judge_figure_svg,
         name="judge_figure"),
    path("probes/<int:pk>/", probe_views.probe_report, name="probe_report"),
    path("probes/<int:pk>/tables/<slug:name>.csv", probe_views.probe_table_csv, name="probe_table_csv"),
    path("probes/<int:pk>/figure.svg", probe_views.probe_figure, name="probe_figure"),
]
