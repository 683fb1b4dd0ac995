"""A full conversation through a real language model, offline: SmolLM2-135M served by llama.cpp
(`make local-llm`). Skipped when that server is not running.

The model's replies are grammar-constrained (generation/medagent/grammar.py): the grammar fixes the
reply format, the words are the model's, and the strict parsers still check every reply.
"""
import time

import pytest

from generation import local_llm, services
from generation.medagent.grammar import load_grammars
from generation.medagent.prompt_set import PROMPT_VERSION
from generation.models import Conversation, ModelConfig
from tests.factories import make_case

pytestmark = [pytest.mark.local_llm, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def local_model():
    status = local_llm.status(timeout=2)
    if not status["available"]:
        pytest.skip(f"no local model at {status['api_base']}; start it with `make local-llm`")
    config, _ = local_llm.ensure_config()
    return config


def _run_one(patient, sensemaker, helper):
    job = services.launch_job(
        None,
        services.JobRequest(name="local", cases=[make_case()], patient_model=patient, sensemaker_model=sensemaker,
                            helper_model=helper, traits=("agreeableness",), literacies=("basic",)),
        enqueue_tasks=False,
    )
    started = time.monotonic()
    outcomes = services.run_inline(job, threads=1)
    elapsed = time.monotonic() - started
    conv = Conversation.objects.get(job=job)
    print(f"\nlocal model conversation: {elapsed:.0f} s, {conv.llm_calls} LLM calls, "
          f"{conv.prompt_tokens} prompt + {conv.completion_tokens} completion tokens, "
          f"{conv.messages.count()} messages, outcome {outcomes}")
    return outcomes, conv


def _assert_complete(outcomes, conv, local_model, roles):
    assert outcomes == {"done": 1}, conv.failure_reason
    sensemaker = conv.messages.filter(role="sensemaker")
    assert sensemaker.filter(stage=6).exists() and sensemaker.count() >= 3
    assert list(conv.messages.values_list("stage", flat=True)) == sorted(conv.messages.values_list("stage", flat=True))
    assert all(len(m.split()) >= 2 for m in sensemaker.values_list("text", flat=True))
    grammar = conv.trace["grammar"]
    assert grammar["roles"] == list(roles) and grammar["digest"] == load_grammars(PROMPT_VERSION).digest
    for role in roles:
        assert conv.provenance["models"][role]["api_base"] == local_model.api_base
        assert conv.trace["usage_by_role"][role]["calls"] >= 1
        assert conv.trace["usage_by_role"][role]["completion_tokens"] > 0  # real tokens from the server


def test_a_full_conversation_through_the_local_model(local_model):
    """The real model plays the model under test; the patient and helper stay the simulator so the
    run depends only on the sensemaker's real replies."""
    helper = ModelConfig.objects.create(name="sim helper", model="simulator/helper")
    patient = ModelConfig.objects.create(name="sim patient", model="simulator/patient")
    outcomes, conv = _run_one(patient, local_model, helper)
    _assert_complete(outcomes, conv, local_model, roles=("sensemaker",))
    assert conv.sensemaker_model == local_model.model
    assert conv.is_simulated, "the simulated patient still labels the conversation as simulated"
    decisions = [t["sensemaker"]["stage_decision"] for t in conv.trace["turns"]]
    assert any(d["mode"] == "model" and 1 <= d["confidence"] <= 10 for d in decisions)


def test_the_local_model_in_all_three_roles(local_model):
    """Patient, sensemaker and helper are all the real model: nothing in the conversation is simulated.

    A 135M-parameter model is a weak redundancy judge: with the seeded run here it labels every Exit
    candidate redundant, and a conversation without its Exit message fails by the method's rule (see
    generation/medagent/engine.py). So either outcome is accepted, but each is checked in full: a done
    conversation is complete, a failed one says why, keeps no messages and still shows every role's
    real calls in its trace."""
    outcomes, conv = _run_one(local_model, local_model, local_model)
    assert not conv.is_simulated
    if outcomes == {"failed": 1}:
        assert "Exit candidates were redundant" in conv.failure_reason, conv.failure_reason
        assert conv.messages.count() == 0
        partial = conv.trace["partial"]
        for role in ("patient", "sensemaker", "helper"):
            assert partial["usage_by_role"][role]["completion_tokens"] > 0
        return
    _assert_complete(outcomes, conv, local_model, roles=("patient", "sensemaker", "helper"))
    kinds = {e["prompt_kind"] for e in conv.trace.get("events", []) if e["kind"] == "parse_retry"}
    assert not kinds, f"grammar-constrained replies needed parse retries: {kinds}"


@pytest.mark.django_db
def test_the_local_configuration_opts_into_grammar_constrained_decoding(settings):
    """No server needed: what ensure_config() offers, and how it upgrades its own old defaults."""
    settings.LOCAL_LLM_API_BASE = "http://127.0.0.1:8081/v1/"
    config, created = local_llm.ensure_config()
    spec = config.to_spec()
    assert created and spec.grammar_format == "gbnf" and spec.api_base == "http://127.0.0.1:8081/v1"
    assert spec.max_tokens == 600 and spec.temperature == 0.8 and spec.extra_params["seed"] == 1234
    assert spec.context_tokens == 4096  # llama.cpp's --n_ctx in scripts/local-llm.sh
    config.extra_params, config.temperature, config.max_tokens = {}, 0.0, 400  # as created before grammars
    config.save()
    upgraded, created = local_llm.ensure_config()
    assert not created and upgraded.pk == config.pk and upgraded.to_spec().grammar_format == "gbnf"
    upgraded.extra_params, upgraded.temperature = {"top_p": 0.5}, 0.3  # an admin's own choices stay
    upgraded.save()
    kept, _ = local_llm.ensure_config()
    assert kept.extra_params == {"top_p": 0.5} and kept.temperature == 0.3
