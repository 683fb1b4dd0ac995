"""Who may call what in the API. The decision itself lives in accounts/roles.py."""
from rest_framework.permissions import BasePermission

from accounts.access import api_capability
from accounts.roles import Capability, can

# Schema and Swagger UI are for people who hold API rights (researchers and admins).
CanUseApi = api_capability(Capability.USE_API)


def requires(read: tuple = (), write: tuple = ()):
    """A DRF permission class: safe methods need ALL of `read`, unsafe ones ALL of `write`.

    Without credentials the answer is always 401. For a signed-in caller, a method the view does not
    implement is let through so that DRF answers 405 (in the JSON error shape), not a misleading 403.
    """

    class _Permission(BasePermission):
        def has_permission(self, request, view):
            if not request.user or not request.user.is_authenticated:
                return False
            if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
                return True
            needed = read if request.method in ("GET", "HEAD", "OPTIONS") else write
            return bool(needed) and all(can(request.user, c) for c in needed)

    _Permission.__name__ = "Requires_" + "_".join(str(c) for c in (*read, "w", *write))
    return _Permission


# Researchers and admins read; writes need the capability of the resource.
ReadApi = requires(read=(Capability.USE_API,))
CampaignAccess = requires(read=(Capability.USE_API,), write=(Capability.USE_API, Capability.MANAGE_CAMPAIGNS))
JobAccess = requires(
    read=(Capability.USE_API, Capability.VIEW_GENERATION),
    write=(Capability.USE_API, Capability.LAUNCH_GENERATION),
)
# Judge runs: researchers and admins read them and their scores; admins launch, cancel and retry.
JudgeAccess = requires(read=(Capability.USE_API,), write=(Capability.USE_API, Capability.RUN_JUDGES))
# Probe runs name the model under test: researchers and admins read them, admins launch, cancel and retry
# (the capability of the launch page).
ProbeRunAccess = requires(read=(Capability.USE_API,), write=(Capability.USE_API, Capability.LAUNCH_GENERATION))
ExportAccess = requires(read=(Capability.USE_API, Capability.EXPORT_DATA))
ImportAccess = requires(write=(Capability.USE_API, Capability.IMPORT_CONVERSATIONS))
# Raters reach only their own assignments.
OwnAssignments = requires(read=(Capability.RATE,))
