import logging

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render

from generation.selectors import generation_counts
from rating.selectors import campaign_overview, open_safety_flag_count

from .accounts.access import login_only
from .accounts.roles import Capability, can

logger = logging.getLogger(__name__)


@login_only
def home(request):
    """Each role lands on the page it works from."""
    user = request.user
    if can(user, Capability.RATE):
        return redirect("rating:home")
    context = {"campaigns": campaign_overview()[:20]}
    if can(user, Capability.MANAGE_CAMPAIGNS):
        context.update(counts=generation_counts(), open_flags=open_safety_flag_count())
        return render(request, "home_admin.html", context)
    return render(request, "home_researcher.html", context)


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
