"""API tokens: created and seen once in the UI, stored hashed, revoked tokens fail, and the raw value
never appears again: not in later pages or API responses, not in any log line, not in the database."""
import json
import logging
import re

import pytest
from django.db import connection
from django.test import Client

from accounts.models import ApiToken
from accounts.roles import Role
from audit.models import AuditEvent
from tests.api.conftest import ApiClient, assert_error
from tests.factories import make_user

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r"mhsd_[A-Za-z0-9_-]{40,}")


def create_token_in_ui(client, name="laptop") -> str:
    response = client.post("/accounts/tokens/", {"name": name})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    (raw,) = set(TOKEN_RE.findall(response.content.decode()))
    return raw


@pytest.fixture
def everything_logged(caplog):
    """Every logger at DEBUG, SQL included (Django logs queries only with a debug cursor)."""
    caplog.set_level(logging.DEBUG)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def test_token_is_seen_once_and_never_again(client, rated, everything_logged):
    researcher = make_user(Role.RESEARCHER)
    client.force_login(researcher)
    raw = create_token_in_ui(client)
    created_logs = len(everything_logged.records)
    api = ApiClient(raw)
    seen = []
    calls = [
        api.get("/api/v1/me/"),
        api.get("/api/v1/conversations"),
        api.get(f"/api/v1/campaigns/{rated.pk}/ratings"),
        api.get(f"/api/v1/campaigns/{rated.pk}/datasheet?format=md"),
        api.get("/api/v1/no/such/route"),
        api.get("/api/v1/conversations", {"trait": "bold"}),
        api.delete("/api/v1/conversations"),
        api.post("/api/v1/campaigns", {"name": "x"}),
        api.get("/api/v1/schema/"),
        api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"identify": "1"}),
    ]
    export = api.get(f"/api/v1/campaigns/{rated.pk}/export?format=jsonl")
    seen.append(b"".join(export.streaming_content).decode())
    seen.append(json.dumps(dict(export.headers)))
    for response in calls:
        assert response.status_code < 500
        seen.append(response.content.decode())
        seen.append(json.dumps(dict(response.headers)))
    seen.append(client.get("/accounts/tokens/").content.decode())  # the list shows only the prefix
    for text in seen:
        assert raw not in text
        assert raw[5:] not in text  # nor the secret part alone
    assert calls[0].json()["username"] == researcher.username
    # Logs after creation: none holds the token (requests with it were logged, SQL included).
    assert len(everything_logged.records) > created_logs
    for record in everything_logged.records:
        assert raw[5:] not in record.getMessage(), record.name
    # The database holds a SHA-256 and an 8-character prefix only.
    token = ApiToken.objects.get(user=researcher)
    row = json.dumps(list(ApiToken.objects.filter(pk=token.pk).values())[0], default=str)
    assert raw[5:] not in row and token.prefix == raw[5:13] and len(token.key_hash) == 64
    for event in AuditEvent.objects.all():
        assert raw[5:] not in json.dumps(event.data)
    assert token.last_used_at is not None


def test_revoked_and_deactivated_tokens_fail(client, admin):
    researcher = make_user(Role.RESEARCHER)
    client.force_login(researcher)
    raw = create_token_in_ui(client)
    api = ApiClient(raw)
    assert api.get("/api/v1/conversations").status_code == 200
    token = ApiToken.objects.get(user=researcher)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    for path in ("/api/v1/conversations", "/api/v1/me/", "/api/v1/schema/", "/api/v1/no/such/route"):
        error = assert_error(api.get(path), 401, "authentication_failed")
        assert error["message"] == "Invalid or revoked API token."
    assert api.get("/api/v1/conversations").headers["WWW-Authenticate"] == "Bearer"
    # A second token of a user who is then deactivated stops working at once.
    other = ApiClient(create_token_in_ui(client, "second"))
    assert other.get("/api/v1/me/").status_code == 200
    admin_client = Client()
    admin_client.force_login(admin)
    admin_client.post(f"/accounts/users/{researcher.pk}/active/", {"active": "0"})
    assert_error(other.get("/api/v1/me/"), 401)


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer mhsd_wrong", "Token mhsd_wrong"])
def test_malformed_and_unknown_tokens_are_401s_that_do_not_echo_them(header):
    response = Client().get("/api/v1/conversations", headers={"Authorization": header})
    assert_error(response, 401)
    assert "mhsd_wrong" not in response.content.decode()
