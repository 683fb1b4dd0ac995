"""Roles and what each may do: the one place where permissions are decided.

Views, the API and templates ask `can(user, Capability.X)`; nothing else inspects `user.role`.
"""
from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    RATER = "rater", "Clinician rater"
    RESEARCHER = "researcher", "Researcher"


class Capability(StrEnum):
    MANAGE_USERS = "manage_users"
    MANAGE_MODELS = "manage_models"
    MANAGE_CASES = "manage_cases"
    LAUNCH_GENERATION = "launch_generation"
    RUN_JUDGES = "run_judges"
    VIEW_GENERATION = "view_generation"
    MANAGE_CAMPAIGNS = "manage_campaigns"
    VIEW_SAFETY_QUEUE = "view_safety_queue"
    VIEW_RESULTS = "view_results"
    EXPORT_DATA = "export_data"
    IMPORT_CONVERSATIONS = "import_conversations"
    RATE = "rate"
    USE_API = "use_api"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability) - {Capability.RATE},
    Role.RESEARCHER: frozenset(
        {Capability.VIEW_RESULTS, Capability.EXPORT_DATA, Capability.VIEW_GENERATION, Capability.USE_API}
    ),
    # Raters reach only their own assignments; they hold no API token rights beyond that.
    Role.RATER: frozenset({Capability.RATE}),
}


def can(user, capability: Capability) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return capability in ROLE_CAPABILITIES.get(getattr(user, "role", ""), frozenset())


# Single sign-on: the identity provider's groups decide the role (accounts/sso.py reads the claim).
# When a person is in several mapped groups, the most privileged mapping wins, so that granting admin
# in the hospital's directory is enough; nobody gets a role without being in one of the groups.
SSO_ROLE_PRECEDENCE = (Role.ADMIN, Role.RESEARCHER, Role.RATER)


def role_from_sso_groups(groups, groups_by_role: dict[str, list[str]]) -> Role | None:
    """The platform role for an SSO user in `groups` (a claim: a list or one string); None refuses."""
    if isinstance(groups, str):
        groups = [groups]
    held = {str(group) for group in (groups or [])}
    for role in SSO_ROLE_PRECEDENCE:
        if held & set(groups_by_role.get(role, [])):
            return role
    return None
