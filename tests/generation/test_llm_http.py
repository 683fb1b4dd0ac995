"""The LLM client over the real LiteLLM -> OpenAI SDK -> HTTP path, against the loopback server.

Request counts on the server prove there is exactly one retry layer: LiteLLM's and the OpenAI
SDK's retries are off, so every retry the client makes is one HTTP request, no more.
"""
import json
import threading
import time
from contextlib import contextmanager

import pytest

from generation.medagent import (
    ConversationFailed,
    LLMCallFailed,
    LLMClient,
    ModelSpec,
    PersonaInput,
    run_conversation,
)
from generation.medagent.llm import NO_KEY_PLACEHOLDER
from generation.medagent.parsers import parse_redundancy
from tests.fakellm import FakeLLMServer, free_port
from tests.generation.medagent_cases import PANIC
from tests.generation.medagent_helpers import make_case

PROMPT = ("[medagent:v1:redundancy_check]\nLabel the candidates.\n<candidates>\n1. Hello there friend.\n"
          "2. How are you sleeping?\n3. Tell me about work.\n</candidates>\n\n<previous_messages>\n(none)\n"
          "</previous_messages>\n")
MESSAGES = [{"role": "user", "content": PROMPT}]


def spec(server, name="fake-model", **kwargs):
    return ModelSpec(f"openai/{name}", api_base=server.base_url, **kwargs)


def test_success_returns_text_usage_and_counts_one_request(fake_llm, fast_client):
    seen = []
    client = LLMClient(timeout=5, on_call=seen.append)
    completion = client.complete(spec(fake_llm), MESSAGES, kind="redundancy_check")
    assert parse_redundancy(completion.text) == [False, False, False]
    assert completion.finish_reason == "stop"
    assert fake_llm.hits == 1
    assert completion.usage["calls"] == 1 and completion.usage["retries"] == 0
    assert completion.usage["prompt_tokens"] > 10 and completion.usage["completion_tokens"] > 5
    assert completion.usage["cost_usd"] is None  # LiteLLM has no price for "fake-model": unknown, not 0
    assert seen == [completion.usage]


def test_a_model_litellm_knows_is_priced_from_its_local_price_map(fake_llm, fast_client):
    """gpt-4o-mini is in LiteLLM's bundled price map (read locally: LITELLM_LOCAL_MODEL_COST_MAP)."""
    completion = LLMClient(timeout=5).complete(spec(fake_llm, name="gpt-4o-mini"), MESSAGES, kind="redundancy_check")
    usage = completion.usage
    import litellm

    price = litellm.model_cost["gpt-4o-mini"]
    expected = usage["prompt_tokens"] * price["input_cost_per_token"] + \
        usage["completion_tokens"] * price["output_cost_per_token"]
    assert usage["cost_usd"] == pytest.approx(expected)
    assert usage["cost_usd"] > 0


def test_one_429_is_retried_once_with_backoff(fake_llm, fast_client, sleeps):
    fake_llm.push_faults("429")
    completion = fast_client.complete(spec(fake_llm), MESSAGES)
    assert parse_redundancy(completion.text) == [False, False, False]
    assert fake_llm.hits == 2  # one failure + one success: no hidden SDK or LiteLLM retries
    assert [r["fault"] for r in fake_llm.requests] == ["429", None]
    assert len(sleeps) == 1 and 0.005 <= sleeps[0] <= 0.01
    assert completion.usage["retries"] == 1


def test_with_one_attempt_a_429_is_exactly_one_request(fake_llm):
    fake_llm.push_faults("429")
    client = LLMClient(timeout=5, max_attempts=1, sleep=lambda s: None)
    with pytest.raises(LLMCallFailed, match=r"RateLimitError \(HTTP 429\)"):
        client.complete(spec(fake_llm), MESSAGES)
    assert fake_llm.hits == 1


def test_persistent_500s_give_up_with_a_clear_reason(fake_llm, fast_client, sleeps):
    fake_llm.push_faults(*["500"] * 6)
    with pytest.raises(LLMCallFailed) as info:
        fast_client.complete(spec(fake_llm), MESSAGES, kind="redundancy_check")
    reason = info.value.reason
    assert "openai/fake-model (redundancy_check): gave up after 4 attempts" in reason
    assert "InternalServerError (HTTP 500)" in reason
    assert fake_llm.hits == 4
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)  # exponential backoff, capped at 0.05
    assert all(0.005 <= s <= 0.05 for s in sleeps)


@pytest.mark.parametrize("fault", ["503", "malformed", "empty_choices", "drop"])
def test_transient_faults_are_retried(fake_llm, fast_client, fault):
    fake_llm.push_faults(fault)
    completion = fast_client.complete(spec(fake_llm), MESSAGES)
    assert parse_redundancy(completion.text) == [False, False, False]
    assert fake_llm.hits == 2


def test_a_hung_request_times_out_and_is_retried(fake_llm, sleeps):
    fake_llm.push_faults("hang")
    client = LLMClient(timeout=0.5, max_attempts=3, backoff_base=0.01, sleep=sleeps.append)
    started = time.monotonic()
    completion = client.complete(spec(fake_llm), MESSAGES)
    elapsed = time.monotonic() - started
    assert parse_redundancy(completion.text) == [False, False, False]
    assert fake_llm.hits == 2 and 0.5 <= elapsed < 5


def test_timeouts_until_failure_name_the_timeout(fake_llm):
    fake_llm.push_faults("hang", "hang")
    client = LLMClient(timeout=0.3, max_attempts=2, backoff_base=0.01, sleep=lambda s: None)
    with pytest.raises(LLMCallFailed, match="gave up after 2 attempts; last error: Timeout"):
        client.complete(spec(fake_llm), MESSAGES)
    assert fake_llm.hits == 2


def test_connection_refused_is_retried_then_fails(sleeps):
    client = LLMClient(timeout=2, max_attempts=3, backoff_base=0.01, sleep=sleeps.append)
    refused = ModelSpec("openai/fake-model", api_base=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(LLMCallFailed, match=r"gave up after 3 attempts; last error: .*Connection error"):
        client.complete(refused, MESSAGES)
    assert len(sleeps) == 2


def test_authentication_errors_are_not_retried(fake_llm, fast_client, sleeps):
    fake_llm.push_faults("401")
    with pytest.raises(LLMCallFailed, match=r"AuthenticationError \(HTTP 401\).*not retried"):
        fast_client.complete(spec(fake_llm), MESSAGES)
    assert fake_llm.hits == 1 and sleeps == []


def test_a_truncated_reply_is_asked_again_by_the_parse_layer(fake_llm, fast_client):
    fake_llm.push_faults("truncated")
    result = fast_client.complete_parsed(spec(fake_llm), PROMPT, parse_redundancy, kind="redundancy_check")
    assert result.value == [False, False, False]
    assert result.parse_errors == ["reply did not finish normally (finish_reason=length)"]
    assert fake_llm.hits == 2


def test_unparseable_replies_fail_after_five_attempts(fake_llm, fast_client):
    fake_llm.push_faults(*["bad_content"] * 5)
    with pytest.raises(ConversationFailed, match="no usable reply after 5 attempts"):
        fast_client.complete_parsed(spec(fake_llm), PROMPT, parse_redundancy, kind="redundancy_check")
    assert fake_llm.hits == 5


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    client = LLMClient(backoff_base=1.0, backoff_max=30.0, jitter_seed=1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 30), (10, 30)]:
        delays = [client.backoff_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 40  # jittered, not a fixed schedule
    assert client.backoff_delay(1, retry_after=7) == 7
    assert client.backoff_delay(1, retry_after=500) == 30


def test_key_is_read_from_the_environment_and_never_stored(fake_llm, monkeypatch):
    secret = "sk-test-0123456789-very-secret"
    monkeypatch.setenv("FAKELLM_API_KEY", secret)
    case = make_case("panic", PANIC)
    keyed = spec(fake_llm, api_key_env="FAKELLM_API_KEY")
    models = {"patient": keyed, "sensemaker": spec(fake_llm, "under-test", api_key_env="FAKELLM_API_KEY"),
              "helper": keyed}
    result = run_conversation(case, PersonaInput("openness", "advanced"), models, seed=4,
                              client=LLMClient(timeout=5))
    assert {r["authorization"] for r in fake_llm.requests} == {f"Bearer {secret}"}
    assert {r["model"] for r in fake_llm.requests} == {"fake-model", "under-test"}
    assert result.messages[-1].stage == 6
    assert result.usage["calls"] == fake_llm.hits and result.trace["simulated"] is False
    assert result.usage["cost_usd"] is None  # no known price for these model names
    dumped = json.dumps(result.as_dict())
    assert secret not in dumped and "FAKELLM_API_KEY" in dumped  # the variable's name is provenance

    monkeypatch.delenv("FAKELLM_API_KEY")
    with pytest.raises(LLMCallFailed, match="environment variable FAKELLM_API_KEY is not set"):
        LLMClient().complete(keyed, MESSAGES)


def test_a_local_server_without_key_never_receives_the_openai_key(fake_llm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-must-not-leak")
    LLMClient(timeout=5).complete(spec(fake_llm), MESSAGES)
    assert fake_llm.requests[0]["authorization"] == f"Bearer {NO_KEY_PLACEHOLDER}"


def test_failure_reasons_do_not_contain_the_key(fake_llm, monkeypatch):
    secret = "sk-test-abcdef-never-in-reasons"
    monkeypatch.setenv("FAKELLM_API_KEY", secret)
    fake_llm.push_faults("500", "500")
    client = LLMClient(timeout=5, max_attempts=2, sleep=lambda s: None)
    with pytest.raises(LLMCallFailed) as info:
        client.complete(spec(fake_llm, api_key_env="FAKELLM_API_KEY"), MESSAGES)
    assert secret not in str(info.value) and secret not in info.value.reason


def test_parameters_reach_the_server(fake_llm):
    LLMClient(timeout=5).complete(spec(fake_llm, temperature=0.3, max_tokens=123), MESSAGES)
    request = fake_llm.requests[0]
    assert request["model"] == "fake-model" and request["temperature"] == 0.3 and request["max_tokens"] == 123


def test_call_slot_limits_calls_in_flight():
    limit = threading.BoundedSemaphore(2)
    entered = []

    @contextmanager
    def slot():
        with limit:
            entered.append(1)
            yield

    with FakeLLMServer(latency=0.15) as server:
        client = LLMClient(timeout=5, call_slot=slot)
        threads = [threading.Thread(target=client.complete, args=(spec(server), MESSAGES)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.hits == 6 and len(entered) == 6
        assert server.max_in_flight == 2
