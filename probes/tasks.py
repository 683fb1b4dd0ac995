"""Celery tasks: one per probe item (one prompt, one sample), one per judge answer, and the reaper for
the work of lost workers. The same safety as generation's conversations and judge items: acks_late +
reject_on_worker_lost, an attempt counter, a Redis lease renewed while the work runs, and the beat
schedule's requeue of work whose lease lapsed (mhsd_platform/settings.py CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from . import runner, services


@shared_task(name=runner.RUN_ITEM_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_probe_item(item_id: int) -> str:
    return runner.run_item(item_id)


@shared_task(name=runner.JUDGE_ANSWER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def judge_probe_item(answer_id: int) -> str:
    return runner.run_judge_answer(answer_id)


@shared_task(name="probes.tasks.requeue_orphaned_probe_work", ignore_result=True)
def requeue_orphaned_probe_work() -> dict:
    return services.requeue_orphaned_probe_work()
