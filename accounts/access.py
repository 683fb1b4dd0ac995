"""Enforcement of role capabilities for views and the API (the decision itself is in roles.py)."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from .roles import Capability, can


def capability_required(capability: Capability):
    """Anonymous users go to the login page; a logged-in user without the capability gets 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not can(request.user, capability):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability
        return wrapped

    return decorator


def login_only(view):
    """For pages every role may see (home, own account)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


def api_capability(*capabilities: Capability, write: Capability | None = None):
    """A DRF permission class: read needs any of `capabilities`; unsafe methods need `write`."""

    class _Permission(BasePermission):
        def has_permission(self, request, view):
            user = request.user
            if request.method in ("GET", "HEAD", "OPTIONS"):
                return any(can(user, c) for c in capabilities)
            return write is not None and can(user, write)

    _Permission.__name__ = "Requires_" + "_".join(str(c) for c in capabilities)
    return _Permission
