"""MedAgent conversation engine, independent of Django.

Public entry points: `run_conversation`, `extract_case`, `LLMClient`, the data types, and the
offline simulator (`register_simulator`, `is_simulated_model`). Importing this package does not
import LiteLLM; the first LLM call does.
"""
from .engine import CaseExtraction, Interjection, extract_case, run_conversation
from .llm import LLMClient
from .prompt_set import PROMPT_VERSION, load_prompts
from .simulator import SIMULATOR_LABEL, is_simulated_model, register_simulator, simulate_reply
from .types import (
    GOALS,
    INTENTS,
    LITERACY_LEVELS,
    STAGE_NAMES,
    TRAITS,
    CaseInput,
    ConversationCancelled,
    ConversationFailed,
    ConversationResult,
    LLMCallFailed,
    MedAgentError,
    MessageRecord,
    ModelSpec,
    PersonaInput,
    Usage,
)

__all__ = [
    "GOALS", "INTENTS", "LITERACY_LEVELS", "PROMPT_VERSION", "SIMULATOR_LABEL", "STAGE_NAMES", "TRAITS",
    "CaseExtraction", "CaseInput", "ConversationCancelled", "ConversationFailed", "ConversationResult",
    "Interjection", "LLMCallFailed", "LLMClient", "MedAgentError", "MessageRecord", "ModelSpec", "PersonaInput",
    "Usage",
    "extract_case", "is_simulated_model", "load_prompts", "register_simulator", "run_conversation",
    "simulate_reply",
]
