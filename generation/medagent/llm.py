"""LLM calls through LiteLLM, with the platform's single retry layer.

Two kinds of retry, on purpose kept apart:

* Transport faults (429, 5xx, refused or dropped connections, timeouts, malformed or empty
  bodies) are retried here with exponential backoff and jitter, up to `max_attempts` calls.
  LiteLLM's own retries (`num_retries`) and the OpenAI SDK's (`max_retries`) are switched off
  for every call, so one provider fault costs exactly one extra HTTP request per retry; the
  tests count requests on a loopback server to prove it. The final failure raises
  LLMCallFailed with a reason an admin can act on.
* Replies that arrive fine but do not parse (wrong format, truncated) are retried by
  `complete_parsed`, at most `parse_attempts` (5, as in the paper) times, each time with a short
  note saying what was wrong; then ConversationFailed. The paper's other criterion (a reply
  must be longer than 20 characters) is replaced by the strict parser, because some valid
  structured replies are shorter (e.g. "NEW FACTS: NONE").

Models whose spec opts in (`extra: {"medagent_grammar": "gbnf"}`) get the reply format's GBNF
grammar in the request body (`grammar`, sent through LiteLLM's `extra_body`), so a small local model
served by llama.cpp can only produce well-formed replies; see grammar.py. The option itself is
consumed here and never forwarded.

The API key is read from `os.environ[spec.api_key_env]` at call time only; it is never stored
on the client, in results, traces or exceptions (reasons are scrubbed of it).
"""
from __future__ import annotations

import contextlib
import functools
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .litellm_setup import import_litellm
from .parsers import ParseError, clean_reply
from .simulator import ensure_simulator, is_simulated_model
from .types import CLIENT_OPTIONS, ConversationFailed, LLMCallFailed, ModelSpec, Usage

T = TypeVar("T")

# A local server (llama.cpp, vLLM, Ollama) needs no key, but the OpenAI SDK insists on one and
# would otherwise pick up OPENAI_API_KEY from the environment and send a real key to whatever
# api_base an admin typed. A placeholder keeps real keys where they belong.
NO_KEY_PLACEHOLDER = "no-key-configured"


class MalformedResponse(Exception):
    """The provider answered 2xx but the body is not a usable chat completion."""


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    model: str
    usage: dict[str, Any]
    attempts: int = 1


@dataclass
class ParsedCall:
    value: Any
    completion: Completion
    parse_errors: list[str] = field(default_factory=list)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


class LLMClient:
    """Synchronous client; safe to share between threads (it holds no per-call state)."""

    def __init__(
        self,
        *,
        timeout: float = 120.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        parse_attempts: int = 5,
        call_slot: Callable[[], contextlib.AbstractContextManager] | None = None,
        on_call: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter_seed: int | None = None,
    ):
        if max_attempts < 1 or parse_attempts < 1:
            raise ValueError("max_attempts and parse_attempts must be at least 1")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.parse_attempts = parse_attempts
        self.call_slot = call_slot or contextlib.nullcontext
        self.on_call = on_call
        self._sleep = sleep
        # Jitter has its own generator: backoff must never consume the conversation's seeded RNG,
        # or a retried call would change which candidate gets picked.
        self._jitter = random.Random(jitter_seed)
        self._jitter_lock = threading.Lock()

    # --- helpers ----------------------------------------------------------------------------
    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before retry number `attempt` (1-based): exponential, 'equal jitter', capped."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        with self._jitter_lock:
            delay = ceiling / 2 + self._jitter.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    @staticmethod
    def _api_key(spec: ModelSpec) -> str | None:
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise LLMCallFailed(
                    f"{spec.model}: environment variable {spec.api_key_env} is not set in the worker's environment"
                )
            return key
        if spec.api_base:
            return NO_KEY_PLACEHOLDER
        return None

    @staticmethod
    def _scrub(text: str, key: str | None) -> str:
        if key and key != NO_KEY_PLACEHOLDER and len(key) >= 4:
            text = text.replace(key, "***")
        return text[:500]

    def _describe(self, exc: BaseException, key: str | None) -> str:
        status = _status(exc)
        name = type(exc).__name__
        message = str(getattr(exc, "message", None) or exc) or name
        prefix = f"{name} (HTTP {status})" if status else name
        return self._scrub(f"{prefix}: {message}", key)

    @staticmethod
    def _retryable(litellm, exc: BaseException) -> bool:
        if isinstance(exc, MalformedResponse):
            return True
        permanent = (
            litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError,
            litellm.BadRequestError, litellm.UnprocessableEntityError,
        )
        if isinstance(exc, permanent):
            return False
        transient = (
            litellm.RateLimitError, litellm.InternalServerError, litellm.ServiceUnavailableError,
            litellm.BadGatewayError, litellm.APIConnectionError, litellm.Timeout,
            litellm.APIResponseValidationError, litellm.APIError,
        )
        if isinstance(exc, transient):
            return True
        status = _status(exc)
        return status is not None and (status in (408, 409, 429) or status >= 500)

    def _cost(self, litellm, spec: ModelSpec, response) -> float | None:
        if is_simulated_model(spec.model):
            return 0.0  # in-process rules, nothing is billed
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        # LiteLLM has priced the response already: None there means the price is unknown. Asking
        # completion_cost again would only repeat the failed lookup (a few ms of CPU per call).
        if cost is None and "response_cost" not in hidden:
            try:
                cost = litellm.completion_cost(completion_response=response)
            except Exception:  # noqa: BLE001 - unknown price is a normal, reportable state
                return None
        try:
            return float(cost) if cost is not None else None
        except (TypeError, ValueError):
            return None

    # --- transport layer --------------------------------------------------------------------
    def complete(
        self, spec: ModelSpec, messages: list[dict[str, Any]], *, kind: str = "", grammar: str | None = None,
        seed: int | None = None,
    ) -> Completion:
        """One chat completion, retried on transport faults. Raises LLMCallFailed.

        `grammar` (GBNF text for this reply's format) is sent only when the spec opts in; `seed` only to
        providers that accept OpenAI's `seed` parameter (others would refuse the whole request)."""
        litellm = import_litellm()
        if is_simulated_model(spec.model):
            ensure_simulator()
        key = self._api_key(spec)
        kwargs: dict[str, Any] = {
            "model": spec.model,
            "messages": messages,
            "temperature": spec.temperature,
            "timeout": self.timeout,
            "num_retries": 0,  # LiteLLM's retry layer: off, ours is the only one
            "max_retries": 0,  # the OpenAI SDK's retry layer: off
            **{k: v for k, v in spec.extra_params.items() if k not in CLIENT_OPTIONS},
        }
        if grammar is not None and spec.grammar_format == "gbnf":
            # Not an OpenAI parameter: LiteLLM passes extra_body fields through to the JSON body.
            kwargs["extra_body"] = {**(spec.extra_params.get("extra_body") or {}), "grammar": grammar}
        if seed is not None and _accepts_seed(spec.model):
            kwargs["seed"] = seed
        if spec.max_tokens is not None:
            kwargs["max_tokens"] = spec.max_tokens
        if spec.api_base:
            kwargs["api_base"] = spec.api_base
        if key is not None:
            kwargs["api_key"] = key
        label = f"{spec.model}{f' ({kind})' if kind else ''}"
        last_reason = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.call_slot():
                    response = litellm.completion(**kwargs)
                choices = getattr(response, "choices", None)
                if not choices:
                    raise MalformedResponse("the response has no choices")
                message = getattr(choices[0], "message", None)
                if message is None:
                    raise MalformedResponse("the first choice has no message")
            except Exception as exc:  # noqa: BLE001 - classified just below
                last_reason = self._describe(exc, key)
                if not self._retryable(litellm, exc):
                    raise LLMCallFailed(f"{label}: {last_reason} (not retried)") from None
                if attempt == self.max_attempts:
                    break
                self._sleep(self.backoff_delay(attempt, _retry_after(exc)))
                continue
            usage = getattr(response, "usage", None)
            delta = {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                "calls": 1,
                "retries": attempt - 1,
                "cost_usd": self._cost(litellm, spec, response),
            }
            if self.on_call is not None:
                self.on_call(dict(delta))
            return Completion(
                text=message.content if isinstance(message.content, str) else "",
                finish_reason=getattr(choices[0], "finish_reason", None),
                model=str(getattr(response, "model", "") or spec.model),
                usage=delta,
                attempts=attempt,
            )
        raise LLMCallFailed(f"{label}: gave up after {self.max_attempts} attempts; last error: {last_reason}")

    # --- parse layer ------------------------------------------------------------------------
    def complete_parsed(
        self,
        spec: ModelSpec,
        prompt: str,
        parser: Callable[[str], T],
        *,
        kind: str,
        usage: Usage | None = None,
        retry_note: Callable[[str], str] | None = None,
        grammar: str | None = None,
        seed: int | None = None,
    ) -> ParsedCall:
        """Call until `parser` accepts the reply (at most `parse_attempts` calls).

        A grammar shapes the reply but does not replace the parser: every reply is still parsed. When
        every reply is refused, the ConversationFailed's trace holds the last reply as received and
        each attempt's problem, so the caller can keep them."""
        errors: list[str] = []
        messages = [{"role": "user", "content": prompt}]
        # Passed on only when given, so subclasses that override complete(spec, messages, kind=...) keep working.
        grammar_kwargs = {"grammar": grammar} if grammar is not None else {}
        if seed is not None:
            grammar_kwargs["seed"] = seed
        for _ in range(self.parse_attempts):
            completion = self.complete(spec, messages, kind=kind, **grammar_kwargs)
            if usage is not None:
                usage.add(completion.usage)
            if completion.finish_reason not in (None, "stop"):
                error = f"reply did not finish normally (finish_reason={completion.finish_reason})"
            elif not clean_reply(completion.text):
                error = "empty reply"
            else:
                try:
                    return ParsedCall(parser(completion.text), completion, errors)
                except ParseError as exc:
                    error = str(exc)
            errors.append(error)
            note = retry_note(error) if retry_note else f"Your previous reply could not be used ({error})."
            messages = [{"role": "user", "content": f"{prompt}\n{note}\n"}]
        raise ConversationFailed(
            f"{kind} by {spec.model}: no usable reply after {self.parse_attempts} attempts; last problem: {errors[-1]}",
            trace={"last_reply": completion.text, "parse_errors": errors},
        )


@functools.lru_cache(maxsize=256)
def _accepts_seed(model: str) -> bool:
    litellm = import_litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model)
        return "seed" in (litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or [])
    except Exception:  # noqa: BLE001 - an unknown provider: send nothing it might refuse
        return False
