"""`manage.py check`: single sign-on switched on without what it needs is caught at start-up, not at a
clinician's first sign-in."""
from django.conf import settings
from django.core.checks import Error, Warning, register

SSO_REQUIRED = {
    "OIDC_ISSUER": "OIDC_ISSUER", "OIDC_RP_CLIENT_ID": "OIDC_CLIENT_ID", "OIDC_RP_CLIENT_SECRET": "OIDC_CLIENT_SECRET",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "OIDC_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT": "OIDC_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT": "OIDC_USERINFO_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT": "OIDC_JWKS_ENDPOINT",
}


@register()
def sso_configuration(app_configs, **kwargs):
    if not settings.OIDC_ENABLED:
        return []
    missing = [env for name, env in SSO_REQUIRED.items() if not getattr(settings, name, "")]
    problems = []
    if missing:
        problems.append(Error(f"OIDC_ENABLED=1 but {', '.join(missing)} not set.", id="accounts.E001",
                              hint="See the README, section Security."))
    if not (settings.OIDC_ADMIN_GROUPS or settings.OIDC_RESEARCHER_GROUPS or settings.OIDC_RATER_GROUPS):
        problems.append(Warning("Single sign-on is on but no group gives a role, so every SSO sign-in is refused.",
                                id="accounts.W001", hint="Set OIDC_RATER_GROUPS, OIDC_RESEARCHER_GROUPS or "
                                                         "OIDC_ADMIN_GROUPS."))
    return problems
