from django.urls import path

from . import views

app_name = "probes"

urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.battery_import, name="battery_import"),
    path("batteries/<int:pk>/", views.battery_detail, name="battery_detail"),
    path("runs/new/", views.run_launch, name="run_launch"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/progress", views.run_progress_fragment, name="run_progress"),
    path("runs/<int:pk>/items.csv", views.run_items_csv, name="run_items_csv"),
    path("runs/<int:pk>/cancel", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/retry", views.run_retry, name="run_retry"),
    path("runs/<int:pk>/judge", views.run_judge, name="run_judge"),
    path("runs/<int:pk>/campaign/", views.run_campaign, name="run_campaign"),
]
