"""The session store's cache (core/cache.py): one kept redis-py client, the same keys as before, real Redis."""
import threading
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.http import HttpRequest
from django.test import Client

from core.cache import KeptClientRedisCache
from tests.factories import PASSWORD, make_user


def test_the_session_store_reads_through_the_kept_client_cache():
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    assert isinstance(store._cache, KeptClientRedisCache)


def test_the_client_is_built_once_and_serves_every_call():
    sessions = caches["sessions"]
    first = sessions._cache.get_client()
    sessions.set("kept-client-probe", {"a": 1}, 30)
    assert sessions.get("kept-client-probe") == {"a": 1}
    assert sessions._cache.get_client(write=True) is first
    assert sessions._cache.get_client("any-key") is first


def test_sessions_keep_their_keys_so_none_is_lost_on_upgrade():
    """The session alias has the default cache's location and prefix: a session cached under the default
    alias (before this backend existed) is the same Redis key."""
    default, sessions = caches["default"], caches["sessions"]
    assert sessions._servers == default._servers
    assert sessions.make_key("k") == default.make_key("k")
    default.set("written-before", "v", 30)
    assert sessions.get("written-before") == "v"


def test_one_client_serves_many_threads_at_once():
    sessions = caches["sessions"]
    client = sessions._cache.get_client()
    errors = []

    def work(i):
        try:
            for j in range(50):
                client.set(f"thread-{i}-{j}", str(j), ex=30)
                assert client.get(f"thread-{i}-{j}") == str(j).encode()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []


@pytest.mark.django_db
def test_a_signed_in_request_finds_its_session_in_redis_then_in_postgres():
    user = make_user(username="session-reader")
    client = Client()
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    assert caches["sessions"].get(store_class.cache_key_prefix + key)[SESSION_KEY] == str(user.pk)
    assert client.get("/rate/").status_code == 200  # signed in: read from Redis
    caches["sessions"].clear()  # a Redis flush: the session is read back from PostgreSQL
    assert client.get("/rate/").status_code == 200
    assert caches["sessions"].get(store_class.cache_key_prefix + key)[SESSION_KEY] == str(user.pk)
