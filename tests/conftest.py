import os

# LiteLLM must not fetch its price map from the internet on import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# The network is closed: Hugging Face datasets must read local files only, never ask the hub.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.http import HttpRequest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.factories import PASSWORD, build_world  # noqa: E402


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session", autouse=True)
def _fresh_test_redis():
    """The test Redis database is ours alone: drop tasks and locks left by an earlier run, whose ids
    could otherwise point at rows of this run's fresh test database."""
    from core.redis_client import get_redis

    get_redis().flushdb()
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    """Tests share one real Redis database (15): start each with an empty cache, and with this process
    knowing of no queued recomputation (results.services: a test may clear Redis keys behind its back)."""
    from results.services import forget_queued

    cache.clear()
    forget_queued()
    yield


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def login(client):
    def _login(user):
        client.logout()
        assert client.login(request=HttpRequest(), username=user.username, password=PASSWORD)
        return client

    return _login
