from django.urls import path

from . import validation_views as views

app_name = "validation_results"

urlpatterns = [
    path("campaigns/<int:pk>/", views.campaign, name="campaign"),
    path("campaigns/<int:pk>/agreement.csv", views.agreement_csv, name="agreement_csv"),
]
