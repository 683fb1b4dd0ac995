"""accounts.backends.PasswordBackend: ModelBackend's behaviour, with the per-request user read prepared."""
import pytest
from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.backends import PasswordBackend
from accounts.roles import Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_get_user_answers_as_model_backend_does():
    active, inactive = make_user(Role.RATER), make_user(Role.ADMIN)
    inactive.is_active = False
    inactive.save()
    ours, django = PasswordBackend(), ModelBackend()
    for user_id in (active.pk, inactive.pk, 10**12, 2**63, -1):
        mine, theirs = ours.get_user(user_id), django.get_user(user_id)
        assert (mine and mine.pk) == (theirs and theirs.pk), user_id
    loaded = ours.get_user(active.pk)
    fields = [f.attname for f in type(active)._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(active, f) for f in fields]
    assert loaded._state.adding is False and loaded.get_session_auth_hash() == active.get_session_auth_hash()


def test_a_signed_in_request_reads_its_user_with_one_prepared_execute(client):
    user = make_user(Role.RATER)
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302
    client.get(reverse("rating:home"))  # the connection prepares the statement once
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("rating:home")).status_code == 200
    reads = [q["sql"] for q in queries.captured_queries
             if "accounts_user" in q["sql"] or "mhsd_session_user" in q["sql"]]
    assert reads[0].startswith("EXECUTE mhsd_session_user")
    # A password change ends the other sessions, as before: the hash check is Django's.
    user.set_password("another-long-passphrase-1")
    user.save()
    assert client.get(reverse("rating:home")).status_code == 302
