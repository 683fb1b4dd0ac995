"""OpenID Connect single sign-on (mozilla-django-oidc), off unless OIDC_ENABLED=1.

Users are matched on the provider's stable subject (`sub`), never on e-mail, which a provider may let
people change; each sign-in re-reads the role from the configured groups claim, and a person in none of
the mapped groups is refused. ID tokens are checked for signature (JWKS), nonce, expiry, audience and
issuer (the library itself checks neither audience nor issuer).
"""
import logging
from functools import wraps

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from audit.services import record

from .models import User
from .roles import role_from_sso_groups

logger = logging.getLogger(__name__)
USERNAME_PREFIX = "sso-"


def sso_enabled_only(view):
    """The SSO URLs exist in every configuration (so the URL access matrix covers them) but answer 404
    unless single sign-on is switched on."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not enabled.")
        return view(request, *args, **kwargs)

    return wrapped


def groups_by_role() -> dict[str, list[str]]:
    return {
        "admin": settings.OIDC_ADMIN_GROUPS,
        "researcher": settings.OIDC_RESEARCHER_GROUPS,
        "rater": settings.OIDC_RATER_GROUPS,
    }


def role_for_claims(claims: dict):
    return role_from_sso_groups(claims.get(settings.OIDC_ROLE_CLAIM), groups_by_role())


class PlatformOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            # The provider refused the code or is unreachable: a failed sign-in, not a server error.
            logger.warning("OIDC provider error during sign-in: %s", exc)
            return None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token was not issued to this platform (aud).")
        if settings.OIDC_ISSUER and payload.get("iss") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("The ID token comes from another issuer (iss).")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        # OIDC Core 5.3.2: the userinfo subject must be the ID token's, or the answer is someone else's.
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo subject differs from the ID token's.")
        # Providers put groups in the ID token, the userinfo answer, or both.
        if claims.get(settings.OIDC_ROLE_CLAIM) is None:
            claims[settings.OIDC_ROLE_CLAIM] = payload.get(settings.OIDC_ROLE_CLAIM)
        return claims

    def verify_claims(self, claims):
        return bool(claims.get("sub")) and role_for_claims(claims) is not None

    def filter_users_by_claims(self, claims):
        # Only accounts SSO created (no usable password): never a local account that happens to match.
        candidates = User.objects.filter(username=USERNAME_PREFIX + claims["sub"])
        return [user for user in candidates if not user.has_usable_password()]

    @transaction.atomic
    def create_user(self, claims):
        username = (USERNAME_PREFIX + claims["sub"])[:150]
        if User.objects.filter(username=username).exists():
            # A local account (with a password) holds the name: refuse rather than take it over.
            raise SuspiciousOperation(f"A local account is named {username}; single sign-on will not use it.")
        user = User(username=username, role=role_for_claims(claims))
        _copy_profile(user, claims)
        user.set_unusable_password()  # signs in only through the provider
        user.save()
        record(None, "user.sso_create", user, new={"username": user.username, "role": user.role})
        return user

    @transaction.atomic
    def update_user(self, user, claims):
        old_role, new_role = user.role, role_for_claims(claims)
        user.role = new_role
        _copy_profile(user, claims)
        user.save()
        if old_role != new_role:
            record(None, "user.sso_role_change", user, old=old_role, new=new_role)
        return user


def _copy_profile(user: User, claims: dict) -> None:
    user.email = (claims.get("email") or "")[:254]
    user.first_name = (claims.get("given_name") or "")[:150]
    user.last_name = (claims.get("family_name") or "")[:150]
