"""Versioned prompt templates and the offline simulator's provider registration."""
import asyncio
import concurrent.futures

import pytest

from generation.medagent import ModelSpec, is_simulated_model, load_prompts, register_simulator, simulate_reply
from generation.medagent.litellm_setup import import_litellm
from generation.medagent.prompt_set import PROMPT_KINDS, PromptError, parse_marker
from generation.medagent.simulator import PROVIDER


def test_every_kind_loads_with_its_marker_and_a_stable_digest():
    prompts = load_prompts("v1")
    assert set(prompts.templates) == set(PROMPT_KINDS)
    for kind, template in prompts.templates.items():
        assert parse_marker(template.template) == ("v1", kind)
    assert len(prompts.digest) == 64 and load_prompts("v1").digest == prompts.digest
    assert prompts.apology == "I apologize but I am unable to diagnose you at the moment."
    assert prompts.apology in prompts.stage_rules(3)


def test_rendering_is_strict():
    prompts = load_prompts()
    with pytest.raises(PromptError, match="needs the value"):
        prompts.render("patient_fact_selection", question="How are you?")
    text = prompts.render("patient_fact_selection", question="Costs $5 {or} more?", facts="1. x")
    assert "Costs $5 {or} more?" in text and parse_marker(text) == ("v1", "patient_fact_selection")
    with pytest.raises(PromptError, match="unknown prompt version"):
        load_prompts("v999")


def test_persona_block_names_trait_and_literacy():
    block = load_prompts().persona_block("neuroticism", "basic")
    assert block.startswith("Dominant trait: high neuroticism.") and "Health literacy: basic." in block


def test_simulated_model_names():
    assert is_simulated_model("simulator/anything") and is_simulated_model("Simulator/x")
    assert not is_simulated_model("openai/gpt-4o") and not is_simulated_model("")


def test_simulate_reply_is_deterministic_and_model_dependent():
    prompt = load_prompts().render("stage_decision", stage_number=2, stage_name="Gathering information",
                                   turns_in_stage=1, next_number=3, next_name="Providing information",
                                   move_on="when ready", patient_message="I sleep badly and feel low.",
                                   known_facts="1. The patient sleeps badly.", previous_messages="1. Hello.")
    messages = [{"role": "user", "content": prompt}]
    replies = {simulate_reply(messages, f"simulator/m{i}") for i in range(20)}
    assert simulate_reply(messages, "simulator/m0") == simulate_reply(messages, "simulator/m0")
    assert len(replies) > 1
    assert "medagent" in simulate_reply([{"role": "user", "content": "hello"}], "simulator/x").lower()


def test_register_simulator_is_idempotent_and_serves_sync_and_async():
    litellm = import_litellm()
    register_simulator()
    register_simulator()
    assert [p["provider"] for p in litellm.custom_provider_map].count(PROVIDER) == 1
    prompt = load_prompts().render("redundancy_check", candidates="1. a b c\n2. d e f\n3. g h i",
                                   previous_messages="(none)")
    messages = [{"role": "user", "content": prompt}]
    sync = litellm.completion(model="simulator/x", messages=messages)
    # On its own thread: Playwright's sync API may already run an event loop on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        async_ = pool.submit(asyncio.run, litellm.acompletion(model="simulator/x", messages=messages)).result()
    assert sync.choices[0].message.content == async_.choices[0].message.content == \
        "1: NOT_REDUNDANT\n2: NOT_REDUNDANT\n3: NOT_REDUNDANT"
    assert sync.model == "simulator/x" and sync.usage.total_tokens > 0


def test_model_spec_dict_never_holds_a_key_and_round_trips():
    spec = ModelSpec("openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY", extra_params={"top_p": 0.9})
    assert spec.to_dict() == {"model": "openai/gpt-4o-mini", "temperature": 0.0, "max_tokens": None,
                              "api_base": None, "api_key_env": "OPENAI_API_KEY", "extra_params": {"top_p": 0.9}}
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_model_spec_reads_snapshots_stored_before_the_schema_was_unified():
    # Job snapshots carried the configuration's name; conversation traces called the parameters "extra".
    old_snapshot = {"name": "gpt", "model": "openai/gpt-4o-mini", "temperature": 0.2, "max_tokens": None,
                    "api_base": None, "api_key_env": None, "extra_params": {"seed": 3}}
    old_trace = {"model": "openai/gpt-4o-mini", "temperature": 0.2, "max_tokens": None, "api_base": None,
                 "api_key_env": None, "extra": {"seed": 3}}
    assert ModelSpec.from_dict(old_snapshot) == ModelSpec.from_dict(old_trace) == ModelSpec(
        "openai/gpt-4o-mini", temperature=0.2, extra_params={"seed": 3})


def test_model_spec_rules_name_the_setting_they_concern():
    from generation.medagent.types import ModelSpecError

    cases = [({"temperature": 3}, "temperature"), ({"api_key_env": "sk live"}, "api_key_env"),
             ({"extra_params": {"headers": {"Authorization": "x"}}}, "extra_params"),
             ({"extra_params": {"stream": True}}, "extra_params"),
             ({"max_tokens": 2000, "extra_params": {"medagent_context_tokens": 2048}}, "max_tokens")]
    for values, field in cases:
        with pytest.raises(ModelSpecError) as info:
            ModelSpec("openai/x", **values)
        assert info.value.field == field, values
