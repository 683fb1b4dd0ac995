"""Celery is wired to the real Redis: a real worker thread picks up and runs a task."""
import pytest
from celery.contrib.testing import tasks  # noqa: F401  (registers the ping task the worker checks)
from celery.contrib.testing.worker import start_worker

from mhsd_platform.celery import app


@pytest.mark.worker
def test_a_real_worker_runs_a_task_through_redis():
    assert app.conf.broker_url.startswith("redis://")
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=True, shutdown_timeout=10):
        result = app.send_task("celery.ping")
        assert result.get(timeout=20) == "pong"


def test_worker_start_imports_litellm_and_freezes_what_it_imported():
    """The worker pays LiteLLM's import before its pool starts and hides those long-lived objects from
    the garbage collector, so full collections do not stall every in-flight LLM call."""
    import gc
    import sys

    from mhsd_platform.celery import _prepare_worker

    gc.unfreeze()
    try:
        _prepare_worker()
        assert "litellm" in sys.modules
        assert gc.get_freeze_count() > 100_000
    finally:
        gc.unfreeze()
