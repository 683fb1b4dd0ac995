"""The Django admin: every model of the platform is there, and history stays read-only."""
import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.models import ApiToken
from accounts.roles import Role
from audit.models import AuditEvent
from audit.services import record
from generation.models import CaseStudy
from tests.factories import make_case, make_conversation, make_token, make_user

PLATFORM_APPS = ("accounts", "audit", "generation", "rating", "results", "api")


def test_every_platform_model_is_in_the_admin():
    shown = set(admin.site._registry)
    for model_admin in admin.site._registry.values():
        shown.update(inline.model for inline in model_admin.inlines)
    missing = [
        model._meta.label
        for label in PLATFORM_APPS
        for model in apps.get_app_config(label).get_models()
        if model not in shown
    ]
    assert missing == []


@pytest.mark.django_db
def test_history_is_read_only_for_an_admin(login):
    admin_user = make_user(Role.ADMIN)
    client = login(admin_user)
    event = record(admin_user, "test.event", admin_user, new={"x": 1})
    page = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "forged"})
    client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    event.refresh_from_db()
    assert event.action == "test.event"


@pytest.mark.django_db
def test_a_case_study_is_locked_once_a_conversation_uses_it(login):
    client = login(make_user(Role.ADMIN))
    unused, used = make_case(), make_case()
    make_conversation(case=used)
    unused_page = client.get(reverse("admin:generation_casestudy_change", args=[unused.pk]))
    assert b'name="ground_truth_diagnosis"' in unused_page.content
    used_page = client.get(reverse("admin:generation_casestudy_change", args=[used.pk]))
    assert used_page.status_code == 200 and b'name="ground_truth_diagnosis"' not in used_page.content
    client.post(reverse("admin:generation_casestudy_delete", args=[used.pk]), {"post": "yes"})
    assert CaseStudy.objects.filter(pk=used.pk).exists()


@pytest.mark.django_db
def test_the_admin_revokes_tokens_through_the_audited_service_and_cannot_revive_them(login):
    admin_user = make_user(Role.ADMIN)
    researcher = make_user(Role.RESEARCHER)
    make_token(researcher, name="laptop")
    token = ApiToken.objects.get(user=researcher)
    client = login(admin_user)
    client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    revoked_at = token.revoked_at
    assert revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", actor=admin_user, object_id=str(token.pk)).exists()
    # The change form offers nothing to edit, and a forged POST clearing revoked_at changes nothing.
    client.post(reverse("admin:accounts_apitoken_change", args=[token.pk]), {"revoked_at_0": "", "revoked_at_1": ""})
    token.refresh_from_db()
    assert token.revoked_at == revoked_at
