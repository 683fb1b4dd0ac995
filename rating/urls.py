from django.urls import path

from . import views

app_name = "rating"

urlpatterns = [
    path("", views.rater_home, name="home"),
    path("campaigns/<int:campaign_pk>/", views.campaign, name="campaign"),
    path("campaigns/<int:campaign_pk>/next/", views.next_conversation, name="next"),
    path("a/<int:pk>/", views.rate, name="rate"),
    path("a/<int:pk>/save/", views.save, name="save"),
    path("a/<int:pk>/submit/", views.submit, name="submit"),
    path("a/<int:pk>/heartbeat/", views.heartbeat, name="heartbeat"),
    path("a/<int:pk>/skip/", views.skip, name="skip"),
    path("a/<int:pk>/flag/", views.flag, name="flag"),
]
