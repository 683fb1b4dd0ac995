"""Export and import pages, mounted at /exports/ (mhsd_platform/urls.py)."""
from django.urls import path

from . import views

app_name = "exports"

urlpatterns = [
    path("", views.exports, name="index"),
    path("import/", views.import_page, name="import"),
]
