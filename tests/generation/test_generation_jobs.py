"""Generation jobs end to end: Celery workers on the real Redis run MedAgent through LiteLLM's real
HTTP path against a loopback OpenAI-compatible server, and write to the real PostgreSQL."""
import logging
import os
import re
import signal

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.roles import Role
from generation import services
from generation.models import Conversation, GenerationJob, Message, ModelConfig
from generation.selectors import job_progress
from tests.factories import make_case, make_user
from tests.worker_support import wait_for, worker_process, worker_thread

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def http_models(server, name="under-test"):
    """Three model configurations pointing LiteLLM's openai/ provider at the loopback server."""
    def config(role):
        return ModelConfig.objects.create(
            name=f"{role}-{name}", model=f"openai/{role}-{name}", api_base=server.base_url,
            api_key_env="FAKE_PROVIDER_API_KEY", temperature=0,
        )
    return config("patient"), config("sensemaker"), config("helper")


def launch(cases, models, **extra):
    patient, sensemaker, helper = models
    return services.launch_job(
        None,
        services.JobRequest(name="test job", cases=cases, patient_model=patient, sensemaker_model=sensemaker,
                            helper_model=helper, traits=extra.pop("traits", ("agreeableness",)),
                            literacies=extra.pop("literacies", ("basic",)), **extra),
    )


@pytest.fixture(autouse=True)
def _fast_retries(settings, monkeypatch):
    settings.LLM_BACKOFF_BASE = 0.01
    settings.LLM_MAX_ATTEMPTS = 4
    settings.LLM_REQUEST_TIMEOUT = 5
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", "sk-test-secret-value-123")


def finished(job):
    return lambda: job_progress(GenerationJob.objects.get(pk=job.pk))["is_finished"]


def test_a_job_runs_on_a_real_worker_over_http(fake_llm):
    cases = [make_case(), make_case()]
    with worker_thread():
        job = launch(cases, http_models(fake_llm), traits=("agreeableness", "neuroticism"))
        wait_for(finished(job), message="job to finish")
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.DONE and job.finished_at is not None
    convs = list(job.conversations.all())
    assert len(convs) == 4 and all(c.status == "done" for c in convs)
    for conv in convs:
        indexes = list(conv.messages.values_list("index", flat=True))
        assert indexes == list(range(len(indexes))) and len(indexes) >= 6
        assert conv.messages.filter(role="sensemaker", stage=6).exists(), "ends at the Exit stage"
        assert conv.llm_calls == conv.trace["usage_by_role"]["patient"]["calls"] + sum(
            conv.trace["usage_by_role"][r]["calls"] for r in ("sensemaker", "helper"))
        assert conv.prompt_tokens > 0 and conv.smog_grade is not None
        assert conv.provenance["models"]["sensemaker"]["api_key_env"] == "FAKE_PROVIDER_API_KEY"
    # The key went to the provider, and nowhere into the database.
    assert any("sk-test-secret-value-123" in (r.get("authorization") or "") for r in fake_llm.requests)
    for row in Conversation.objects.values_list("provenance", "trace"):
        assert "sk-test-secret-value-123" not in str(row)
    assert fake_llm.hits == sum(c.llm_calls for c in convs)
    progress = job_progress(job)
    assert progress["percent"] == 100 and progress["counts"]["done"] == 4


def test_the_key_reaches_the_provider_and_nowhere_else(fake_llm, caplog, client):
    """Not in failure reasons (the provider quotes the key in its 401), job snapshots, provenance,
    traces, messages, audit events, pages or logs: a dump of the whole database does not contain it."""
    import subprocess

    from django.db import connection

    from audit.models import AuditEvent
    from generation.medagent.litellm_setup import import_litellm

    key = "sk-test-secret-value-123"
    fake_llm.push_faults("401")  # the first call is refused, and the provider's message quotes the key
    import_litellm()  # importing LiteLLM resets its logger's level: import first, then turn DEBUG on
    with worker_thread(concurrency=1):
        for name in (None, "LiteLLM", "openai", "httpx", "httpcore", "generation"):
            caplog.set_level(logging.DEBUG, logger=name)  # the chattiest level of every layer on the path
        job = launch([make_case(), make_case()], http_models(fake_llm))
        wait_for(finished(job), message="job")
    assert any(key in (r["authorization"] or "") for r in fake_llm.requests), "the key went to the provider"
    failed = job.conversations.get(status="failed")
    assert "AuthenticationError (HTTP 401)" in failed.failure_reason
    assert "Incorrect API key provided: ***" in failed.failure_reason
    assert job.conversations.filter(status="done").count() == 1
    job.refresh_from_db()
    assert job.settings_snapshot["sensemaker"]["api_key_env"] == "FAKE_PROVIDER_API_KEY"
    assert AuditEvent.objects.filter(action="job.launch", object_id=str(job.pk)).exists()
    captured = {r.name.split(".")[0] for r in caplog.records}
    assert {"celery", "LiteLLM", "openai", "httpx"} <= captured, "the worker threads' DEBUG logs were captured"
    client.force_login(make_user(Role.ADMIN))
    places = {
        "failure reasons": list(Conversation.objects.values_list("failure_reason", flat=True)),
        "provenance and traces": list(Conversation.objects.values_list("provenance", "trace")),
        "job snapshot": job.settings_snapshot,
        "messages": list(Message.objects.values_list("text", "trace")),
        "audit events": list(AuditEvent.objects.values_list("data", flat=True)),
        "logs": caplog.text + "".join(str(r.args) + str(r.exc_info) for r in caplog.records),
        "job page": client.get(reverse("generation:job_detail", args=[job.pk])).content.decode(),
        "conversation page": client.get(reverse("generation:conversation_detail", args=[failed.pk])).content.decode(),
    }
    for where, value in places.items():
        assert key not in str(value), f"the key leaked into {where}"
    settings = connection.settings_dict
    dump = subprocess.run(
        ["pg_dump", "--data-only", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
         "-U", settings["USER"] or "postgres", settings["NAME"]], capture_output=True, check=True).stdout
    assert b"FAKE_PROVIDER_API_KEY" in dump and key.encode() not in dump


def test_provider_faults_are_retried_and_final_failures_explained(fake_llm, client):
    models = http_models(fake_llm)
    fake_llm.push_faults("429", "500", "malformed")
    with worker_thread(concurrency=1):
        job = launch([make_case()], models)
        wait_for(finished(job), message="job with transient faults")
    assert job.conversations.get().status == "done"
    # Now every call fails: after LLM_MAX_ATTEMPTS the conversation fails with its reason.
    fake_llm.push_faults(*["500"] * 50)
    with worker_thread(concurrency=1):
        job2 = launch([make_case()], models)
        wait_for(finished(job2), message="job with permanent faults")
    conv = job2.conversations.get()
    assert conv.status == "failed" and "500" in conv.failure_reason
    assert "gave up after 4 attempts" in conv.failure_reason
    assert not conv.messages.exists(), "nothing malformed or partial is stored"
    job2.refresh_from_db()
    assert job2.status == GenerationJob.Status.FAILED
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("generation:job_detail", args=[job2.pk]))
    assert conv.failure_reason[:60].encode() in page.content
    # The polled fragment carries each conversation's row too: the reason appears without a reload.
    fragment = client.get(reverse("generation:job_progress", args=[job2.pk]), headers={"HX-Request": "true"})
    assert conv.failure_reason[:60].encode() in fragment.content
    assert f'href="{reverse("generation:conversation_detail", args=[conv.pk])}"'.encode() in fragment.content


def test_redelivered_task_never_duplicates(fake_llm):
    from generation.tasks import generate_conversation

    with worker_thread(concurrency=2):
        job = launch([make_case()], http_models(fake_llm))
        wait_for(finished(job), message="job")
        conv = job.conversations.get()
        count, attempts = conv.messages.count(), conv.attempts
        # The broker delivers the same task again (e.g. after a visibility timeout): a no-op.
        generate_conversation.delay(conv.pk)
        generate_conversation.apply(args=[conv.pk])
        wait_for(lambda: not services.orphaned_conversation_ids(), message="no stray attempt")
    conv.refresh_from_db()
    assert conv.messages.count() == count and conv.attempts == attempts
    assert Message.objects.filter(conversation=conv).count() == count


def test_a_task_redelivered_while_its_conversation_runs_is_skipped(fake_llm):
    """The lease path: while one worker thread generates the conversation, a redelivered task (through
    the broker to another thread, or run right here) does nothing: no second attempt, no messages."""
    from generation.tasks import generate_conversation

    fake_llm.latency = 0.05
    with worker_thread(concurrency=2):
        job = launch([make_case()], http_models(fake_llm))
        conv = job.conversations.get()
        wait_for(lambda: Conversation.objects.filter(pk=conv.pk, status="running", llm_calls__gte=2).exists(),
                 message="the conversation to be mid-generation")
        generate_conversation.delay(conv.pk)
        outcome = generate_conversation.apply(args=[conv.pk]).get()
        during = Conversation.objects.get(pk=conv.pk)
        messages_during = during.messages.count()
        wait_for(finished(job), timeout=120, message="job")
    assert outcome == services.AttemptOutcome.SKIPPED
    assert during.status == "running" and during.attempts == 1 and messages_during == 0
    conv.refresh_from_db()
    assert conv.status == "done" and conv.attempts == 1
    indexes = list(conv.messages.values_list("index", flat=True))
    assert indexes == list(range(len(indexes)))
    assert fake_llm.hits == conv.llm_calls, "no duplicate attempt called the provider"


def test_calls_tokens_and_cost_rise_while_a_conversation_runs(fake_llm, client):
    """The job page's counters are live: a running conversation's row (and so the job's totals)
    grows with every LLM call, not only when the conversation is written at the end."""
    fake_llm.latency = 0.1
    client.force_login(make_user(Role.ADMIN))
    seen = []

    def running_with_calls():
        row = job.conversations.filter(status="running", llm_calls__gte=3).values(
            "llm_calls", "prompt_tokens", "completion_tokens").first()
        if row:
            seen.append(row)
        return len(seen) >= 2 and seen[-1]["llm_calls"] > seen[0]["llm_calls"]

    with worker_thread(concurrency=1):
        job = launch([make_case()], http_models(fake_llm))
        wait_for(running_with_calls, timeout=60, interval=0.2, message="counters rising while running")
        conv = job.conversations.get()
        progress = job_progress(GenerationJob.objects.get(pk=job.pk))
        fragment = client.get(reverse("generation:job_progress", args=[job.pk]), headers={"HX-Request": "true"})
        still_running = Conversation.objects.get(pk=conv.pk).status == "running"
        wait_for(finished(job), timeout=120, message="job to finish")
    assert still_running, "the conversation was still running when the counters were read"
    assert seen[0]["prompt_tokens"] > 0 and seen[0]["completion_tokens"] > 0
    assert progress["llm_calls"] >= seen[-1]["llm_calls"] and progress["counts"]["running"] == 1
    shown = re.search(rb"(\d+) LLM calls", fragment.content)
    assert shown and int(shown.group(1)) >= progress["llm_calls"] > 0
    conv.refresh_from_db()
    assert conv.status == "done" and conv.llm_calls > seen[-1]["llm_calls"]
    assert conv.llm_calls == fake_llm.hits, "the final write agrees with the calls the provider saw"


def test_cancel_stops_queued_work_and_lets_running_finish(fake_llm):
    fake_llm.latency = 0.02
    with worker_thread(concurrency=1):
        job = launch([make_case() for _ in range(3)], http_models(fake_llm),
                     traits=("agreeableness", "openness"), literacies=("basic", "advanced"))
        wait_for(lambda: job.conversations.filter(status="running").exists(), message="a running conversation")
        services.cancel_job(job, None)
        queued_after_cancel = job.conversations.filter(status="queued").count()
        wait_for(finished(job), message="cancelled job to settle")
    job.refresh_from_db()
    statuses = list(job.conversations.values_list("status", flat=True))
    assert queued_after_cancel == 0
    assert statuses.count("done") >= 1 and statuses.count("cancelled") >= 1
    assert job.status == GenerationJob.Status.CANCELLED


def test_retry_reruns_only_the_failed(fake_llm):
    models = http_models(fake_llm)
    fake_llm.push_faults(*["503"] * 4)  # the first conversation's first call fails every attempt
    with worker_thread(concurrency=1):
        job = launch([make_case(), make_case()], models)
        wait_for(finished(job), message="first run")
        statuses = dict(job.conversations.values_list("id", "status"))
        assert sorted(statuses.values()) == ["done", "failed"]
        done_id = next(i for i, s in statuses.items() if s == "done")
        done_messages = list(Message.objects.filter(conversation_id=done_id).values_list("id", flat=True))
        assert services.retry_failed_conversations(job, None) == 1
        wait_for(finished(job), message="retry")
    assert set(job.conversations.values_list("status", flat=True)) == {"done"}
    assert list(Message.objects.filter(conversation_id=done_id).values_list("id", flat=True)) == done_messages


def test_per_job_limit_on_calls_in_flight(fake_llm):
    fake_llm.latency = 0.05
    with worker_thread(concurrency=6):
        job = launch([make_case() for _ in range(3)], http_models(fake_llm),
                     traits=("agreeableness", "openness"), max_concurrent_calls=2)
        wait_for(finished(job), timeout=120, message="job")
    # Exactly 2: never more, and the limit is really used (a serial run would also stay "<= 2").
    assert fake_llm.max_in_flight == 2
    assert set(job.conversations.values_list("status", flat=True)) == {"done"}


def test_a_killed_worker_leads_to_the_conversation_being_redone(fake_llm):
    fake_llm.latency = 0.05
    env = {"GENERATION_LEASE_SECONDS": "3", "LLM_BACKOFF_BASE": "0.01",
           "FAKE_PROVIDER_API_KEY": "sk-test-secret-value-123"}
    job = launch([make_case()], http_models(fake_llm))
    conv = job.conversations.get()
    with worker_process(concurrency=2, **env) as proc:
        wait_for(lambda: fake_llm.hits >= 8, timeout=60, message="the worker to be mid-conversation")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    conv.refresh_from_db()
    assert conv.status == "running" and not conv.messages.exists(), "never half-written"
    hits_before = fake_llm.hits
    # Once the dead worker's lease lapses, the reaper hands the conversation back to the queue.
    wait_for(lambda: services.orphaned_conversation_ids() == [conv.pk], timeout=15, message="lease to lapse")
    with worker_process(concurrency=2, **env):
        assert services.requeue_orphaned_conversations() == [conv.pk]
        wait_for(finished(job), timeout=120, message="redone conversation")
    conv.refresh_from_db()
    assert conv.status == "done" and conv.attempts == 2
    indexes = list(conv.messages.values_list("index", flat=True))
    assert indexes == list(range(len(indexes)))
    assert fake_llm.hits - hits_before == conv.llm_calls, "the redo started from scratch"


def test_a_chatty_worker_process_writes_its_log_to_a_file_and_never_blocks(fake_llm):
    """worker_process used to hand the worker an unread pipe: once a chatty worker filled the pipe's
    64 KiB buffer, its next log line blocked it. Its output now goes to a log file."""
    job = launch([make_case(), make_case()], http_models(fake_llm))
    # PYTHONVERBOSE makes the worker report every module it imports: hundreds of KiB on its output.
    with worker_process(concurrency=2, loglevel="DEBUG", PYTHONVERBOSE="1",
                        FAKE_PROVIDER_API_KEY="sk-test-secret-value-123") as proc:
        wait_for(finished(job), timeout=120, message="job on a DEBUG-logging worker")
        log_size = proc.log_path.stat().st_size
    assert set(job.conversations.values_list("status", flat=True)) == {"done"}
    assert log_size > 64 * 1024, "the worker wrote more than a pipe buffer holds"
    assert not proc.log_path.exists(), "a passing test's log is cleaned up"


def test_generate_command_waits_and_fails_loudly(fake_llm, capsys):
    models = http_models(fake_llm, name="cmd")
    case = make_case()
    call_command("generate", "--cases", case.external_id, "--sensemaker", models[1].name, "--patient", models[0].name,
                 "--helper", models[2].name, "--traits", "openness", "--literacies", "basic", "--inline")
    out = capsys.readouterr().out
    assert "[100%]" in out and "done 1" in out
    fake_llm.push_faults(*["500"] * 50)
    with pytest.raises(SystemExit) as exc:
        call_command("generate", "--cases", case.external_id, "--sensemaker", models[1].name, "--patient",
                     models[0].name, "--helper", models[2].name, "--traits", "openness", "--literacies", "basic",
                     "--inline")
    assert exc.value.code == 1
    assert "failed" in capsys.readouterr().err


def test_generate_wait_follows_a_real_worker_and_exits_1_when_a_conversation_fails(fake_llm, capsys):
    """The Celery path of `manage.py generate --wait`: tasks go to a real worker through Redis."""
    models = http_models(fake_llm, name="wait")
    cases = [make_case(), make_case()]
    args = ["generate", "--cases", ",".join(c.external_id for c in cases), "--sensemaker", models[1].name,
            "--patient", models[0].name, "--helper", models[2].name, "--traits", "openness",
            "--literacies", "basic", "--wait", "--poll", "0.2"]
    fake_llm.latency = 0.01
    with worker_thread(concurrency=1):
        call_command(*args)  # all done: returns normally (exit status 0)
        ok = capsys.readouterr()
        fake_llm.push_faults(*["500"] * 4)  # the first conversation's first call fails every attempt
        with pytest.raises(SystemExit) as exc:
            call_command(*args)
        failing = capsys.readouterr()
    lines = [line for line in ok.out.splitlines() if line.startswith("[")]
    assert len(lines) >= 2, ok.out  # progress was printed while the worker ran, not just at the end
    percents = [int(re.match(r"\[\s*(\d+)%\]", line).group(1)) for line in lines]
    assert percents == sorted(percents) and percents[0] < 100 and percents[-1] == 100
    assert "done 2 failed 0" in lines[-1] and "finished: Done." in ok.out and " failed: " not in ok.err
    assert exc.value.code == 1
    last = [line for line in failing.out.splitlines() if line.startswith("[")][-1]
    assert "[100%]" in last and "done 1 failed 1" in last and "finished: Finished with failures." in failing.out
    job = GenerationJob.objects.order_by("-pk").first()
    failed = job.conversations.get(status="failed")
    assert f"conversation {failed.pk} failed: " in failing.err and "gave up after 4 attempts" in failing.err


def test_a_conversation_over_its_time_limit_fails_with_the_reason(fake_llm, settings):
    """The threads pool ignores Celery's time limits; the conversation's own deadline stops it."""
    settings.GENERATION_CONVERSATION_SECONDS = 0
    job = launch([make_case()], http_models(fake_llm))
    conv = job.conversations.get()
    assert services.run_conversation_attempt(conv.pk) == services.AttemptOutcome.FAILED
    conv.refresh_from_db()
    assert conv.status == "failed" and "longer than its 0 s limit" in conv.failure_reason
    assert not conv.messages.exists()
    assert GenerationJob.objects.get(pk=job.pk).status == GenerationJob.Status.FAILED


def test_an_unexpected_error_fails_the_conversation_instead_of_leaving_it_running(fake_llm, monkeypatch):
    job = launch([make_case()], http_models(fake_llm))
    conv = job.conversations.get()

    def broken(*args, **kwargs):
        raise KeyError("sensemaker")

    monkeypatch.setattr("generation.medagent.run_conversation", broken)
    assert services.run_conversation_attempt(conv.pk) == services.AttemptOutcome.FAILED
    conv.refresh_from_db()
    assert conv.status == "failed" and conv.failure_reason == "Internal error: KeyError: 'sensemaker'"
    assert services.requeue_orphaned_conversations() == []  # nothing left "running" for the reaper to loop on


def test_the_reaper_gives_up_on_a_conversation_that_keeps_losing_its_worker(fake_llm, settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    job = launch([make_case(), make_case()], http_models(fake_llm))
    first, second = job.conversations.order_by("pk")
    # Both "running" with no lease, as after a SIGKILL: one on its first attempt, one on its second.
    Conversation.objects.filter(pk=first.pk).update(status="running", attempts=1)
    Conversation.objects.filter(pk=second.pk).update(status="running", attempts=2)
    from unittest import mock

    with mock.patch.object(services, "enqueue_conversations") as enqueue:
        assert services.requeue_orphaned_conversations() == [first.pk]
    enqueue.assert_called_once_with([first.pk])
    second.refresh_from_db()
    assert second.status == "failed" and "lost on each of 2 attempts" in second.failure_reason


def test_retry_also_resends_conversations_still_queued(fake_llm):
    """A broker that lost its messages (Redis restarted without persistence) leaves conversations
    queued for ever; Retry sends them again, and the duplicate-safe task makes that harmless."""
    from unittest import mock

    job = launch([make_case(), make_case()], http_models(fake_llm))
    failed, waiting = job.conversations.order_by("pk")
    Conversation.objects.filter(pk=failed.pk).update(status="failed", failure_reason="boom")
    with mock.patch.object(services, "enqueue_conversations") as enqueue, \
            mock.patch("django.db.transaction.on_commit", side_effect=lambda fn, **kw: fn()):
        assert services.retry_failed_conversations(job, None) == 1
    enqueue.assert_called_once_with([failed.pk, waiting.pk])
