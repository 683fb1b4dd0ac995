import logging

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness for load balancers and docker-compose: the database and Redis must answer."""
    status = {"database": False, "redis": False}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status["database"] = True
    except Exception:  # noqa: BLE001 - a health check reports, it does not raise
        logger.exception("health check: database")
    try:
        cache.set("healthz", "1", 5)
        status["redis"] = cache.get("healthz") == "1"
    except Exception:  # noqa: BLE001
        logger.exception("health check: redis")
    ok = all(status.values())
    return JsonResponse({"ok": ok, **status}, status=200 if ok else 503)
