"""OpenID Connect sign-in through the real flow against tests/oidc_provider.py on loopback:
Django test client -> /oidc/authenticate/ -> the provider's authorize -> /oidc/callback/ -> the
backend fetches the token, JWKS and userinfo from the provider over HTTP."""
import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role, role_from_sso_groups
from audit.models import AuditEvent
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider():
    with OIDCProvider() as op:
        # Configure the platform from the provider's discovery document, as an operator would.
        doc = requests.get(f"{op.issuer}/.well-known/openid-configuration", timeout=5).json()
        with override_settings(
            OIDC_ENABLED=True,
            AUTHENTICATION_BACKENDS=[*django_settings.AUTHENTICATION_BACKENDS, "accounts.sso.PlatformOIDCBackend"],
            OIDC_ISSUER=doc["issuer"],
            OIDC_RP_CLIENT_ID=CLIENT_ID,
            OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_OP_AUTHORIZATION_ENDPOINT=doc["authorization_endpoint"],
            OIDC_OP_TOKEN_ENDPOINT=doc["token_endpoint"],
            OIDC_OP_USER_ENDPOINT=doc["userinfo_endpoint"],
            OIDC_OP_JWKS_ENDPOINT=doc["jwks_uri"],
            OIDC_ADMIN_GROUPS=["mhsd-admins"],
            OIDC_RESEARCHER_GROUPS=["mhsd-researchers"],
            OIDC_RATER_GROUPS=["mhsd-raters", "psychiatry-clinicians"],
        ):
            yield op


def sign_in(client: Client, provider: OIDCProvider):
    """Follow the authorization-code flow: our redirect, the provider's consent, our callback."""
    start = client.get(reverse("oidc_authentication_init"), {"next": "/"})
    assert start.status_code == 302 and start["Location"].startswith(provider.issuer + "/authorize")
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    callback = consent.headers["Location"].removeprefix("http://testserver")
    return client.get(callback)


def _who(client):
    me = client.get(reverse("api:me"))
    return me.json() if me.status_code == 200 else None


@pytest.mark.parametrize(("groups", "role"), [
    (["psychiatry-clinicians"], Role.RATER),
    (["mhsd-researchers"], Role.RESEARCHER),
    (["mhsd-admins", "mhsd-raters"], Role.ADMIN),
])
def test_first_sso_login_creates_the_user_with_the_mapped_role(provider, groups, role):
    provider.user = {"sub": "abc-123", "email": "dr.k@example.org", "given_name": "Kim", "family_name": "Lee",
                     "groups": groups}
    client = Client()
    done = sign_in(client, provider)
    assert done.status_code == 302 and done["Location"] == "/"
    user = User.objects.get(username="sso-abc-123")
    assert user.role == role and user.email == "dr.k@example.org" and not user.has_usable_password()
    assert _who(client)["role"] == role
    assert AuditEvent.objects.filter(action="user.sso_create", object_id=str(user.pk)).exists()


def test_a_later_login_updates_the_role_and_audits_it(provider):
    provider.user = {"sub": "s-2", "email": "a@example.org", "groups": ["mhsd-raters"]}
    sign_in(Client(), provider)
    provider.user = {"sub": "s-2", "email": "a@example.org", "groups": ["mhsd-researchers"]}
    client = Client()
    sign_in(client, provider)
    assert User.objects.get(username="sso-s-2").role == Role.RESEARCHER
    change = AuditEvent.objects.get(action="user.sso_role_change")
    assert change.data == {"old": "rater", "new": "researcher"}


def test_no_mapped_group_is_refused_with_a_clear_message(provider):
    provider.user = {"sub": "s-3", "email": "x@example.org", "groups": ["cardiology"]}
    client = Client()
    refused = sign_in(client, provider)
    assert refused.status_code == 302 and "sso=refused" in refused["Location"]
    assert _who(client) is None and not User.objects.filter(username="sso-s-3").exists()
    page = client.get(refused["Location"])
    assert b'id="sso-refused"' in page.content


def test_a_deactivated_account_stays_out(provider):
    provider.user = {"sub": "s-4", "email": "y@example.org", "groups": ["mhsd-raters"]}
    sign_in(Client(), provider)
    User.objects.filter(username="sso-s-4").update(is_active=False)
    client = Client()
    sign_in(client, provider)
    assert _who(client) is None


@pytest.mark.parametrize("tamper", [
    {"tamper_nonce": "replayed-nonce"},  # an ID token minted for another sign-in
    {"tamper_state": "forged-state"},  # a callback this browser never started (login CSRF)
    {"tamper_audience": "someone-else"},  # an ID token issued to another client
], ids=["nonce", "state", "audience"])
def test_a_tampered_sign_in_is_refused(provider, tamper):
    provider.user = {"sub": "s-5", "groups": ["mhsd-admins"]}
    for knob, value in tamper.items():
        setattr(provider, knob, value)
    client = Client(raise_request_exception=False)
    assert sign_in(client, provider).status_code == 400 and _who(client) is None
    assert not User.objects.filter(username="sso-s-5").exists()


def test_a_provider_error_at_the_token_step_is_a_refusal_not_a_server_error(provider):
    provider.user = {"sub": "s-8", "groups": ["mhsd-admins"]}
    provider.refuse_token = True
    client = Client(raise_request_exception=False)
    response = sign_in(client, provider)
    assert response.status_code == 302 and "sso=refused" in response["Location"] and _who(client) is None


def test_the_login_page_shows_the_sso_button_only_when_enabled(provider, settings):
    assert b'id="sso-login"' in Client().get(reverse("login")).content
    settings.OIDC_ENABLED = False
    assert b'id="sso-login"' not in Client().get(reverse("login")).content
    assert Client().get(reverse("oidc_authentication_init")).status_code == 404
    assert Client().get(reverse("oidc_authentication_callback"), {"code": "x", "state": "y"}).status_code == 404


def test_sso_is_off_by_default():
    assert django_settings.OIDC_ENABLED is False
    assert "accounts.sso.PlatformOIDCBackend" not in django_settings.AUTHENTICATION_BACKENDS
    assert b'id="sso-login"' not in Client().get(reverse("login")).content
    assert Client().get(reverse("oidc_authentication_init")).status_code == 404


def test_role_mapping_prefers_the_most_privileged_mapped_group():
    mapping = {"admin": ["a"], "researcher": ["r"], "rater": ["c"]}
    assert role_from_sso_groups(["c", "r"], mapping) == Role.RESEARCHER
    assert role_from_sso_groups("c", mapping) == Role.RATER
    assert role_from_sso_groups(["z"], mapping) is None
    assert role_from_sso_groups(None, mapping) is None


def test_switching_sso_on_without_its_settings_fails_the_system_check(settings):
    from accounts.checks import sso_configuration

    settings.OIDC_ENABLED = True
    ids = {problem.id for problem in sso_configuration(None)}
    assert ids == {"accounts.E001", "accounts.W001"}


def test_sso_never_takes_over_a_local_account_with_the_same_name(provider):
    from tests.factories import make_user

    local = make_user(Role.RATER, username="sso-s-9")
    provider.user = {"sub": "s-9", "groups": ["mhsd-admins"]}
    client = Client()
    refused = sign_in(client, provider)
    assert "sso=refused" in refused["Location"] and _who(client) is None
    local.refresh_from_db()
    assert local.role == Role.RATER and local.has_usable_password()


def test_admins_cannot_create_local_users_with_the_sso_prefix(client):
    from tests.factories import make_user

    client.force_login(make_user(Role.ADMIN))
    response = client.post(reverse("accounts:user_create"),
                           {"username": "sso-x", "email": "x@example.org", "role": "rater"})
    assert response.status_code == 200 and "username" in response.context["form"].errors
    assert not User.objects.filter(username="sso-x").exists()
