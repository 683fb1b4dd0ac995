"""The OIDC endpoints of mozilla-django-oidc, 404 unless OIDC_ENABLED (accounts/sso.py). Their names
stay un-namespaced: the library reverses `oidc_authentication_callback` itself."""
from django.urls import path
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .sso import sso_enabled_only

urlpatterns = [
    path("authenticate/", sso_enabled_only(OIDCAuthenticationRequestView.as_view()), name="oidc_authentication_init"),
    path("callback/", sso_enabled_only(OIDCAuthenticationCallbackView.as_view()), name="oidc_authentication_callback"),
]
