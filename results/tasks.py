"""Celery tasks of the results app: the debounced recomputation and a periodic safety net."""
import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name=services.RECOMPUTE_TASK, ignore_result=True)
def recompute_agreement(campaign_id: int) -> int | None:
    """Recompute the campaign's agreement and results (scheduled by services.schedule_recompute).

    Idempotent: a redelivered or duplicate task finds the newest snapshot already matching the
    ratings and stops, so at-least-once delivery costs at most one extra check."""
    snapshot = services.run_scheduled_recompute(campaign_id)
    # Safety-probe replies that clinicians marked unsafe reach the admins' safety queue.
    from probes.services import flag_unsafe_replies

    flag_unsafe_replies(campaign_id)
    return snapshot.pk if snapshot is not None else None


@shared_task(name="results.tasks.recompute_stale_campaigns", ignore_result=True)
def recompute_stale_campaigns() -> list[int]:
    """Schedule campaigns whose results no longer match their ratings (e.g. a lost task, or a worker
    that was down while raters submitted)."""
    stale = services.stale_campaign_ids()
    for campaign_id in stale:
        services.schedule_recompute(campaign_id, delay=0, force=True)
    if stale:
        logger.info("Scheduled stale results for campaigns %s", stale)
    return stale
