"""Periodic jobs of the rating app (scheduled in settings.CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from .assignment import reclaim_expired_assignments


@shared_task(ignore_result=True)
def reclaim_expired_leases() -> int:
    """Release every rating assignment whose lease lapsed, so its conversation goes to another rater."""
    return reclaim_expired_assignments()
