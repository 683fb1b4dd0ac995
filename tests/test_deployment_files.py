"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine), so they are read against
the settings they configure, and the web health check's own code is run against a live server."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS_SOURCE = (ROOT / "mhsd_platform" / "settings.py").read_text()


def _settings_variables() -> set[str]:
    return set(re.findall(r'(?:os\.environ\.get|env_bool|env_list)\("([A-Z0-9_]+)"', SETTINGS_SOURCE))


def test_every_service_has_a_health_check():
    assert set(COMPOSE["services"]) == {"postgres", "redis", "web", "worker"}
    for name, service in COMPOSE["services"].items():
        assert service.get("healthcheck", {}).get("test"), name


def test_every_variable_compose_sets_is_read_by_the_settings():
    read = _settings_variables()
    for name in ("web", "worker"):
        environment = COMPOSE["services"][name]["environment"]
        unknown = [v for v in environment if v not in read and not v.endswith("_API_KEY")]
        assert unknown == [], f"{name} sets variables the settings never read: {unknown}"


def test_the_database_url_matches_the_postgres_service():
    pg = COMPOSE["services"]["postgres"]["environment"]
    url = COMPOSE["services"]["web"]["environment"]["DATABASE_URL"]
    assert url == f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    assert COMPOSE["services"]["web"]["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


def test_the_worker_follows_the_settings_and_waits_for_migrations():
    worker = COMPOSE["services"]["worker"]
    assert worker["command"].startswith("celery -A mhsd_platform worker --beat")
    # Flags would silently override CELERY_WORKER_POOL / CELERY_WORKER_CONCURRENCY.
    assert "--pool" not in worker["command"] and "--concurrency" not in worker["command"]
    assert worker["depends_on"]["web"]["condition"] == "service_healthy"
    assert "migrate" in COMPOSE["services"]["web"]["command"]


def test_long_exports_are_not_killed_by_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for command in (COMPOSE["services"]["web"]["command"], dockerfile):
        assert "gthread" in command


def test_the_image_never_contains_secrets_or_local_environments():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".env", ".git", ".venv", ".venv-llm", "var"):
        assert path in ignored


@pytest.mark.django_db
@pytest.mark.parametrize("https", [False, True])
def test_the_web_health_check_passes_behind_a_custom_host_and_tls(https, live_server, settings, monkeypatch):
    settings.ALLOWED_HOSTS = ["rating.example.org"]
    if https:
        settings.SECURE_SSL_REDIRECT = True
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    code = COMPOSE["services"]["web"]["healthcheck"]["test"][-1]
    code = code.replace("http://127.0.0.1:8000", live_server.url)
    monkeypatch.setenv("ALLOWED_HOSTS", "rating.example.org,localhost")
    with pytest.raises(SystemExit) as exited:
        exec(compile(code, "healthcheck", "exec"), {})  # noqa: S102 - our own compose file's check
    assert exited.value.code == 0
