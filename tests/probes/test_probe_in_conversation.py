"""Interjection probes inside a MedAgent conversation: the model under test is the sensemaker, the simulated
patient talks to it through the real engine until the chosen stage, the probe statement is the patient's
turn there and the sensemaker's reply is what clinicians (and an optional judge) verify. Offline with the
simulator, and on a real Celery worker with the model under test behind the loopback LLM server."""
import pytest
from django.urls import reverse
from django.utils.html import escape

from generation.models import Conversation, ModelConfig
from probes import services
from probes.models import Placement, ProbeRun
from rating.campaigns import open_campaign
from tests.factories import make_case
from tests.worker_support import wait_for, worker_thread

from .test_interjection import small_set
from .test_probe_runs import finished

PROBES = ("si_bridges", "hall_figure")


def medagent_request(battery, model, **extra):
    defaults = dict(
        placement=Placement.MEDAGENT, stage=3, case=make_case(),
        patient_model=ModelConfig.objects.get_or_create(name="Sim patient", model="simulator/patient")[0],
        helper_model=ModelConfig.objects.get_or_create(name="Sim helper", model="simulator/helper")[0])
    return services.RunRequest(battery=battery, model=model, **{**defaults, **extra})


@pytest.mark.django_db(transaction=True)
def test_offline_the_simulator_converses_up_to_the_stage_and_clinicians_see_the_blinded_conversation(world, client):
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    model = ModelConfig.objects.create(name="Sim sensemaker", model="simulator/sensemaker-a")
    run = services.launch_run(None, medagent_request(battery, model, samples=2, seed=4), enqueue_tasks=False)
    assert (run.placement, run.stage, run.persona.trait) == ("medagent", 3, "neuroticism")
    assert run.conversation_snapshot["patient"]["model"] == "simulator/patient"
    services.run_inline(run, threads=2)
    run.refresh_from_db()
    assert run.status == ProbeRun.Status.DONE
    items = list(run.items.select_related("conversation").order_by("id"))
    assert len(items) == 4 and {i.status for i in items} == {"done"}
    for item in items:
        conv = item.conversation
        messages = list(conv.messages.order_by("index"))
        *before, probe, reply = messages
        assert len(before) >= 2 and before[0].role == "patient" and before[0].text != item.prompt
        assert (probe.role, probe.text) == ("patient", item.prompt) and reply.role == "sensemaker"
        assert item.raw_reply == reply.text and item.stage == probe.stage >= 3
        assert all(m.stage is not None for m in messages) and conv.is_simulated
        assert conv.source_label == "safety-probe" and conv.case == run.case and conv.persona == run.persona
        assert conv.trace["ended"]["reason"] == "interjection" and "LAST message" in conv.trace["rater_note"]
        assert conv.provenance["probe"]["requested_stage"] == 3 and conv.provenance["probe"]["stage"] == item.stage
        assert item.calls == conv.llm_calls > 3 and item.prompt_tokens > 0
    # Deterministic: the same run again gives the same conversations.
    again = services.launch_run(None, medagent_request(battery, model, samples=2, seed=4, case=run.case),
                                enqueue_tasks=False)
    services.run_inline(again, threads=2)
    assert ([list(i.conversation.messages.values_list("text", flat=True)) for i in again.items.order_by("id")]
            == [list(i.conversation.messages.values_list("text", flat=True)) for i in items])
    # Clinicians verify the reply on the rating page: the whole conversation, blinded.
    campaign = services.create_verification_campaign(world.admin, run, name="Verification in context",
                                                     raters=[world.rater], overlap_k=1)
    open_campaign(world.admin, campaign)
    client.force_login(world.rater)
    location = client.post(reverse("rating:next", args=[campaign.pk]))["Location"]
    page = client.get(location).content.decode()
    assert 'data-testid="rater-note"' in page and "LAST message" in page
    assignment_conv = Conversation.objects.get(campaign_items__campaign=campaign,
                                               campaign_items__assignments__pk=int(location.rstrip("/").split("/")[-1]))
    for message in assignment_conv.messages.all():
        assert escape(message.text) in page
    for secret in ("simulator/", "Sim sensemaker", "Sim patient", "neuroticism", run.case.external_id):
        assert secret not in page, secret


def test_the_launch_page_offers_the_placement_and_refuses_a_missing_stage_in_page(world, client, db):
    client.force_login(world.admin)
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    model = world.objects["model_config"]
    case = make_case()
    patient = ModelConfig.objects.create(name="P", model="simulator/patient")
    launch = reverse("probes:run_launch")
    page = client.get(launch).content.decode()
    assert "Inside a MedAgent conversation" in page and "Stage of the conversation" in page
    base = {"battery": battery.pk, "model": model.pk, "samples": 1, "seed": 1, "max_concurrent_calls": 4,
            "placement": "medagent", "trait": "openness", "literacy": "basic", "case": case.pk,
            "patient_model": patient.pk, "helper_model": patient.pk}
    refused = client.post(launch, {**base, "stage": ""})
    assert refused.status_code == 200 and "stage" in refused.context["form"].errors and not ProbeRun.objects.exists()
    exit_stage = client.post(launch, {**base, "stage": "6"})
    assert exit_stage.status_code == 200 and "stage" in exit_stage.context["form"].errors
    stigma = world.objects["probe_battery"]
    wrong = client.post(launch, {**base, "battery": stigma.pk, "stage": "2"})
    assert wrong.status_code == 200 and "Only interjection probes" in wrong.content.decode()
    response = client.post(launch, {**base, "stage": "2"})
    run = ProbeRun.objects.get()
    assert response.status_code == 302 and (run.placement, run.stage, run.case) == ("medagent", 2, case)
    detail = client.get(reverse("probes:run_detail", args=[run.pk])).content.decode()
    assert "the patient&#x27;s turn at stage 2" in detail or "turn at stage 2" in detail


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_a_real_worker_the_sensemaker_under_test_answers_the_probe_over_http(http_model, fake_llm, fast_retries):
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    fake_llm.push_faults("429")  # the first call of the model under test is rate-limited, then retried
    with worker_thread(concurrency=2):
        run = services.launch_run(None, medagent_request(battery, http_model, stage=2))
        wait_for(finished(run), timeout=120, message="run")
    run.refresh_from_db()
    assert run.status == ProbeRun.Status.DONE
    items = list(run.items.order_by("id"))
    assert {i.status for i in items} == {"done"} and all(i.stage >= 2 for i in items)
    # Only the sensemaker (the model under test) went over HTTP; the probe reached it in the candidate prompt.
    assert fake_llm.requests[0]["fault"] == "429" and all(r["model"] == "under-test" for r in fake_llm.requests)
    candidate_prompts = [r["messages"][0]["content"] for r in fake_llm.requests
                         if "sensemaker_candidates" in r["messages"][0]["content"][:60]]
    for item in items:
        assert any(item.prompt in prompt for prompt in candidate_prompts)
        assert item.conversation.messages.last().text == item.raw_reply
    # The items' call counts are every role's successful calls (the 429 was retried inside one of them).
    assert sum(i.calls for i in items) == fake_llm.hits - 1 + sum(
        i.conversation.trace["usage_by_role"]["patient"]["calls"] + i.conversation.trace["usage_by_role"]["helper"][
            "calls"] for i in items)
