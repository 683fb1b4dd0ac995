"""Celery tasks: one per judge item, plus the reaper for items of lost workers. The same safety as
generation's conversations: acks_late + reject_on_worker_lost, an attempt counter, a Redis lease
renewed while the item runs, and the beat schedule's requeue of items whose lease lapsed."""
from celery import shared_task

from . import services


@shared_task(name=services.JUDGE_ITEM_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def judge_item(item_id: int) -> str:
    return services.run_item_attempt(item_id)


@shared_task(name=services.JUDGE_DISPATCH_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dispatch_judge_run(run_id: int) -> int:
    return services.dispatch_judge_run(run_id)


@shared_task(ignore_result=True)
def requeue_orphaned_judge_items() -> list[int]:
    return services.requeue_orphaned_judge_items()
