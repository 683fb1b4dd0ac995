"""An LLM judge answers interjection probes' verification questions beside the clinicians: any model
configuration through generation's client (LiteLLM), a strict YES/NO parse (retried with the problem
named, then failed with the reason, never guessed), provenance kept; the report shows the fraction
appropriate from clinicians and from the judge and their agreement (percent, Cohen's kappa, Gwet's AC1,
seeded bootstrap CIs, items both answered)."""
import math

import pytest
from django.urls import resolve, reverse

from generation.medagent.parsers import ParseError
from generation.models import ModelConfig
from probes import judge, services
from probes.models import ProbeJudgeAnswer, ProbeRun
from rating.campaigns import open_campaign
from results.probe_report import battery_report, binary_agreement
from tests.worker_support import wait_for, worker_thread

from .test_interjection import careful_or_not, small_set
from .test_probe_runs import finished

PROBES = ("si_bridges", "hall_figure")


def test_the_parse_is_strict():
    for reply, value in (("YES", True), ("no", False), (" Yes. ", True), ("NO!", False), ("**no**", False)):
        assert judge.parse_answer(reply) is value
    for reply in ("Yes, it gives two bridges.", "YES NO", "", "maybe", "The answer is no"):
        with pytest.raises(ParseError, match="exactly YES or NO"):
            judge.parse_answer(reply)


def test_binary_agreement_matches_the_hand_computation_and_its_ci_is_seeded():
    # 50 items with one clinician each: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    units = [(1, 0, 0, 0)] * 20 + [(0, 1, 0, 0)] * 5 + [(0, 0, 1, 0)] * 10 + [(0, 0, 0, 1)] * 15 + [(0, 0, 0, 0)] * 3
    ag = binary_agreement(units, n_boot=500, seed=3)
    assert (ag["items"], ag["pairs"]) == (50, 50)  # items nobody paired are not counted
    assert ag["percent"] == pytest.approx(70.0)
    # po 0.7; clinicians say yes 0.5, the judge 0.6: pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4.
    assert ag["kappa"] == pytest.approx(0.4)
    # AC1: mean yes 0.55, pe = 2 * 0.55 * 0.45 = 0.495.
    assert ag["ac1"] == pytest.approx((0.7 - 0.495) / (1 - 0.495))
    for name in ("percent", "kappa", "ac1"):
        assert ag[f"{name}_low"] < ag[name] < ag[f"{name}_high"]
    assert binary_agreement(units, n_boot=500, seed=3) == ag
    assert binary_agreement(units, n_boot=500, seed=4)["kappa_low"] != ag["kappa_low"]
    empty = binary_agreement([], n_boot=100)
    assert empty["items"] == 0 and math.isnan(empty["kappa"])


def judge_script(replies):
    """The model under test answers as careful_or_not; the judge (a probe-judge prompt) gives `replies` in
    turn, per statement keyword, then YES."""

    def respond(messages, model):
        text = messages[0]["content"]
        if not judge.is_judge_prompt(text):
            return careful_or_not(messages, model)
        key = "bridges" if "bridges" in text else "other"
        queue = replies.get(key, [])
        return queue.pop(0) if queue else "YES"

    return respond


@pytest.fixture
def http_judge(fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_PROBE_JUDGE_API_KEY", "sk-judge-secret-999")
    return ModelConfig.objects.create(name="Judge over HTTP", model="openai/probe-judge", api_base=fake_llm.base_url,
                                      api_key_env="FAKE_PROBE_JUDGE_API_KEY", temperature=0.0)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_a_real_worker_malformed_replies_are_retried_then_failed_never_guessed(http_model, http_judge, fake_llm,
                                                                                  fast_retries, settings):
    settings.JUDGE_PARSE_ATTEMPTS = 3
    # bridges: a sentence, then YES. The other: three sentences, so its answer fails.
    fake_llm.responder = judge_script({"bridges": ["It does list bridges, so yes."],
                                       "other": ["Probably.", "I would say yes", "Hard to tell"]})
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    with worker_thread(concurrency=2):
        run = services.launch_run(None, services.RunRequest(battery=battery, model=http_model,
                                                            judge_model=http_judge, seed=2))
        wait_for(finished(run), message="run")
        wait_for(lambda: not run.judge_answers.filter(status__in=["queued", "running"]).exists()
                 and run.judge_answers.count() == 2, message="judge answers")
        answers = {a.item.vignette_key: a for a in run.judge_answers.select_related("item")}
        bridges, other = answers["si_bridges"], answers["hall_figure"]
        assert (bridges.status, bridges.answer_yes, bridges.raw_reply, bridges.calls) == ("done", True, "YES", 2)
        assert bridges.judge_snapshot["model"] == "openai/probe-judge" and bridges.prompt_version == "probe-judge-v1"
        assert "sk-judge-secret-999" not in str(bridges.judge_snapshot) and not bridges.is_simulated
        assert other.status == "failed" and other.answer_yes is None and other.raw_reply == "Hard to tell"
        assert "no usable reply after 3 attempts" in other.failure_reason
        assert "exactly YES or NO" in other.failure_reason
        # What the judge saw: the exchange as raters see it and the question, never the correct answer.
        prompts = [r for r in fake_llm.requests if judge.is_judge_prompt(r["messages"][0]["content"])]
        assert len(prompts) == 5 and all(r["authorization"] == "Bearer sk-judge-secret-999" for r in prompts)
        first = prompts[0]["messages"][0]["content"]
        assert "Question about the assistant's last message: Does the reply" in first
        assert "correct" not in first.lower() and "Model under test" not in first and "under-test" not in first
        retries = [r["messages"][0]["content"] for r in prompts if "could not be used" in r["messages"][0]["content"]]
        assert len(retries) == 3 and all("exactly YES or NO" in text for text in retries), "retries name the problem"
        # Retry failed re-asks the judge (the judge now answers NO), not the model under test.
        hits = fake_llm.hits
        fake_llm.responder = judge_script({"other": ["NO"]})
        assert services.retry_failed_items(run, None) == 1
        wait_for(lambda: ProbeJudgeAnswer.objects.get(pk=other.pk).status == "done", message="re-judged")
    other.refresh_from_db()
    assert other.answer_yes is False and other.attempts == 2 and fake_llm.hits == hits + 1
    assert ProbeRun.objects.get(pk=run.pk).status == "done"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_rate_limited_judge_is_retried_by_the_transport_layer(http_model, http_judge, fake_llm, fast_retries):
    fake_llm.responder = judge_script({})
    battery = services.import_battery(None, small_set(("si_bridges",)), "s.jsonl").battery
    run = services.launch_run(None, services.RunRequest(battery=battery, model=http_model), enqueue_tasks=False)
    services.run_inline(run)
    fake_llm.push_faults("429", "429")
    with worker_thread(concurrency=1):
        assert services.add_judge(run, http_judge, None) == 1
        wait_for(lambda: run.judge_answers.filter(status="done").exists(), message="judge answer")
    answer = run.judge_answers.get()
    assert answer.answer_yes is True and answer.calls == 1
    assert [r["fault"] for r in fake_llm.requests[-3:]] == ["429", "429", None]
    assert services.add_judge(run, http_judge, None) == 0, "one answer per item and judge"


def rate_all(client, campaign, rater, verdict):
    """Submit every assignment of `rater`, answering the verification question with verdict(page)."""
    client.force_login(rater)
    while True:
        response = client.post(reverse("rating:next", args=[campaign.pk]))
        match = resolve(response.get("Location", "/").split("?")[0])
        if match.url_name != "rate":
            return
        page = client.get(response["Location"]).content.decode()
        assignment = match.kwargs["pk"]
        data = {"value__verification": "1" if verdict(page) else "0", "value__safe": "1"}
        if client.post(reverse("rating:submit", args=[assignment]), data).status_code != 302:
            return


@pytest.mark.django_db(transaction=True)
def test_offline_the_simulated_judge_and_clinicians_are_reported_with_agreement(world, client):
    battery = services.import_battery(None, small_set(PROBES + ("ocd_washing", "del_dead")), "s.jsonl").battery
    model = ModelConfig.objects.create(name="Sim A", model="simulator/sensemaker-a")
    sim_judge = ModelConfig.objects.create(name="Sim judge", model="simulator/judge")
    run = services.launch_run(None, services.RunRequest(battery=battery, model=model, samples=3, seed=8,
                                                        judge_model=sim_judge), enqueue_tasks=False)
    outcome = services.run_inline(run, threads=2)
    assert outcome["answered"] == 12 and outcome["judge_answered"] == 12
    answers = list(run.judge_answers.order_by("item_id"))
    assert all(a.is_simulated and a.judge_label == "Sim judge [simulated]" for a in answers)
    assert all(a.raw_reply in ("YES", "NO") and a.calls >= 1 for a in answers)
    # Deterministic: another judge pass of the same items gives the same answers.
    ProbeJudgeAnswer.objects.filter(run=run).delete()
    assert services.add_judge(run, sim_judge, None, enqueue_tasks=False) == 12
    services.run_judge_answers_inline(run)
    assert [a.answer_yes for a in run.judge_answers.order_by("item_id")] == [a.answer_yes for a in answers]

    campaign = services.create_verification_campaign(world.admin, run, name="Verification", raters=[world.rater],
                                                     overlap_k=1)
    open_campaign(world.admin, campaign)
    # The clinician says "yes" exactly when the reply is a complying one.
    rate_all(client, campaign, world.rater, lambda page: "Sure, here is" in page or "Of course!" in page)
    report = battery_report(battery, n_boot=300)
    clinicians = {row[2]: row for row in report["tables"]["by_symptom"]["rows"]}
    judged = {row[3]: row for row in report["tables"]["by_symptom_judge"]["rows"]}
    assert sum(row[3] for row in clinicians.values()) == 12 and sum(row[4] for row in judged.values()) == 12
    assert judged["Suicidal ideation"][2] == "Sim judge [simulated]"
    (agreement,) = report["tables"]["judge_agreement"]["rows"]
    assert agreement[0] == "Sim A [simulated]" and agreement[3] == 12 and agreement[4] == 12
    # Recompute agreement by hand from the stored answers and verdicts.
    from rating.models import AxisScore

    human = dict(AxisScore.objects.filter(axis__key="verification", rating__assignment__campaign=campaign)
                 .values_list("rating__assignment__item__conversation__probe_item__id", "value"))
    same = sum((human[a.item_id] >= 0.5) == a.answer_yes for a in run.judge_answers.all())
    assert agreement[5] == pytest.approx(round(100 * same / 12, 2))
    assert report["judges"] == [{"judge_model": sim_judge.pk, "prompt_version": "probe-judge-v1",
                                 "label": "Sim judge [simulated]"}]
    # The same on the page and over the API.
    client.force_login(world.researcher)
    page = client.get(reverse("results:probe_report", args=[battery.pk])).content.decode()
    assert "Clinician-vs-judge agreement" in page and "Gwet&#x27;s AC1" in page and "Sim judge [simulated]" in page
    svg = client.get(reverse("results:probe_figure", args=[battery.pk])).content.decode()
    assert "judge Sim judge [simulated]" in svg
    token = world.tokens["researcher"]
    api = client.get(f"/api/v1/probes/batteries/{battery.pk}/report", HTTP_AUTHORIZATION=f"Token {token}")
    assert api.status_code == 200 and api.json()["tables"]["judge_agreement"]["rows"][0][3] == 12
    csv = client.get(reverse("results:probe_table_csv", args=[battery.pk, "judge_agreement"])).content.decode()
    assert "Cohen's kappa" in csv and "Items both answered" in csv


@pytest.mark.django_db(transaction=True)
def test_the_run_page_adds_a_judge_and_refuses_a_stigma_run(world, client):
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    model = ModelConfig.objects.create(name="Sim B", model="simulator/sensemaker-b")
    run = services.launch_run(None, services.RunRequest(battery=battery, model=model), enqueue_tasks=False)
    services.run_inline(run)
    sim_judge = ModelConfig.objects.create(name="Sim judge 2", model="simulator/judge-2")
    client.force_login(world.admin)
    detail = client.get(reverse("probes:run_detail", args=[run.pk])).content.decode()
    assert 'data-testid="judge-form"' in detail
    response = client.post(reverse("probes:run_judge", args=[run.pk]), {"judge_model": sim_judge.pk})
    assert response.status_code == 302 and run.judge_answers.count() == 2
    assert set(run.judge_answers.values_list("status", flat=True)) == {"queued"}
    run.refresh_from_db()
    assert run.judge_model == sim_judge
    services.run_judge_answers_inline(run)
    detail = client.get(reverse("probes:run_detail", args=[run.pk])).content.decode()
    assert 'data-testid="judge-progress"' in detail and "Judge answers: 2 answered" in detail
    shown = [a.answer_yes for a in run.judge_answers.order_by("item_id")]
    assert detail.count('data-testid="judge-answers"') == 2
    assert all(("YES" if yes else "NO") in detail for yes in shown)
    csv = b"".join(client.get(reverse("probes:run_items_csv", args=[run.pk])).streaming_content).decode()
    assert "judge_answers" in csv.splitlines()[0] and "Sim judge 2 [simulated]: " in csv
    bad = client.post(reverse("probes:run_judge", args=[run.pk]), {"judge_model": 99999}, follow=True)
    assert "Choose an active judge model" in bad.content.decode() and run.judge_answers.count() == 2
    stigma_run = services.launch_run(None, services.RunRequest(battery=world.objects["probe_battery"], model=model),
                                     enqueue_tasks=False)
    assert client.post(reverse("probes:run_judge", args=[stigma_run.pk]),
                       {"judge_model": sim_judge.pk}).status_code == 404
    with pytest.raises(services.ProbeError, match="Only interjection"):
        services.launch_run(None, services.RunRequest(battery=world.objects["probe_battery"], model=model,
                                                      judge_model=sim_judge))


@pytest.mark.django_db(transaction=True)
def test_the_verification_campaign_page_can_bring_a_judge(world, client):
    battery = services.import_battery(None, small_set(PROBES), "s.jsonl").battery
    model = ModelConfig.objects.create(name="Sim C", model="simulator/sensemaker-c")
    run = services.launch_run(None, services.RunRequest(battery=battery, model=model), enqueue_tasks=False)
    services.run_inline(run)
    sim_judge = ModelConfig.objects.create(name="Sim judge 3", model="simulator/judge-3")
    client.force_login(world.admin)
    url = reverse("probes:run_campaign", args=[run.pk])
    assert 'data-testid="campaign-judge"' in client.get(url).content.decode()
    form = {"name": "Round one", "description": "", "raters": [world.rater.pk], "overlap_k": 1, "lease_minutes": 30}
    refused = client.post(url, {**form, "judge-judge_model": 99999})
    assert refused.status_code == 200 and not run.judge_answers.exists()
    response = client.post(url, {**form, "judge-judge_model": sim_judge.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert run.judge_answers.count() == 2 and {a.judge_model for a in run.judge_answers.all()} == {sim_judge}
    services.run_judge_answers_inline(run)
    assert set(run.judge_answers.values_list("status", flat=True)) == {"done"}
