from .roles import ROLE_CAPABILITIES


def role(request):
    user = getattr(request, "user", None)
    caps = ROLE_CAPABILITIES.get(getattr(user, "role", ""), frozenset()) if user else frozenset()
    if not (user and user.is_authenticated and user.is_active):
        caps = frozenset()
    return {"caps": {str(c) for c in caps}}


def sso(request):
    from django.conf import settings

    return {"sso_enabled": settings.OIDC_ENABLED, "sso_label": settings.OIDC_BUTTON_LABEL}
