"""The offline real model: SmolLM2-135M served by llama.cpp (`make local-llm`), offered when it answers."""
import json
import urllib.error
import urllib.request

from django.conf import settings

from .medagent.types import CONTEXT_OPTION, GRAMMAR_OPTION, api_base_problem
from .models import ModelConfig

LOCAL_CONFIG_NAME = "Local SmolLM2-135M (llama.cpp)"
LOCAL_MODEL = "openai/smollm2-135m-instruct"

# Why these parameters:
# * medagent_grammar: a 135M model does not follow the pipeline's line formats on its own; llama.cpp's
#   grammar-constrained decoding makes every reply well-formed (medagent/grammar.py).
# * temperature 0.8 with a fixed sampling seed: at temperature 0 the model writes the same candidates
#   turn after turn, the redundancy check rejects them all and the conversation ends without an Exit
#   message; the seed keeps re-runs repeatable on the same server.
# * max_tokens 600: above the longest reply the grammars allow in ordinary English (about 1,850
#   characters for three candidates).
# * medagent_context_tokens: the server's context (`--n_ctx 4096` in scripts/local-llm.sh). Notes and
#   previous messages grow with the conversation; with all three roles on this model a long one
#   would pass 4096 tokens, so the engine leaves the oldest entries out of a prompt instead.
LOCAL_CONTEXT_TOKENS = 4096
LOCAL_DEFAULTS = {
    "model": LOCAL_MODEL,
    "temperature": 0.8,
    "max_tokens": 600,
    "extra_params": {GRAMMAR_OPTION: "gbnf", CONTEXT_OPTION: LOCAL_CONTEXT_TOKENS, "seed": 1234},
}
# What ensure_config() created before grammar support; such a config cannot produce the formats.
_PREVIOUS_DEFAULTS = {"temperature": 0.0, "max_tokens": 400, "extra_params": {}}


def status(timeout: float = 0.5) -> dict:
    base = settings.LOCAL_LLM_API_BASE.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/models", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
        served = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
        return {"available": True, "api_base": base, "models": served}
    except (urllib.error.URLError, OSError, ValueError):
        return {"available": False, "api_base": base, "models": []}


def ensure_config() -> tuple[ModelConfig, bool]:
    """Raises ValueError when LOCAL_LLM_API_BASE carries credentials (it would be stored and exported)."""
    base = settings.LOCAL_LLM_API_BASE.rstrip("/")
    problem = api_base_problem(base)
    if problem:
        raise ValueError(f"LOCAL_LLM_API_BASE cannot be offered as a model: {problem}")
    config, created = ModelConfig.objects.get_or_create(
        name=LOCAL_CONFIG_NAME, defaults={**LOCAL_DEFAULTS, "api_base": base},
    )
    # Upgrade a config left exactly as the old defaults made it; one an admin has edited stays as it is.
    if not created and config.model == LOCAL_MODEL and all(
        getattr(config, field) == value for field, value in _PREVIOUS_DEFAULTS.items()
    ):
        for field in _PREVIOUS_DEFAULTS:
            setattr(config, field, LOCAL_DEFAULTS[field])
        config.save(update_fields=list(_PREVIOUS_DEFAULTS))
    return config, created
