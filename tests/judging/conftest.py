"""Judge-run fixtures: the loopback OpenAI-compatible server (generation's fixture) and fast retries."""
import pytest

from tests.generation.conftest import fake_llm  # noqa: F401 - the same loopback server fixture

FAKE_KEY = "sk-judge-test-secret-456"


@pytest.fixture
def fast_retries(settings, monkeypatch):
    settings.LLM_BACKOFF_BASE = 0.01
    settings.LLM_MAX_ATTEMPTS = 4
    settings.LLM_REQUEST_TIMEOUT = 5
    settings.JUDGE_PARSE_ATTEMPTS = 3
    monkeypatch.setenv("FAKE_JUDGE_API_KEY", FAKE_KEY)
