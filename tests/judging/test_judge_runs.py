"""Judge runs end to end: Celery workers on the real Redis send the judge prompt through LiteLLM's real
HTTP path to the loopback OpenAI-compatible server, parse the reply strictly and write to the real
PostgreSQL."""
import json
import os
import signal

import pytest

from audit.models import AuditEvent
from judging import services
from judging.models import JudgeItem, JudgeRun, JudgeScore
from judging.selectors import run_progress
from tests.worker_support import wait_for, worker_process, worker_thread

from .conftest import FAKE_KEY
from .helpers import DIALOGUE, campaign_of, http_judge, launch, rubric_axes_judged

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_retries")]


def finished(run):
    return lambda: run_progress(JudgeRun.objects.get(pk=run.pk))["is_finished"]


def judge_requests(server):
    return [r for r in server.requests if r["messages"] and r["messages"][0]["content"].startswith("[judge:")]


def test_a_run_completes_on_a_real_worker_with_scores_and_provenance(fake_llm):
    campaign = campaign_of(2)
    judge = http_judge(fake_llm)
    with worker_thread(concurrency=4):
        run = launch(judge, campaign, samples=2, seed=7)
        wait_for(finished(run), message="judge run to finish")
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE and run.finished_at is not None
    assert run.model_snapshot["model"] == "openai/judge-under-test"
    assert run.model_snapshot["api_key_env"] == "FAKE_JUDGE_API_KEY" and FAKE_KEY not in json.dumps(run.model_snapshot)
    assert run.prompt_version == "judge-v1" and run.rubric == campaign.rubric and not run.is_simulated
    items = list(run.items.order_by("conversation_id", "sample_index"))
    assert [(i.sample_index, i.status) for i in items] == [(0, "done"), (1, "done")] * 2
    axes = rubric_axes_judged()
    for item in items:
        scores = {s.axis.key: s for s in item.scores.select_related("axis")}
        assert sorted(scores) == sorted(axes), "every judged axis, and no computed one (SMOG)"
        assert all(s.rationale and s.cited_messages for s in scores.values())
        assert all(1 <= n <= len(DIALOGUE) for s in scores.values() for n in s.cited_messages)
        assert json.loads(item.raw_reply).keys() == scores.keys(), "the raw reply is kept as received"
        assert item.calls == 1 and item.attempts == 1 and item.prompt_tokens > 0 and item.completion_tokens > 0
        assert item.seed == services.item_seed(7, item.conversation, item.sample_index)
    # The item's seed went over the wire, and the judge never saw the model under test or the key.
    sent = judge_requests(fake_llm)
    assert sorted(r["body"]["seed"] for r in sent) == sorted(i.seed for i in items)
    assert all(FAKE_KEY in r["authorization"] for r in sent)
    for request in sent:
        prompt = request["messages"][0]["content"]
        assert "simulator/sensemaker" not in prompt and "Major depressive disorder" in prompt
    assert len({i.seed for i in items}) == 4, "each conversation x sample has its own seed"
    assert fake_llm.hits == 4 == JudgeScore.objects.filter(item__run=run).values("item").distinct().count()
    progress = run_progress(run)
    assert progress["percent"] == 100 and progress["counts"]["done"] == 4 and progress["llm_calls"] == 4
    assert AuditEvent.objects.filter(action="judge_run.launch", object_id=str(run.pk)).exists()


def test_a_malformed_reply_is_retried_then_the_item_fails_with_its_reason_and_no_score(fake_llm):
    campaign = campaign_of(1)
    fake_llm.push_faults("bad_content", "bad_content", "bad_content")  # JUDGE_PARSE_ATTEMPTS = 3
    run = launch(http_judge(fake_llm), campaign, enqueue_tasks=False)
    item = run.items.get()
    assert services.run_item_attempt(item.pk) == services.ItemOutcome.FAILED
    item.refresh_from_db()
    assert item.status == "failed" and not item.scores.exists(), "never a default score"
    assert "no usable reply after 3 attempts" in item.failure_reason and "not JSON" in item.failure_reason
    assert item.raw_reply.startswith("Sorry, I would rather just chat freely"), "the last reply is kept"
    assert item.calls == 3 and fake_llm.hits == 3
    retries = judge_requests(fake_llm)
    assert "could not be used (not JSON" in retries[1]["messages"][0]["content"], "the retry says what was wrong"
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.FAILED
    # One malformed reply, then a good one: retried within the same item, which then succeeds.
    fake_llm.push_faults("bad_content")
    run2 = launch(http_judge(fake_llm, "judge-two"), campaign, enqueue_tasks=False)
    item2 = run2.items.get()
    assert services.run_item_attempt(item2.pk) == services.ItemOutcome.DONE
    item2.refresh_from_db()
    assert item2.calls == 2 and item2.scores.count() == len(rubric_axes_judged())


def test_a_rate_limit_then_success_and_a_timeout_that_fails_with_its_reason(fake_llm, settings):
    campaign = campaign_of(1)
    fake_llm.push_faults("429")
    run = launch(http_judge(fake_llm), campaign, enqueue_tasks=False)
    assert services.run_item_attempt(run.items.get().pk) == services.ItemOutcome.DONE
    assert fake_llm.hits == 2, "one retry in the one retry layer"
    item = run.items.get()
    assert item.calls == 1 and item.scores.count() == len(rubric_axes_judged())
    settings.LLM_REQUEST_TIMEOUT = 0.5
    settings.LLM_MAX_ATTEMPTS = 2
    fake_llm.push_faults("hang", "hang")
    run2 = launch(http_judge(fake_llm, "judge-slow"), campaign, enqueue_tasks=False)
    item2 = run2.items.get()
    assert services.run_item_attempt(item2.pk) == services.ItemOutcome.FAILED
    item2.refresh_from_db()
    assert item2.status == "failed" and "gave up after 2 attempts" in item2.failure_reason
    assert "Timeout" in item2.failure_reason and not item2.scores.exists()


def test_cancel_stops_queued_items_at_once_and_retry_reruns_only_the_failed(fake_llm):
    fake_llm.latency = 0.2
    campaign = campaign_of(3)
    with worker_thread(concurrency=1):
        run = launch(http_judge(fake_llm), campaign, samples=2, max_concurrent_calls=1)
        wait_for(lambda: run.items.filter(status="running").exists(), message="a running item")
        stopped = services.cancel_run(run, None)
        queued_after = run.items.filter(status="queued").count()
        wait_for(finished(run), message="the cancelled run to settle")
    run.refresh_from_db()
    statuses = list(run.items.values_list("status", flat=True))
    assert stopped >= 1 and queued_after == 0 and statuses.count("cancelled") == stopped
    assert run.status == JudgeRun.Status.CANCELLED
    assert all(i.scores.exists() == (i.status == "done") for i in run.items.all())
    # Retry: the first item's call fails on every attempt, the second succeeds.
    fake_llm.latency = 0
    fake_llm.push_faults(*["503"] * 4)
    with worker_thread(concurrency=1):
        run2 = launch(http_judge(fake_llm, "judge-retry"), campaign_of(2), max_concurrent_calls=1)
        wait_for(finished(run2), message="first pass")
        assert sorted(run2.items.values_list("status", flat=True)) == ["done", "failed"]
        done = run2.items.get(status="done")
        done_scores = list(done.scores.values_list("id", flat=True))
        assert "503" in run2.items.get(status="failed").failure_reason
        assert services.retry_failed_judge_items(run2, None) == 1
        wait_for(finished(run2), message="retry")
    assert set(run2.items.values_list("status", flat=True)) == {"done"}
    assert list(done.scores.values_list("id", flat=True)) == done_scores, "done items are left alone"
    assert JudgeRun.objects.get(pk=run2.pk).status == JudgeRun.Status.DONE


def test_the_per_run_limit_on_calls_in_flight_is_never_exceeded_and_is_used(fake_llm):
    fake_llm.latency = 0.1
    with worker_thread(concurrency=6):
        run = launch(http_judge(fake_llm), campaign_of(4), samples=2, max_concurrent_calls=2)
        wait_for(finished(run), timeout=120, message="judge run")
    assert fake_llm.max_in_flight == 2
    assert set(run.items.values_list("status", flat=True)) == {"done"}


def test_a_killed_worker_leads_to_its_items_being_judged_again_without_duplicate_scores(fake_llm, settings):
    fake_llm.latency = 1.0
    settings.GENERATION_LEASE_SECONDS = 3  # the reaper's view here, as the workers' below
    env = {"GENERATION_LEASE_SECONDS": "3", "LLM_BACKOFF_BASE": "0.01", "FAKE_JUDGE_API_KEY": FAKE_KEY}
    run = launch(http_judge(fake_llm), campaign_of(3), samples=2, max_concurrent_calls=6)
    with worker_process(concurrency=4, **env) as proc:
        wait_for(lambda: run.items.filter(status="running").count() >= 2, timeout=60,
                 message="the worker to be mid-run")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    lost = set(run.items.filter(status="running").values_list("id", flat=True))
    assert lost and not JudgeScore.objects.filter(item_id__in=lost).exists(), "nothing half-written"
    wait_for(lambda: set(services.orphaned_item_ids()) == lost, timeout=15, message="leases to lapse")
    fake_llm.latency = 0.05
    with worker_process(concurrency=4, **env):
        assert set(services.requeue_orphaned_judge_items()) == lost
        # Items the dead worker had prefetched but not started lost their messages with it; the beat
        # schedule's reaper (called here as beat would) re-sends them once the run has gone quiet.
        wait_for(lambda: services.requeue_orphaned_judge_items() is not None and finished(run)(), timeout=120,
                 interval=1, message="the re-run items")
    assert set(run.items.values_list("status", flat=True)) == {"done"}
    for item in JudgeItem.objects.filter(pk__in=lost):
        assert item.attempts == 2 and item.scores.count() == len(rubric_axes_judged())
    assert JudgeScore.objects.filter(item__run=run).count() == 6 * len(rubric_axes_judged())
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.DONE


def test_a_redelivered_task_never_duplicates_scores(fake_llm):
    from judging.tasks import judge_item

    with worker_thread(concurrency=2):
        run = launch(http_judge(fake_llm), campaign_of(1))
        wait_for(finished(run), message="run")
        item = run.items.get()
        judge_item.delay(item.pk)
        assert judge_item.apply(args=[item.pk]).get() == services.ItemOutcome.SKIPPED
        wait_for(lambda: not services.orphaned_item_ids(), message="no stray attempt")
    item.refresh_from_db()
    assert item.attempts == 1 and item.scores.count() == len(rubric_axes_judged()) and fake_llm.hits == 1


def test_the_reaper_gives_up_on_an_item_that_keeps_losing_its_worker(fake_llm, settings):
    from unittest import mock

    settings.GENERATION_MAX_ATTEMPTS = 2
    run = launch(http_judge(fake_llm), campaign_of(2), enqueue_tasks=False)
    first, second = run.items.order_by("pk")
    JudgeItem.objects.filter(pk=first.pk).update(status="running", attempts=1)
    JudgeItem.objects.filter(pk=second.pk).update(status="running", attempts=2)
    with mock.patch.object(services, "enqueue") as enqueue:
        assert services.requeue_orphaned_judge_items() == [first.pk]
    enqueue.assert_called_once_with([first.pk])
    second.refresh_from_db()
    assert second.status == "failed" and "lost on each of 2 attempts" in second.failure_reason


def test_an_attempt_makes_three_queries_whatever_the_conversations_length(fake_llm, django_assert_num_queries):
    """Claim and read (item, run and messages in one statement), finish (state and scores in one) and
    the "anything left?" check: with many calls in flight each round trip costs throughput."""
    from tests.factories import make_campaign

    from .helpers import DIALOGUE, judged_conversation

    judge = http_judge(fake_llm)
    for dialogue in (DIALOGUE[:2], DIALOGUE * 5):
        campaign = make_campaign(conversations=[judged_conversation(dialogue) for _ in range(3)], status="closed")
        run = launch(judge, campaign, enqueue_tasks=False)
        first, second, _ = run.items.order_by("pk")
        # The run's first item also moves the run to running (and the rubric is read once per worker).
        assert services.run_item_attempt(first.pk) == services.ItemOutcome.DONE
        with django_assert_num_queries(3):
            assert services.run_item_attempt(second.pk) == services.ItemOutcome.DONE
        assert second.scores.count() == len(rubric_axes_judged())


def test_a_stale_score_row_of_an_earlier_attempt_is_overwritten_not_duplicated(fake_llm):
    run = launch(http_judge(fake_llm), campaign_of(1), enqueue_tasks=False)
    item = run.items.get()
    axis = run.rubric.axes.get(key=rubric_axes_judged()[0])
    JudgeScore.objects.create(item=item, axis=axis, value=99, rationale="left by a lost attempt")
    JudgeItem.objects.filter(pk=item.pk).update(status="running", attempts=1)  # its lease lapsed
    assert services.run_item_attempt(item.pk) == services.ItemOutcome.DONE
    item.refresh_from_db()
    assert item.attempts == 2 and item.scores.count() == len(rubric_axes_judged())
    assert item.scores.get(axis=axis).value != 99 and item.scores.get(axis=axis).rationale != "left by a lost attempt"


def test_a_queued_item_of_a_run_being_cancelled_stops_without_a_call(fake_llm):
    from django.utils import timezone

    run = launch(http_judge(fake_llm), campaign_of(1), enqueue_tasks=False)
    JudgeRun.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now())
    item = run.items.get()
    assert services.run_item_attempt(item.pk) == services.ItemOutcome.SKIPPED
    item.refresh_from_db()
    assert item.status == "cancelled" and item.attempts == 0 and fake_llm.hits == 0
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.CANCELLED


def test_a_large_run_is_handed_to_a_worker_to_enqueue_so_launching_returns_at_once(fake_llm, monkeypatch):
    from core.redis_client import get_redis
    from results.models import JudgeAgreement

    monkeypatch.setattr(services, "ENQUEUE_IN_CALLER_MAX", 3)
    run = launch(http_judge(fake_llm), campaign_of(2), samples=2)  # 4 items > 3
    assert get_redis().llen("celery") == 1, "one dispatch message (on Celery's default queue), not one per item"
    with worker_thread(concurrency=4):
        wait_for(finished(run), message="the dispatched run")
        # The finished run schedules the campaign's recomputation (debounced): let it land while the
        # worker lives, so it never writes during the test database's teardown.
        wait_for(lambda: JudgeAgreement.objects.filter(judge_run=run).exists(), timeout=90,
                 message="the results recomputation the finished run asked for")
    assert set(run.items.values_list("status", flat=True)) == {"done"} and fake_llm.hits == 4
    assert services.dispatch_judge_run(run.pk) == 0, "nothing queued is left to send"
