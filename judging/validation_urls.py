from django.urls import path

from . import validation_views as views

app_name = "judge_validation"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.create, name="create"),
    path("a/<int:pk>/", views.validate, name="validate"),
    path("a/<int:pk>/save/", views.save, name="save"),
    path("a/<int:pk>/submit/", views.submit, name="submit"),
]
