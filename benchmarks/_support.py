"""Helpers shared by the benchmark scripts: a throwaway database, Django set-up, a worker process."""
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
for extra in (ROOT / "tests",):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhsd_platform.settings")
# Benchmarks must not be mistaken for tests (different Redis database rules) or touch dev data.
os.environ.pop("PYTEST_VERSION", None)


def fresh_database(name: str) -> str:
    """(Re)create database `name` and point Django at it; returns the DATABASE_URL."""
    host = "127.0.0.1"
    subprocess.run(["dropdb", "-h", host, "-U", "postgres", "--if-exists", name], check=True)
    subprocess.run(["createdb", "-h", host, "-U", "postgres", name], check=True)
    url = f"postgres://postgres@{host}:5432/{name}"
    os.environ["DATABASE_URL"] = url
    return url


def setup_django(migrate: bool = True):
    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", verbosity=0)


def start_worker(concurrency: int, redis_url: str, extra_env=None) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mhsd_platform", "worker", "--pool", "threads",
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def throughput_summary(name: str, *, latency: float, in_flight: int, parallel: dict, baseline: dict,
                       goal_ratio: float = 0.8, **extra) -> dict:
    """The one JSON object of an LLM-throughput benchmark: calls/s with `in_flight` calls allowed at a
    fixed server `latency`, against the one-call-at-a-time baseline measured in the same run. A run
    with failures did not do the work it times, so the goal needs none."""
    limit, baseline_limit = in_flight / latency, 1 / latency
    return {
        "benchmark": name,
        **extra,
        "latency_seconds": latency,
        "calls_in_flight_allowed": in_flight,
        "achieved_calls_per_second": parallel["calls_per_second"],
        "limit_calls_per_second": round(limit, 2),
        "ratio_to_limit": round(parallel["calls_per_second"] / limit, 3),
        "goal_ratio": goal_ratio,
        "goal_met": parallel["calls_per_second"] / limit >= goal_ratio and parallel["failed"] == 0
        and baseline["failed"] == 0,
        "baseline_calls_per_second": baseline["calls_per_second"],
        "baseline_limit_calls_per_second": round(baseline_limit, 2),
        "baseline_ratio_to_limit": round(baseline["calls_per_second"] / baseline_limit, 3),
        "speedup_over_baseline": round(parallel["calls_per_second"] / baseline["calls_per_second"], 2),
        "parallel_run": parallel,
        "baseline_run": baseline,
    }
