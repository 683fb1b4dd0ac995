"""The foundation: settings, deploy checks, roles, accounts, tokens, demo data, Celery wiring."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import ApiToken, User, hash_token
from accounts.roles import Capability, Role, can
from audit.models import AuditEvent
from demo import loader as demo
from tests.factories import make_token, make_user

ROOT = Path(__file__).resolve().parent.parent


def test_database_is_postgresql():
    assert connection.vendor == "postgresql"


def test_celery_settings_fit_long_llm_tasks():
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    # Redis redelivers unacked tasks after the visibility timeout: it must outlive the longest task.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_WORKER_POOL == "threads"


def test_tests_use_their_own_redis_database():
    # Never the dev/production REDIS_URL: a running dev worker must not pick up test tasks.
    assert settings.REDIS_URL == os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _manage(*args, **env):
    full_env = {**os.environ, **env}
    # A production-like process: neither the test marker nor the browser tests' async override.
    full_env.pop("PYTEST_VERSION", None)
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="0", SECRET_KEY="x" * 64 + "-production-key-for-the-test", HTTPS="1", ALLOWED_HOSTS="rating.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_refuses_the_development_secret_key():
    result = _manage("check", "--deploy", DEBUG="0", SECRET_KEY="", HTTPS="1")
    assert result.returncode != 0
    assert "mhsd.E001" in result.stderr


def test_only_postgresql_is_accepted():
    result = _manage("check", DATABASE_URL="sqlite:///tmp/x.db")
    assert result.returncode != 0 and "PostgreSQL" in result.stderr


def test_migrations_are_committed():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role,allowed,denied",
    [
        (Role.ADMIN, {Capability.LAUNCH_GENERATION, Capability.MANAGE_USERS, Capability.VIEW_RESULTS},
         {Capability.RATE}),
        (Role.RESEARCHER, {Capability.VIEW_RESULTS, Capability.EXPORT_DATA, Capability.USE_API},
         {Capability.LAUNCH_GENERATION, Capability.MANAGE_USERS, Capability.RATE}),
        (Role.RATER, {Capability.RATE},
         {Capability.VIEW_RESULTS, Capability.EXPORT_DATA, Capability.USE_API, Capability.VIEW_GENERATION}),
    ],
)
def test_capabilities_come_from_the_role(role, allowed, denied):
    user = make_user(role)
    assert all(can(user, c) for c in allowed)
    assert not any(can(user, c) for c in denied)
    user.is_active = False
    assert not any(can(user, c) for c in allowed)


@pytest.mark.django_db
def test_role_decides_django_admin_access_and_superuser_is_admin():
    rater = make_user(Role.RATER)
    assert not rater.is_staff and not rater.is_superuser
    boss = User.objects.create_superuser("boss", "boss@example.org", "pw-123456")
    assert boss.role == Role.ADMIN and boss.is_staff
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=rater.pk).update(role="superhero")


# --- accounts ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_creates_and_deactivates_users(login):
    admin = make_user(Role.ADMIN)
    client = login(admin)
    response = client.post(
        reverse("accounts:user_create"), {"username": "dr-new", "email": "new@example.org", "role": "rater"}
    )
    assert response.status_code == 200 and b"temporary password" in response.content
    new = User.objects.get(username="dr-new")
    password = response.context["password"]
    assert new.check_password(password) and new.role == Role.RATER
    # The same username again: a form error in the page, nothing created.
    again = client.post(
        reverse("accounts:user_create"), {"username": "dr-new", "email": "x@example.org", "role": "rater"}
    )
    assert again.status_code == 200 and b"already exists" in again.content
    assert User.objects.filter(username="dr-new").count() == 1
    client.post(reverse("accounts:user_set_active", args=[new.pk]), {"active": "0"})
    new.refresh_from_db()
    assert not new.is_active
    assert AuditEvent.objects.filter(action="user.deactivate", object_id=str(new.pk)).exists()
    # An admin cannot lock themselves out.
    client.post(reverse("accounts:user_set_active", args=[admin.pk]), {"active": "0"})
    admin.refresh_from_db()
    assert admin.is_active


@pytest.mark.django_db
def test_login_logout_and_password_change(client):
    user = make_user(Role.RESEARCHER)
    response = client.post(reverse("login"), {"username": user.username, "password": "test-pass-123"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    response = client.post(
        reverse("password_change"),
        {"old_password": "test-pass-123",
         "new_password1": "a-much-longer-pass-42", "new_password2": "a-much-longer-pass-42"},
    )
    assert response.status_code == 302
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302
    assert client.login(request=HttpRequest(), username=user.username, password="a-much-longer-pass-42")


@pytest.mark.django_db
def test_password_reset_sends_a_working_link(client):
    user = make_user(Role.RATER, email="reset@example.org")
    client.post(reverse("password_reset"), {"email": "reset@example.org"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line).strip()
    path = link[link.index("/accounts/reset/"):]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    new = {"new_password1": "reset-pass-9876", "new_password2": "reset-pass-9876"}
    client.post(form_page.redirect_chain[-1][0], new)
    user.refresh_from_db()
    assert user.check_password("reset-pass-9876")


# --- API tokens -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_token_is_shown_once_stored_hashed_and_revocable(login, client):
    researcher = make_user(Role.RESEARCHER)
    login(researcher)
    response = client.post(reverse("accounts:token_list"), {"name": "pandas"})
    raw = response.context["new_token"]
    assert raw.startswith("mhsd_") and raw.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=researcher)
    assert token.key_hash == hash_token(raw) and raw not in str(token.__dict__)
    # Never shown again.
    assert raw.encode() not in client.get(reverse("accounts:token_list")).content
    client.logout()
    me = client.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert me.status_code == 200 and me.json()["role"] == "researcher"
    token.refresh_from_db()
    assert token.last_used_at is not None
    login(researcher)
    client.post(reverse("accounts:token_revoke", args=[token.pk]))
    client.logout()
    assert client.get(reverse("api:me"), HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


@pytest.mark.django_db
def test_deactivating_a_user_revokes_their_tokens(login):
    admin, researcher = make_user(Role.ADMIN), make_user(Role.RESEARCHER)
    raw = make_token(researcher)
    login(admin).post(reverse("accounts:user_set_active", args=[researcher.pk]), {"active": "0"})
    assert not ApiToken.objects.filter(user=researcher, revoked_at__isnull=True).exists()
    from django.test import Client

    assert Client().get(reverse("api:me"), HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


# --- demo data and role pages -----------------------------------------------------------------


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_every_demo_user_gets_a_page(client):
    call_command("seed_demo", "--no-generation", verbosity=0)
    call_command("seed_demo", "--no-generation", verbosity=0)
    assert User.objects.filter(username__in=[u.username for u in demo.DEMO_USERS]).count() == len(demo.DEMO_USERS)
    expected_heading = {Role.ADMIN: b"Admin dashboard", Role.RESEARCHER: b"Research overview",
                        Role.RATER: b"My rating campaigns"}
    for demo_user in demo.DEMO_USERS:
        client.logout()
        assert client.login(request=HttpRequest(), username=demo_user.username, password=demo_user.password)
        page = client.get(reverse("home"), follow=True)
        assert page.status_code == 200
        assert expected_heading[demo_user.role] in page.content


@pytest.mark.django_db
def test_health_check_reports_database_and_redis(client):
    body = client.get(reverse("healthz")).json()
    assert body == {"ok": True, "database": True, "redis": True}


def test_no_unexpected_pth_files_in_site_packages():
    result = subprocess.run(["bash", "scripts/check-pth.sh", sys.executable], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
def test_full_demo_seed_generates_conversations_and_opens_a_campaign():
    """What `make run` shows a newcomer: simulator conversations in an open campaign, and a second
    run changes nothing."""
    from generation.models import Conversation
    from rating.models import Campaign, Rating
    from results.models import AgreementSnapshot

    call_command("seed_demo", verbosity=0)
    expected = demo.CaseStudy.objects.filter(is_demo=True).count() * len(demo.DEMO_TRAITS) * len(
        demo.DEMO_LITERACIES) * len(demo.DEMO_JOB_MODELS)
    generated = Conversation.objects.filter(source="generated")  # safety-probe exchanges are seeded too
    assert generated.filter(status="done").count() == expected
    assert all(c.is_simulated for c in Conversation.objects.all())
    campaign = Campaign.objects.get(name=demo.DEMO_CAMPAIGN)
    assert campaign.status == Campaign.Status.OPEN and campaign.items.count() == expected
    assert sorted(campaign.raters.values_list("username", flat=True)) == ["rater1", "rater2", "rater3"]
    # A second, closed campaign rated by a labelled noise model, so results pages are not empty.
    synthetic = Campaign.objects.get(name=demo.SYNTHETIC_CAMPAIGN)
    assert synthetic.status == Campaign.Status.CLOSED and "not clinical judgements" in synthetic.description
    assert Rating.objects.filter(assignment__campaign=synthetic, status=Rating.Status.SUBMITTED).count() == (
        expected * len(demo.SYNTHETIC_RATERS))
    assert not any(u.has_usable_password() for u in User.objects.filter(username__in=demo.SYNTHETIC_RATERS))
    snapshot = AgreementSnapshot.objects.filter(campaign=synthetic).latest()
    alphas = dict(snapshot.axes.values_list("axis_key", "alpha"))
    assert alphas and all(alpha is not None and -1 <= alpha <= 1 for alpha in alphas.values())
    call_command("seed_demo", verbosity=0)
    assert generated.count() == expected and Campaign.objects.count() == 3  # with the probe verification round
    assert AgreementSnapshot.objects.filter(campaign=synthetic).count() == 1


def test_seed_demo_refuses_a_deployment_unless_told_the_passwords_are_public():
    # A database that does not exist: should the refusal ever break, nothing is written anywhere.
    result = _manage("seed_demo", "--no-generation", DEBUG="0", SECRET_KEY="y" * 64 + "-a-real-deployment-key",
                     DATABASE_URL="postgres://postgres@127.0.0.1:5432/mhsd_never_created")
    assert result.returncode != 0
    assert "--insecure-demo-users" in result.stderr
