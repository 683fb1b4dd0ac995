"""Export and import pages, mounted at /exports/ (mhsd_platform/urls.py)."""
from django.urls import path

from . import ui_views

app_name = "exports"

urlpatterns = [
    path("", ui_views.exports, name="index"),
    path("import/", ui_views.import_page, name="import"),
]
