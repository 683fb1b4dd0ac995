"""The one place LiteLLM is imported, lazily: importing it costs 3-4 s and, unless told
otherwise, fetches a price map from the internet and sends telemetry."""
from __future__ import annotations

import logging
import os
import threading

_lock = threading.Lock()
_configured = False

# Loggers on the LLM call path that can print a provider's reply or the request: LiteLLM logs raw
# error bodies at DEBUG, and providers quote the key they were sent ("Incorrect API key provided:
# sk-..."). A filter on the emitting logger runs before every handler, whoever configured them.
REDACTED_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai._base_client", "httpx",
                    "httpcore.http11", "httpcore.connection", "generation")
REDACTED = "***"


class KeyRedactionFilter(logging.Filter):
    """Replaces the value of every *_API_KEY environment variable (model configurations can only name
    such variables) in a record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [value for name, value in os.environ.items() if name.endswith("_API_KEY") and len(value) >= 8]
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose args do not fit its format is still logged
            message = str(record.msg)
        if any(secret in message for secret in secrets):
            record.msg, record.args = _redact(message, secrets), None
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = _redact(text, secrets)
        return True


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


_redaction_filter = KeyRedactionFilter()


def install_key_redaction() -> None:
    """Idempotent: adds the filter to REDACTED_LOGGERS once."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _redaction_filter not in logger.filters:
            logger.addFilter(_redaction_filter)


def import_litellm():
    global _configured
    # Must be set before the first import, or LiteLLM downloads its model price map.
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    if not _configured:
        with _lock:
            litellm.telemetry = False
            # Stops "Give Feedback / Get Help" banners on stdout for every exception.
            litellm.suppress_debug_info = True
            install_key_redaction()
            _configured = True
    return litellm
