"""Every URL pattern of the project, tried as every role. A pattern without a declared expectation
in url_access.py fails here: new pages cannot ship without an access decision."""
import json

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.services import revoke_token

from .url_access import DENY, GONE, LOGIN, NOPE, OK, ROLES, UNAUTH, URL_ACCESS

ADMIN_NAMESPACE = "admin"


def iter_named_patterns(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            yield from iter_named_patterns(entry, f"{namespace}{ns}:" if ns else namespace)
        elif isinstance(entry, URLPattern):
            yield entry, f"{namespace}{entry.name}" if entry.name else None, namespace


ALL_PATTERNS = [(p, name) for p, name, _ in iter_named_patterns()]
UNNAMED = [(str(p.pattern), ns) for p, name, ns in iter_named_patterns() if name is None]
PROJECT_NAMES = sorted({name for _, name in ALL_PATTERNS if name and not name.startswith(ADMIN_NAMESPACE + ":")})
ADMIN_NAMES = sorted({name for _, name in ALL_PATTERNS if name and name.startswith(ADMIN_NAMESPACE + ":")})


def test_every_pattern_is_named():
    # Only the Django admin has unnamed patterns (its redirects and catch-all), covered below.
    outside_admin = [pattern for pattern, ns in UNNAMED if ns != ADMIN_NAMESPACE + ":"]
    assert not outside_admin, outside_admin


def test_every_project_url_has_a_declared_expectation():
    missing = [name for name in PROJECT_NAMES if name not in URL_ACCESS]
    assert not missing, f"Declare who may reach these URLs in tests/security/url_access.py: {missing}"
    stale = [name for name in URL_ACCESS if name not in PROJECT_NAMES]
    assert not stale, f"url_access.py declares URLs that no longer exist: {stale}"


def _client_for(world, role):
    client = Client()
    if role != "anon":
        client.force_login(world.user(role))
    return client


def _check(outcome, response, where, is_api=False):
    status = response.status_code
    location = response.headers.get("Location", "")
    if outcome == OK:
        assert 200 <= status < 300, f"{where}: expected 2xx, got {status} {location}"
    elif outcome == LOGIN:
        assert status == 302 and "/accounts/login/" in location, f"{where}: expected login redirect, got {status}"
    elif outcome == GONE:
        assert status in (301, 302, 303) and "/login/" not in location, f"{where}: expected redirect, got {status}"
    elif outcome == DENY:
        assert status in (403, 404), f"{where}: expected 403/404, got {status}"
    elif outcome == UNAUTH:
        assert status in (401, 403), f"{where}: expected 401/403, got {status}"
    elif outcome == NOPE:
        assert status == 405, f"{where}: expected 405, got {status}"
    if is_api and status >= 400:
        assert "json" in response.headers.get("Content-Type", ""), f"{where}: API errors are JSON"
        body = json.loads(response.content)
        assert body["error"]["status"] == status, f"{where}: API errors use one JSON shape"


def _request(client, access, url, world, **extra):
    method = getattr(client, access.method.lower())
    return method(url, data=access.data(world), **extra)


@pytest.mark.django_db
@pytest.mark.parametrize("name", PROJECT_NAMES)
def test_url_access(name, world):
    access = URL_ACCESS[name]
    url = reverse(name, kwargs=access.kwargs(world))
    assert set(access.expect) == set(ROLES), f"{name}: declare all of {ROLES}"
    # Denied roles first, so a permitted POST cannot change what a later denied request sees.
    for role in sorted(ROLES, key=lambda r: access.expect[r] in (OK, GONE)):
        response = _request(_client_for(world, role), access, url, world)
        _check(access.expect[role], response, f"{name} as {role} {access.method} {url}", bool(access.token))
    if access.method == "GET":
        # A page read with GET may also take a POST (forms): the roles it refuses are refused that way too.
        for role in ROLES:
            if access.expect[role] in (LOGIN, DENY, UNAUTH):
                response = _client_for(world, role).post(url, data=access.data(world))
                if response.status_code != 405:
                    _check(access.expect[role], response, f"{name} as {role} POST {url}", bool(access.token))
    if not access.token:
        # Pages are for browser sessions: an API token alone is worth no more than being anonymous.
        response = _request(Client(), access, url, world, HTTP_AUTHORIZATION=f"Bearer {world.tokens['admin']}")
        _check(access.expect["anon"], response, f"{name} with only the admin's token")
    for role, outcome in sorted(access.token.items(), key=lambda kv: kv[1] in (OK, GONE)):
        response = _request(Client(), access, url, world, HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
        _check(outcome, response, f"{name} with {role}'s token", True)
    if access.token:
        bogus = _request(Client(), access, url, world, HTTP_AUTHORIZATION="Bearer mhsd_not-a-real-token")
        _check(UNAUTH, bogus, f"{name} with an unknown token", True)
        revoked_user = world.researcher
        revoke_token(revoked_user, revoked_user.api_tokens.get(revoked_at__isnull=True, name__startswith="test"))
        revoked = _request(Client(), access, url, world, HTTP_AUTHORIZATION=f"Bearer {world.tokens['researcher']}")
        _check(UNAUTH, revoked, f"{name} with a revoked token", True)


def _admin_kwargs(pattern):
    converters = pattern.pattern.converters
    kwargs = {}
    for key in converters:
        kwargs[key] = {"app_label": "rating", "object_id": "999999"}.get(key, "1")
    for key in pattern.pattern.regex.groupindex:
        kwargs.setdefault(key, {"app_label": "rating", "object_id": "999999", "content_type_id": "1"}.get(key, "1"))
    return kwargs


@pytest.mark.django_db
@pytest.mark.parametrize("name", ADMIN_NAMES)
def test_django_admin_is_for_admins_only(name, world):
    """The Django admin: every non-admin role is sent to the admin login, never shown data."""
    pattern = next(p for p, n in ALL_PATTERNS if n == name)
    try:
        url = reverse(name, kwargs=_admin_kwargs(pattern))
    except Exception:  # noqa: BLE001 - patterns whose kwargs do not fit our generic values
        url = reverse(name, kwargs={k: "rating" for k in _admin_kwargs(pattern)})
    for role in ("anon", "other_rater", "rater", "researcher"):
        response = _client_for(world, role).get(url)
        if name in ("admin:login", "admin:logout", "admin:password_change", "admin:password_change_done"):
            assert response.status_code in (200, 302, 405), f"{name} as {role}"
            continue
        assert response.status_code == 302 and "/django-admin/login/" in response.headers["Location"], (
            f"{name} as {role}: got {response.status_code}"
        )
    response = _client_for(world, "admin").get(url)
    # Admins reach every page; a made-up object id redirects back with a message, never a 500.
    assert response.status_code in (200, 302, 403, 404, 405), f"{name} as admin: {response.status_code}"
