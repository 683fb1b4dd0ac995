"""The one place LiteLLM is imported, lazily: importing it costs 3-4 s and, unless told
otherwise, fetches a price map from the internet and sends telemetry."""
from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_configured = False


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
            _configured = True
    return litellm
