"""Sign-in lockout (django-axes on the real Postgres), reset and token-creation rate limits (real Redis),
the audited unlock, and no password-accepting route around them in the API."""
import base64

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.throttling import Rate
from audit.models import AuditEvent
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _post_login(client, username, password, ip="10.1.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _logged_in(client) -> bool:
    return client.get(reverse("api:me")).status_code == 200


@override_settings(LOGIN_FAILURE_LIMIT=5)
def test_account_locks_after_n_failures_and_the_right_password_is_refused_until_unlocked():
    user = make_user(Role.RATER)
    client = Client()
    for _ in range(4):
        assert _post_login(client, user.username, "wrong").status_code == 200
    assert not AuditEvent.objects.filter(action="auth.lockout").exists()
    fifth = _post_login(client, user.username, "wrong")
    assert fifth.status_code == 429 and b"Too many failed sign-in attempts" in fifth.content
    # The correct password, from the same address or another one, does not get in while locked.
    for ip in ("10.1.0.1", "10.9.9.9"):
        locked = _post_login(client, user.username, PASSWORD, ip=ip)
        assert locked.status_code == 429 and b'id="locked-out"' in locked.content
        assert not _logged_in(client)
    # Exactly one audit event for the lockout, however many refused attempts followed.
    lockouts = AuditEvent.objects.filter(action="auth.lockout")
    assert lockouts.count() == 1 and lockouts.get().data["username"] == user.username
    # Axes keeps the failed requests' form data, with the password masked.
    kept = "".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "password=" in kept and "wrong" not in kept and PASSWORD not in kept

    call_command("unlock_login", "--username", user.username, verbosity=0)
    unlock = AuditEvent.objects.get(action="auth.unlock")
    assert unlock.data["username"] == user.username and unlock.data["removed"] >= 1
    assert _post_login(client, user.username, PASSWORD).status_code == 302
    assert _logged_in(client)


@override_settings(LOGIN_FAILURE_LIMIT=3, LOGIN_IP_FAILURE_LIMIT=6)
def test_one_address_is_locked_only_at_its_own_higher_limit_so_a_ward_behind_nat_keeps_working():
    ward = [make_user(Role.RATER) for _ in range(3)]
    client = Client()
    # Colleagues behind one address mistype twice each (6 failures in all, under 3 per account) ...
    for user in ward[:2]:
        for _ in range(2):
            _post_login(client, user.username, "typo", ip="192.0.2.10")
    assert _post_login(client, ward[2].username, PASSWORD, ip="192.0.2.10").status_code == 302
    # ... and a sprayer trying many accounts from one address is stopped at the address limit.
    sprayer = Client()
    for n in range(6):
        _post_login(sprayer, f"guess-{n}", "Winter2026!", ip="198.51.100.7")
    refused = _post_login(sprayer, ward[0].username, PASSWORD, ip="198.51.100.7")
    assert refused.status_code == 429 and not _logged_in(sprayer)
    # Others elsewhere are unaffected.
    assert _post_login(Client(), ward[1].username, PASSWORD, ip="203.0.113.5").status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_django_admin_login_is_covered_and_the_admin_action_unlocks_with_an_audit_event():
    locked = make_user(Role.RESEARCHER)
    client = Client()
    for _ in range(3):
        client.post(reverse("admin:login"), {"username": locked.username, "password": "x"}, REMOTE_ADDR="10.2.0.1")
    assert _post_login(client, locked.username, PASSWORD, ip="10.2.0.2").status_code == 429

    admin_client = Client()
    admin = make_user(Role.ADMIN)
    admin_client.force_login(admin)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert admin_client.get(changelist).status_code == 200
    ids = list(AccessAttempt.objects.filter(username=locked.username).values_list("pk", flat=True))
    response = admin_client.post(changelist, {"action": "unlock_accounts", "_selected_action": ids})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.unlock")
    assert event.actor == admin and event.data["username"] == locked.username
    assert _post_login(client, locked.username, PASSWORD, ip="10.2.0.2").status_code == 302


def test_a_successful_login_forgives_the_accounts_own_earlier_typos():
    user = make_user(Role.RATER)
    client = Client()
    for _ in range(4):
        _post_login(client, user.username, "typo")
    assert _post_login(client, user.username, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username=user.username).exists()


@override_settings(PASSWORD_RESET_RATE="2/hour")
def test_password_reset_requests_are_rate_limited_per_address_and_per_mailbox():
    make_user(Role.RATER, email="nurse@example.org")
    client = Client()
    for _ in range(2):
        ok = client.post(reverse("password_reset"), {"email": "nurse@example.org"}, REMOTE_ADDR="10.3.0.1")
        assert ok.status_code == 302
    refused = client.post(reverse("password_reset"), {"email": "nurse@example.org"}, REMOTE_ADDR="10.3.0.1")
    assert refused.status_code == 429 and b"Too many reset requests" in refused.content
    # The same mailbox from a fresh address is still refused (per-mailbox budget) ...
    other_ip = client.post(reverse("password_reset"), {"email": "nurse@example.org"}, REMOTE_ADDR="10.3.0.2")
    assert other_ip.status_code == 429
    assert len(mail.outbox) == 2
    # ... and an unknown address answers exactly like a known one (no account probing).
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.org"}, REMOTE_ADDR="10.3.0.3")
    assert unknown.status_code == 302


@override_settings(TOKEN_CREATE_RATE="3/hour")
def test_token_creation_is_rate_limited_per_user():
    researcher = make_user(Role.RESEARCHER)
    client = Client()
    client.force_login(researcher)
    for n in range(3):
        assert client.post(reverse("accounts:token_list"), {"name": f"t{n}"}).context["new_token"]
    refused = client.post(reverse("accounts:token_list"), {"name": "t4"})
    assert refused.status_code == 429 and refused.context["new_token"] is None
    assert b"Too many new tokens" in refused.content
    assert ApiToken.objects.filter(user=researcher).count() == 3


@override_settings(LOGIN_FAILURE_LIMIT=2)
def test_the_api_accepts_no_password_so_it_is_no_way_around_the_lockout():
    from django.conf import settings

    classes = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert not any("Basic" in path for path in classes)
    user = make_user(Role.RESEARCHER)
    basic = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    response = Client().get(reverse("api:me"), HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code in (401, 403) and response.json()["error"]["status"] in (401, 403)
    # A bearer value that is really a password is just an invalid token.
    response = Client().get(reverse("api:me"), HTTP_AUTHORIZATION=f"Bearer {PASSWORD}")
    assert response.status_code == 401


def test_rates_parse_and_describe():
    assert Rate.parse("5/hour") == Rate(5, 3600)
    assert Rate.parse("10/15min") == Rate(10, 900)
    assert Rate.parse("3/day").describe() == "3 per 24 hours"
    with pytest.raises(ValueError):
        Rate.parse("lots")
