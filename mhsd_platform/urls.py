from django.contrib import admin
from django.urls import include, path

from core.views import healthz

from . import views

admin.site.site_header = "MHSD rating platform: admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("accounts.urls")),
    path("generation/", include("generation.urls")),
    path("rate/", include("rating.urls")),
    path("campaigns/", include("rating.campaign_urls")),
    path("results/", include("results.urls")),
    path("api/v1/", include("api.urls")),
    path("exports/", include("study_data.urls")),
    path("django-admin/", admin.site.urls),
]

# Under /api/ these answer in the API's JSON error shape; elsewhere they are Django's own pages.
handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
