"""Plain data types of the MedAgent engine (no Django, no LiteLLM import).

The identifiers (traits, literacy levels, intent and goal keys, stages) are the same strings the
Django models store, so a row can be turned into these types without a mapping table.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
LITERACY_LEVELS = ("basic", "advanced", "functional")
INTENTS = ("interpreting_information", "lifestyle_literacy", "personalising_care")
GOALS = ("comfort", "functioning", "longevity")

STAGE_NAMES = {
    1: "Fostering the relationship",
    2: "Gathering information",
    3: "Providing information",
    4: "Decision making",
    5: "Responding to emotions",
    6: "Exit",
}
EXIT_STAGE = 6

# Keys an admin may not smuggle in through ModelSpec.extra: they are set by the client itself,
# and a key in `extra` would end up stored with the conversation.
_RESERVED_EXTRA = {
    "model", "messages", "api_key", "api_base", "base_url", "timeout", "num_retries", "max_retries",
    "stream", "temperature", "max_tokens", "custom_llm_provider",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def api_base_problem(url: str | None) -> str | None:
    """Why `url` may not be an api_base, or None. The base URL is stored, shown in pages and copied into
    job snapshots, provenance and exports, so it must carry no credential: no user:password@ and
    no query string or fragment (where keys such as ?api-key=... travel)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give an http:// or https:// URL with a host name."
    if "@" in parts.netloc:
        return ("Remove the user name and password (user:password@): the base URL is stored and exported in "
                "the clear. Put the key in an environment variable and give its name in the key variable field.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return ("Remove the query string (?...) and fragment (#...): keys such as ?api-key= would be stored and "
                "exported in the clear. Put the key in an environment variable and give its name instead.")
    return None
# Engine options an admin may put in ModelSpec.extra: consumed by the client, never sent as-is.
# `medagent_grammar: "gbnf"` asks for grammar-constrained decoding (llama.cpp-based servers only).
GRAMMAR_OPTION = "medagent_grammar"
GRAMMAR_FORMATS = ("gbnf",)
# `medagent_context_tokens: N` declares a small context window (e.g. llama.cpp's n_ctx): the engine then
# leaves the oldest notes and messages out of a prompt rather than overflow it (engine._Conversation.render).
CONTEXT_OPTION = "medagent_context_tokens"
CLIENT_OPTIONS = frozenset({GRAMMAR_OPTION, CONTEXT_OPTION})


class MedAgentError(Exception):
    """Base class of the engine's own errors; `reason` is safe to show to admins.

    When raised by run_conversation, `usage` holds the tokens/cost spent so far and `trace` the
    partial trace (for diagnosis only: a failed conversation has no messages to keep).
    """

    def __init__(self, reason: str, *, usage: dict[str, Any] | None = None, trace: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.usage = usage
        self.trace = trace


class LLMCallFailed(MedAgentError):
    """A provider call failed for good (after the retry layer gave up, or on a non-retryable error)."""


class ConversationFailed(MedAgentError):
    """The conversation cannot be completed (unparseable replies, safety cap, failed call...)."""


class ConversationCancelled(MedAgentError):
    """The caller asked to stop (via `should_continue`); raised between turns, nothing half-done."""


class ModelSpecError(ValueError):
    """A model setting that breaks a rule; `field` names the setting, so forms can show it in place."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# Names of parameters that carry credentials (extra_headers' Authorization, aws_secret_access_key,
# x-api-key, access_token, ...), judged by their parts ("max_tokens" is not one).
_SECRET_PARTS = {"key", "apikey", "secret", "password", "passwd", "authorization", "credential", "credentials", "token"}


def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_PARTS & set(re.split(r"[_\-.\s]+", name.lower())))


def _flat_keys(value) -> list[str]:
    """Every key of a JSON value, nested ones too."""
    if isinstance(value, dict):
        return [k for key, item in value.items() for k in (str(key), *_flat_keys(item))]
    if isinstance(value, list):
        return [k for item in value for k in _flat_keys(item)]
    return []


@dataclass(frozen=True)
class ModelSpec:
    """One model role: the single schema of a model setting.

    ModelConfig rows become specs (ModelConfig.to_spec), job snapshots and conversation provenance
    are `to_dict()` and are read back with `from_dict()`, and every rule lives in __post_init__, so
    the pages, the Django admin, the API and the engine check the same things once.
    `api_key_env` is the NAME of the variable holding the key, never the key.
    """

    model: str
    temperature: float = 0.0
    max_tokens: int | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip() or self.model != self.model.strip():
            raise ModelSpecError(
                "model", f"model must be a LiteLLM model string such as 'openai/gpt-4o', got {self.model!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) \
                or not 0 <= self.temperature <= 2:
            raise ModelSpecError("temperature", f"temperature must be between 0 and 2, got {self.temperature!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < 1):
            raise ModelSpecError(
                "max_tokens", f"max_tokens must be a positive integer or None, got {self.max_tokens!r}")
        if self.api_base is not None and (problem := api_base_problem(self.api_base)):
            raise ModelSpecError("api_base", f"api_base: {problem}")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ModelSpecError("api_key_env", "api_key_env must be the name of an environment variable, not a key")
        self._check_extra_params()

    def _check_extra_params(self) -> None:
        extra = self.extra_params
        if not isinstance(extra, dict):
            raise ModelSpecError("extra_params", "Give a JSON object.")
        reserved = sorted(set(extra) & _RESERVED_EXTRA)
        if reserved:
            raise ModelSpecError(
                "extra_params", f"Use the dedicated fields, not extra parameters, for: {', '.join(reserved)}.")
        # Extra parameters are copied into job snapshots, provenance and exports.
        secret_like = sorted(name for name in _flat_keys(extra) if _is_secret_name(name))
        if secret_like:
            raise ModelSpecError("extra_params", (
                f"Extra parameters are stored and exported in the clear; no credentials ({', '.join(secret_like)}). "
                "Put the key in an environment variable and give its name in the key variable field."))
        grammar = extra.get(GRAMMAR_OPTION)
        if grammar is not None and grammar not in GRAMMAR_FORMATS:
            raise ModelSpecError(
                "extra_params", f"{GRAMMAR_OPTION} must be one of {', '.join(GRAMMAR_FORMATS)}, got {grammar!r}")
        extra_body = extra.get("extra_body")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ModelSpecError("extra_params", "extra_body must be a JSON object")
        if grammar is not None and extra_body and "grammar" in extra_body:
            raise ModelSpecError(
                "extra_params",
                f"extra_body may not set grammar when {GRAMMAR_OPTION} is on: the engine sets it per call")
        context = extra.get(CONTEXT_OPTION)
        if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 512):
            raise ModelSpecError(
                "extra_params", f"{CONTEXT_OPTION} must be a whole number of tokens, at least 512, got {context!r}")
        if context is not None and self.max_tokens is not None and self.max_tokens >= context // 2:
            raise ModelSpecError(
                "max_tokens", f"max_tokens must be under half of {CONTEXT_OPTION}, or no room is left for the prompt")

    @property
    def grammar_format(self) -> str | None:
        """"gbnf" when replies should be grammar-constrained (see medagent/grammar.py), else None."""
        return self.extra_params.get(GRAMMAR_OPTION)

    @property
    def context_tokens(self) -> int | None:
        """The model's context window when declared (prompt plus reply must fit in it), else None."""
        return self.extra_params.get(CONTEXT_OPTION)

    def to_dict(self) -> dict[str, Any]:
        """What is stored in job snapshots and conversation provenance (the env var name, never its value)."""
        return {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "api_base": self.api_base,
            "api_key_env": self.api_key_env,
            "extra_params": dict(self.extra_params),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Read a `to_dict()` back. Snapshots stored before the schema was unified are readable too:
        traces named the parameters "extra", and a configuration's "name" rides along unused."""
        extra = data.get("extra_params", data.get("extra")) or {}
        return cls(
            model=data.get("model", ""),
            temperature=data.get("temperature", 0.0),
            max_tokens=data.get("max_tokens"),
            api_base=data.get("api_base") or None,
            api_key_env=data.get("api_key_env") or None,
            extra_params=dict(extra) if isinstance(extra, dict) else extra,
        )


@dataclass
class CaseInput:
    case_id: str
    text: str
    ground_truth: str
    facts: list[str]
    vital_facts: list[str]
    intent: str
    goal: str
    condition: str = ""

    def __post_init__(self):
        self.facts = [f.strip() for f in self.facts if f and f.strip()]
        self.vital_facts = [f.strip() for f in self.vital_facts if f and f.strip()]
        if not self.facts:
            raise ValueError(f"case {self.case_id}: no facts; extract them before generating")
        if self.intent not in INTENTS:
            raise ValueError(f"case {self.case_id}: intent must be one of {INTENTS}, got {self.intent!r}")
        if self.goal not in GOALS:
            raise ValueError(f"case {self.case_id}: goal must be one of {GOALS}, got {self.goal!r}")


@dataclass(frozen=True)
class PersonaInput:
    """One persona-grid cell. intent/goal None means "use the case's"."""

    trait: str
    literacy: str
    intent: str | None = None
    goal: str | None = None

    def __post_init__(self):
        if self.trait not in TRAITS:
            raise ValueError(f"trait must be one of {TRAITS}, got {self.trait!r}")
        if self.literacy not in LITERACY_LEVELS:
            raise ValueError(f"literacy must be one of {LITERACY_LEVELS}, got {self.literacy!r}")
        if self.intent is not None and self.intent not in INTENTS:
            raise ValueError(f"intent must be one of {INTENTS}, got {self.intent!r}")
        if self.goal is not None and self.goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {self.goal!r}")


@dataclass
class MessageRecord:
    index: int
    role: str  # "patient" | "sensemaker"
    stage: int  # 1-6
    text: str
    trace: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    """Token and cost totals; cost_usd is None as soon as one call's price is unknown."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    retries: int = 0
    cost_usd: float | None = 0.0

    def add(self, delta: dict[str, Any]) -> None:
        self.prompt_tokens += int(delta.get("prompt_tokens") or 0)
        self.completion_tokens += int(delta.get("completion_tokens") or 0)
        self.calls += int(delta.get("calls") or 0)
        self.retries += int(delta.get("retries") or 0)
        cost = delta.get("cost_usd")
        if cost is None or self.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += float(cost)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
            "retries": self.retries,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 8),
        }


@dataclass
class ConversationResult:
    messages: list[MessageRecord]
    trace: dict[str, Any]
    usage: dict[str, Any]
    stage_counts: dict[str, dict[str, int]]
    prompt_version: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": [m.as_dict() for m in self.messages],
            "trace": self.trace,
            "usage": self.usage,
            "stage_counts": self.stage_counts,
            "prompt_version": self.prompt_version,
            "seed": self.seed,
        }

    @property
    def sensemaker_texts(self) -> list[str]:
        return [m.text for m in self.messages if m.role == "sensemaker"]
