"""User and token management; every change is written to the audit trail."""
import secrets

from django.db import transaction
from django.utils import timezone

from audit.services import record

from .models import ApiToken, User


@transaction.atomic
def create_user(actor, *, username, email, role, first_name="", last_name="") -> tuple[User, str]:
    """Create a user with a one-time temporary password that the admin hands over."""
    password = secrets.token_urlsafe(12)
    user = User(username=username, email=email, role=role, first_name=first_name, last_name=last_name)
    user.set_password(password)
    user.save()
    record(actor, "user.create", user, new={"username": username, "role": role})
    return user, password


@transaction.atomic
def set_user_active(actor, user: User, active: bool) -> User:
    if user.pk == actor.pk and not active:
        raise ValueError("You cannot deactivate your own account.")
    old = user.is_active
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        # A deactivated user's tokens stop working at once and stay revoked.
        user.api_tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    record(actor, "user.activate" if active else "user.deactivate", user, old=old, new=active)
    return user


@transaction.atomic
def issue_token(user: User, name: str) -> tuple[ApiToken, str]:
    token, raw = ApiToken.issue(user, name)
    record(user, "token.create", token, new={"name": name, "prefix": token.prefix})
    return token, raw


@transaction.atomic
def revoke_token(user: User, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(user, "token.revoke", token, new={"name": token.name})
