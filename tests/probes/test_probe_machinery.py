"""Probe items on the run machinery generation and judge runs share (generation/work_items.py,
generation/concurrency.py): a Redis lease per item, an attempt counter, acks_late tasks, the
beat-scheduled reaper for the items of a killed worker, and the run's call slots in Redis. Real
Celery worker processes, the real Redis and PostgreSQL, LiteLLM's HTTP path to the loopback server."""
import os
import signal
from unittest import mock

import pytest
from django.conf import settings as django_settings

from generation.concurrency import JobCallSlots, WorkLease
from generation.work_items import lost_item_ids
from probes import runner, services
from probes.models import ProbeItem, ProbeRun
from tests.worker_support import wait_for, worker_process, worker_thread

from .test_interjection import small_set
from .test_probe_runs import finished, launch, scripted

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_tasks_are_late_acked_and_the_reaper_is_on_the_beat_schedule():
    from probes import tasks

    for task in (tasks.run_probe_item, tasks.judge_probe_item):
        assert task.acks_late and task.reject_on_worker_lost
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "probes.tasks.requeue_orphaned_probe_work" in scheduled


def test_a_killed_worker_leads_to_its_items_being_run_again_without_duplicate_exchanges(http_model, fake_llm,
                                                                                        settings):
    fake_llm.latency = 1.0
    settings.GENERATION_LEASE_SECONDS = 3  # the reaper's view here, as the workers' below
    env = {"GENERATION_LEASE_SECONDS": "3", "LLM_BACKOFF_BASE": "0.01"}
    battery = services.import_battery(None, small_set(("si_bridges", "hall_figure", "ocd_washing")), "s.jsonl").battery
    run = launch(battery, http_model, samples=2, max_concurrent_calls=6)
    with worker_process(concurrency=4, **env) as proc:
        wait_for(lambda: run.items.filter(status="running").count() >= 2, timeout=60,
                 message="the worker to be mid-run")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    lost = set(run.items.filter(status="running").values_list("id", flat=True))
    assert lost and not ProbeItem.objects.filter(pk__in=lost, conversation__isnull=False).exists(), \
        "nothing half-written"
    wait_for(lambda: set(lost_item_ids(ProbeItem, runner.LEASE_KIND)) == lost, timeout=15, message="leases to lapse")
    fake_llm.latency = 0.05
    with worker_process(concurrency=4, **env):
        assert set(services.requeue_orphaned_probe_work()["items"]) == lost
        # Items the dead worker had prefetched lost their messages with it: the reaper (called here as the
        # beat schedule would) re-sends them once the run has gone quiet.
        wait_for(lambda: services.requeue_orphaned_probe_work() is not None and finished(run)(), timeout=120,
                 interval=1, message="the re-run items")
    run.refresh_from_db()
    assert run.status == ProbeRun.Status.DONE
    items = list(run.items.all())
    assert {i.status for i in items} == {"done"} and all(i.conversation_id for i in items)
    for item in items:
        assert item.attempts == (2 if item.pk in lost else 1)
    from generation.models import Conversation

    assert Conversation.objects.filter(source_label="safety-probe").count() == 6, "one exchange per item"


def test_a_redelivered_task_is_a_no_op(small_battery, http_model, fake_llm, fast_retries):
    from probes.tasks import run_probe_item

    fake_llm.responder = scripted
    with worker_thread(concurrency=2):
        run = launch(small_battery, http_model)
        wait_for(finished(run), message="run")
        item = run.items.order_by("id").first()
        run_probe_item.delay(item.pk)
        assert run_probe_item.apply(args=[item.pk]).get() == runner.ItemOutcome.SKIPPED
        wait_for(lambda: not lost_item_ids(ProbeItem, runner.LEASE_KIND), message="no stray attempt")
    item.refresh_from_db()
    assert item.attempts == 1 and fake_llm.hits == 4


def test_an_item_whose_lease_is_held_elsewhere_is_skipped(small_battery, http_model, fake_llm):
    run = launch(small_battery, http_model, enqueue_tasks=False)
    item = run.items.order_by("id").first()
    lease = WorkLease(runner.LEASE_KIND, item.pk, ttl=30)
    assert lease.acquire()
    try:
        assert runner.run_item(item.pk) == runner.ItemOutcome.SKIPPED
    finally:
        lease.release()
    item.refresh_from_db()
    assert item.status == "queued" and item.attempts == 0 and fake_llm.hits == 0


def test_the_reaper_gives_up_on_an_item_that_keeps_losing_its_worker(small_battery, http_model, settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    run = launch(small_battery, http_model, enqueue_tasks=False)
    first, second = run.items.order_by("pk")[:2]
    ProbeItem.objects.filter(pk=first.pk).update(status="running", attempts=1)
    ProbeItem.objects.filter(pk=second.pk).update(status="running", attempts=2)
    with mock.patch.object(services, "enqueue_items") as enqueue:
        assert services.requeue_orphaned_probe_work()["items"] == [first.pk]
    enqueue.assert_called_once_with([first.pk])
    second.refresh_from_db()
    assert second.status == "failed" and "lost on each of 2 attempts" in second.failure_reason


def test_the_runs_call_slots_are_the_shared_ones_named_by_scope(small_battery, http_model, fake_llm, fast_retries):
    """The limit is held in Redis under the run's own scope ("probe-run"), like a judge run's."""
    fake_llm.latency = 0.3
    fake_llm.responder = scripted
    run = launch(small_battery, http_model, samples=2, max_concurrent_calls=2, enqueue_tasks=False)
    slots = JobCallSlots(run.pk, 2, scope=runner.CALL_SLOT_SCOPE)
    assert slots.key == f"mhsd:probe-run:{run.pk}:call-slots"
    seen = []
    original = fake_llm.latency

    def watch(messages, model):
        seen.append(slots.in_flight())
        return None  # the scripted answer below

    fake_llm.responder = lambda messages, model: watch(messages, model) or scripted(messages, model)
    services.run_inline(run, threads=4)
    assert original and seen and max(seen) == 2 and fake_llm.max_in_flight == 2
    assert slots.in_flight() == 0


def test_judge_answers_of_a_lost_worker_are_requeued_and_answered_once(settings):
    from generation.models import ModelConfig
    from probes.models import ProbeJudgeAnswer

    settings.GENERATION_MAX_ATTEMPTS = 3
    battery = services.import_battery(None, small_set(("si_bridges", "hall_figure")), "s.jsonl").battery
    model = ModelConfig.objects.create(name="Sim M", model="simulator/sensemaker-m")
    judge_model = ModelConfig.objects.create(name="Sim J", model="simulator/judge-m")
    run = launch(battery, model, judge_model=judge_model, enqueue_tasks=False)
    services.run_inline(run)  # items, then their judge answers
    first, second = run.judge_answers.order_by("pk")
    answered = first.answer_yes
    # The first answer's worker died mid-call (running, no lease); the second was never started.
    ProbeJudgeAnswer.objects.filter(pk=first.pk).update(status="running", attempts=1, answer_yes=None)
    ProbeJudgeAnswer.objects.filter(pk=second.pk).update(status="queued", answer_yes=None)
    with mock.patch.object(services, "enqueue_judge_answers") as enqueue:
        assert services.requeue_orphaned_probe_work()["judge_answers"] == [first.pk]
    enqueue.assert_called_once()
    assert first.pk in enqueue.call_args.args[0]
    assert services.run_judge_answers_inline(run) == {runner.ItemOutcome.ANSWERED: 2}
    first.refresh_from_db()
    assert (first.status, first.attempts, first.answer_yes) == ("done", 2, answered), "same seed, same answer"
    assert run.judge_answers.count() == 2
