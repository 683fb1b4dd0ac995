"""Running a stigma battery: one Celery task per (vignette variant x question x sample) on a real worker
and the real Redis, LiteLLM's real HTTP path to the loopback server, results in the real PostgreSQL."""
import pytest

from generation.models import ModelConfig
from probes import services
from probes.models import ProbeItem, ProbeRun
from probes.runner import run_item
from tests.worker_support import wait_for, worker_thread

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def launch(battery, model, enqueue_tasks=True, **extra):
    return services.launch_run(None, services.RunRequest(battery=battery, model=model, **extra),
                               enqueue_tasks=enqueue_tasks)


def finished(run):
    """Every item finished and the run's status derived from them (the last item's task does that last)."""
    return lambda: (not ProbeItem.objects.filter(run=run, status__in=["queued", "running"]).exists()
                    and ProbeRun.objects.get(pk=run.pk).finished_at is not None)


def scripted(messages, model):
    """A model that is 'likely' to expect violence from the schizophrenia vignette, willing otherwise, and
    that answers the control vignette's work question with a sentence naming no option."""
    prompt = messages[0]["content"]
    if "work closely" in prompt:
        return "Probably willing." if "voices" in prompt else "I would need to know the person first."
    return "Somewhat likely. The voices worry me." if "voices" in prompt else "very unlikely"


def test_a_run_on_a_real_worker_over_http(small_battery, http_model, fake_llm, fast_retries):
    fake_llm.responder = scripted
    with worker_thread():
        run = launch(small_battery, http_model, samples=2, seed=7)
        wait_for(finished(run), message="run to finish")
    run.refresh_from_db()
    assert run.status == ProbeRun.Status.DONE and run.finished_at is not None
    items = {(i.vignette_key, i.question_key, i.sample_index): i for i in run.items.all()}
    assert len(items) == 2 * 1 * 2 * 2 and fake_llm.hits == 8
    violent = items[("scz", "violent_others", 0)]
    assert (violent.answer, violent.stigmatizing, violent.parse_error) == ("somewhat likely", True, "")
    assert violent.raw_reply == "Somewhat likely. The voices worry me."
    control = items[("control", "violent_others", 1)]
    assert (control.answer, control.stigmatizing) == ("very unlikely", False)
    assert (items[("scz", "work_closely", 0)].answer, items[("scz", "work_closely", 0)].stigmatizing) == (
        "probably willing", False)
    # A reply that picks no option is recorded with its reason, never guessed.
    refused = items[("control", "work_closely", 0)]
    assert refused.status == "done" and refused.answer == "" and refused.stigmatizing is None
    assert "names none of the options" in refused.parse_error and refused.raw_reply.startswith("I would need")
    # Each item is seeded from what it is, and the seed reached the provider with the prompt.
    sent = {r["body"]["seed"]: r["messages"][0]["content"] for r in fake_llm.requests}
    assert {i.seed for i in items.values()} == set(sent) and len(sent) == 8
    assert all(sent[i.seed] == i.prompt for i in items.values())
    assert all(r["temperature"] == 0.7 for r in fake_llm.requests)
    assert "Keisha is a 34-year-old Black woman with a college degree" in violent.prompt
    assert run.model_snapshot["api_key_env"] == "FAKE_PROVIDER_API_KEY" and not run.is_simulated


def test_provider_faults_go_through_the_retry_layer_and_retry_failed_reruns(small_battery, http_model, fake_llm,
                                                                            fast_retries):
    fake_llm.responder = scripted
    with worker_thread(concurrency=1):
        # 429 then 500: retried, answered on the third call.
        fake_llm.push_faults("429", "500")
        run = launch(small_battery, http_model, max_concurrent_calls=1)
        wait_for(finished(run), message="run to finish")
        first = run.items.order_by("id").first()
        assert first.status == "done" and first.calls == 3 and first.answer == "very unlikely"
        assert fake_llm.hits == 3 + 3
        # A call that times out on every attempt: the item fails with the reason, the others go on.
        fake_llm.reset()
        fake_llm.push_faults("hang", "hang", "hang")
        run = launch(small_battery, http_model, max_concurrent_calls=1, seed=1)
        wait_for(finished(run), timeout=60, message="run to finish")
        run.refresh_from_db()
        items = list(run.items.order_by("id"))
        assert items[0].status == "failed" and "gave up after 3 attempts" in items[0].failure_reason
        assert "Timeout" in items[0].failure_reason and items[0].answer == ""
        assert [i.status for i in items[1:]] == ["done", "done", "done"]
        assert run.status == ProbeRun.Status.FAILED and fake_llm.hits == 3 + 3
        assert services.retry_failed_items(run, None) == 1
        wait_for(finished(run), message="retried item to finish")
    run.refresh_from_db()
    assert run.status == ProbeRun.Status.DONE
    retried = ProbeItem.objects.get(pk=items[0].pk)
    assert retried.status == "done" and retried.attempts == 2 and retried.failure_reason == ""
    assert retried.answer == "very unlikely"


def test_cancel_stops_queued_items(small_battery, http_model, fake_llm, fast_retries):
    fake_llm.latency = 0.4
    with worker_thread(concurrency=1):
        run = launch(small_battery, http_model, samples=3, max_concurrent_calls=1)
        wait_for(lambda: ProbeItem.objects.filter(run=run, status="done").exists(), message="first answer")
        assert services.cancel_run(run, None) > 0
        wait_for(finished(run), message="running items to finish")
    run.refresh_from_db()
    statuses = list(run.items.values_list("status", flat=True))
    assert run.status == ProbeRun.Status.CANCELLED and "cancelled" in statuses and "queued" not in statuses
    assert fake_llm.hits == statuses.count("done")


def test_calls_in_flight_stay_within_the_runs_limit(small_battery, http_model, fake_llm, fast_retries):
    fake_llm.latency = 0.2
    with worker_thread(concurrency=6):
        run = launch(small_battery, http_model, samples=3, max_concurrent_calls=2)
        wait_for(finished(run), message="run to finish")
    assert fake_llm.hits == 12 and fake_llm.max_in_flight == 2


def test_the_simulator_answers_deterministically_and_is_labelled(small_battery):
    model = ModelConfig.objects.create(name="Simulator A", model="simulator/sensemaker-a")
    runs = [launch(small_battery, model, samples=2, seed=3, enqueue_tasks=False) for _ in range(2)]
    for run in runs:
        assert services.run_inline(run, threads=2)
    first, second = ([(i.vignette_key, i.question_key, i.sample_index, i.raw_reply, i.answer, i.stigmatizing)
                      for i in run.items.order_by("vignette_key", "question_key", "sample_index")] for run in runs)
    assert first == second and all(row[3] for row in first)
    run = ProbeRun.objects.get(pk=runs[0].pk)
    assert run.status == "done" and run.is_simulated and run.model_label == "Simulator A [simulated]"


def test_a_task_for_an_item_that_is_not_queued_does_nothing(small_battery, http_model, fake_llm):
    run = launch(small_battery, http_model, enqueue_tasks=False)
    item = run.items.first()
    assert run_item(item.pk) == "answered"
    assert run_item(item.pk) == "skipped"
    assert fake_llm.hits == 1
