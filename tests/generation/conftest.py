"""Fixtures for the MedAgent engine tests: a loopback OpenAI-compatible server and fast clients.

These tests need no database and no Django: the engine under test is plain Python.
"""
import os
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # pyproject's pythonpath does this too; kept for running this folder alone
    sys.path.insert(0, str(_ROOT))

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from generation.medagent import LLMClient, ModelSpec  # noqa: E402
from tests.fakellm import FakeLLMServer  # noqa: E402


@pytest.fixture
def fake_llm():
    with FakeLLMServer(hang_seconds=10) as server:
        yield server


@pytest.fixture
def sleeps():
    """Records backoff delays instead of sleeping, so fault tests stay fast."""
    return []


@pytest.fixture
def fast_client(sleeps):
    return LLMClient(timeout=5, max_attempts=4, backoff_base=0.01, backoff_max=0.05, sleep=sleeps.append,
                     jitter_seed=0)


@pytest.fixture
def sim_models():
    helper = ModelSpec("simulator/helper")
    return {"patient": ModelSpec("simulator/patient"), "sensemaker": ModelSpec("simulator/under-test"),
            "helper": helper}
