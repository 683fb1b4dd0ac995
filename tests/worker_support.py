"""Real Celery workers for tests: in-process threads (start_worker) or a separate process."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery.contrib.testing import tasks  # noqa: F401  (registers celery.ping for the ping check)
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from mhsd_platform.celery import app

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def worker_thread(concurrency=4):
    """A real worker consuming the real (test) Redis broker inside this process."""
    with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=True, shutdown_timeout=30):
        yield


@contextlib.contextmanager
def worker_process(concurrency=4, **env):
    """A worker in its own process group (so a test can SIGKILL it), on this test's database."""
    db = settings.DATABASES["default"]
    full_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                        f"{connection.settings_dict['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mhsd_platform", "worker", "--pool", "threads",
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=full_env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for(predicate, timeout=60.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
