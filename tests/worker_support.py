"""Real Celery workers for tests: in-process threads (start_worker) or a separate process."""
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from celery import signals
from celery.contrib.testing import tasks  # noqa: F401  (registers celery.ping for the ping check)
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from mhsd_platform.celery import app

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_CHARS = 4000


def _leave_logging_alone(**kwargs):
    """A setup_logging receiver: with one connected, Celery does not take over the root logger."""


@contextlib.contextmanager
def worker_thread(concurrency=4):
    """A real worker consuming the real (test) Redis broker inside this process.

    Starting it re-runs django.setup() (Celery's Django fix-up), whose logging dictConfig replaces
    the root logger's handlers, pytest's capture handler among them: `caplog` would then see nothing
    the worker threads log. The root logger's handlers and level are put back once it runs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    signals.setup_logging.connect(_leave_logging_alone)
    try:
        with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=True,
                          shutdown_timeout=30):
            for handler in handlers:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(level)
            yield
            _wait_until_idle()
    finally:
        signals.setup_logging.disconnect(_leave_logging_alone)


def _wait_until_idle(timeout=30.0):
    """Let tasks the worker is running end before it stops: stopping a threads pool does not wait for them,
    and one still writing (e.g. the results recomputation a finished judge run asks for at once) would
    deadlock with the test database's flush. Bounded, so a hung task cannot stall the suite."""
    from celery.worker import state

    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        quiet = 0 if state.active_requests else quiet + 1
        time.sleep(0.1)


@contextlib.contextmanager
def worker_process(concurrency=4, loglevel="WARNING", **env):
    """A worker in its own process group (so a test can SIGKILL it), on this test's database.

    Its output goes to a log file (`proc.log_path`), never to an unread pipe that a chatty worker
    could fill and block on; if the test fails inside the block, the log's tail is printed."""
    db = settings.DATABASES["default"]
    full_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                        f"{connection.settings_dict['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **env,
    }
    log_dir = Path(tempfile.mkdtemp(prefix="celery-worker-"))
    log_path = log_dir / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mhsd_platform", "worker", "--pool", "threads",
             "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=full_env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path
    failed = False
    try:
        yield proc
    except BaseException:
        failed = True
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if failed:
            tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
            print(f"--- worker log ({log_path}), last {LOG_TAIL_CHARS} characters ---\n{tail}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


def wait_for(predicate, timeout=60.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
