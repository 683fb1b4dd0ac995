"""Celery tasks: one per probe item (one prompt, one sample)."""
from celery import shared_task

from . import runner


@shared_task(name="probes.tasks.run_probe_item", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_probe_item(item_id: int) -> str:
    return runner.run_item(item_id)
