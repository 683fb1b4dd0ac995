"""The probe-run API: researchers and admins list and read runs (they name the model under test: raters get
nothing); admins launch them with the launch page's validation (400 JSON naming the field, nothing
created); the item-level dataset as paginated JSON, JSONL and CSV, each checked against the database for
small runs played offline by the simulator models (stigma: answers and scores; interjection: clinicians'
verdicts per rater pseudonym and the simulated judge's answers with their provenance)."""
import csv
import io
import json

import pytest
from django.test import Client

from accounts.roles import Role
from generation.models import ModelConfig
from probes import services
from probes.models import ProbeItem, ProbeJudgeAnswer, ProbeRun
from rating.campaigns import open_campaign
from rating.models import AxisScore
from study_data import probe_export
from tests.factories import make_token, make_user
from tests.probes.conftest import SMALL_BATTERY, fake_llm, fast_retries, http_model  # noqa: F401 - fixtures
from tests.probes.test_interjection import small_set
from tests.probes.test_probe_judge import rate_all

from .conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)
RUNS = "/api/v1/probe-runs"


def api(user):
    return Client(headers={"Authorization": f"Bearer {make_token(user)}"})


def post(client, url, payload):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


def stigma_battery():
    data = "\n".join(json.dumps(r) for r in SMALL_BATTERY)
    return services.import_battery(None, data, "small.jsonl").battery


def simulator(name="Sim A", model="simulator/sensemaker-a"):
    return ModelConfig.objects.create(name=name, model=model)


@pytest.fixture
def stigma_run():
    """The small stigma battery (2 vignettes x 1 variant x 2 questions) x 3 samples, run by the simulator."""
    run = services.launch_run(None, services.RunRequest(battery=stigma_battery(), model=simulator(), samples=3,
                                                        seed=5), enqueue_tasks=False)
    services.run_inline(run, threads=2)
    run.refresh_from_db()
    assert run.status == "done"
    return run


def all_pages(client, url, params):
    page = client.get(url, params)
    assert page.status_code == 200, page.content[:300]
    rows = page.json()["results"]
    while page.json()["next"]:
        page = client.get(page.json()["next"])
        rows += page.json()["results"]
    return rows


def test_runs_are_for_researchers_and_admins_never_raters(stigma_run):
    researcher, admin = make_user(Role.RESEARCHER), make_user(Role.ADMIN)
    rater, other_rater = make_user(Role.RATER), make_user(Role.RATER)
    other = services.launch_run(None, services.RunRequest(battery=stigma_run.battery,
                                                          model=simulator("Sim B", "simulator/sensemaker-b")),
                                enqueue_tasks=False)
    for user in (researcher, admin):
        listed = api(user).get(RUNS).json()["results"]
        assert [r["id"] for r in listed] == [other.pk, stigma_run.pk]  # newest first
        assert listed[1]["model"] == {"id": stigma_run.model_id, "name": "Sim A", "model": "simulator/sensemaker-a"}
        assert listed[1]["battery"]["slug"] == "stigma-small" and listed[1]["battery"]["version"] == 1
    client = api(researcher)
    assert [r["id"] for r in client.get(RUNS, {"status": "done"}).json()["results"]] == [stigma_run.pk]
    assert [r["id"] for r in client.get(RUNS, {"model": "simulator/sensemaker-b"}).json()["results"]] == [other.pk]
    assert [r["id"] for r in client.get(RUNS, {"battery": stigma_run.battery_id, "status": "queued"})
            .json()["results"]] == [other.pk]
    assert client.get(RUNS, {"battery": 999999}).json()["results"] == []
    assert "status" in assert_error(client.get(RUNS, {"status": "finished"}), 400, "invalid")["details"]
    assert "battery" in assert_error(client.get(RUNS, {"battery": "x"}), 400, "invalid")["details"]
    detail = client.get(f"{RUNS}/{stigma_run.pk}").json()
    progress = detail["progress"]
    items = ProbeItem.objects.filter(run=stigma_run)
    assert progress["total"] == 12 == items.count() and progress["counts"]["done"] == 12 and progress["percent"] == 100
    assert progress["llm_calls"] == sum(i.calls for i in items) > 0
    assert progress["prompt_tokens"] == sum(i.prompt_tokens for i in items)
    assert progress["no_valid_option"] == items.filter(answer="").count()
    assert progress["answered"] == items.exclude(answer="").count()
    assert detail["model_snapshot"]["model"] == "simulator/sensemaker-a" and detail["is_simulated"]
    assert {f["item"] for f in detail["failures"]} == set(items.filter(answer="").values_list("id", flat=True))
    for user in (rater, other_rater):
        for url in (RUNS, f"{RUNS}/{stigma_run.pk}", f"{RUNS}/{stigma_run.pk}/items",
                    f"{RUNS}/{stigma_run.pk}/items?format=csv"):
            body = assert_error(api(user).get(url), 403)
            assert "sensemaker" not in json.dumps(body) and "Sim A" not in json.dumps(body)
    for url in (RUNS, f"{RUNS}/{stigma_run.pk}", f"{RUNS}/{stigma_run.pk}/items"):
        assert_error(Client().get(url), 401)
    assert_error(client.get(f"{RUNS}/999999"), 404, "not_found")
    assert_error(client.get(f"{RUNS}/999999/items?format=csv"), 404, "not_found")


def test_launch_uses_the_pages_validation_and_bad_requests_create_nothing(stigma_run):
    admin = api(make_user(Role.ADMIN))
    battery, model = stigma_run.battery, stigma_run.model
    inactive = ModelConfig.objects.create(name="Old", model="simulator/old", is_active=False)
    interjection = services.import_battery(None, small_set(("si_bridges",)), "s.jsonl").battery
    before = (ProbeRun.objects.count(), ProbeItem.objects.count())
    cases = [
        ({}, {"battery", "model"}),
        ({"battery": battery.pk}, {"model"}),
        ({"battery": 999999, "model": model.pk}, {"battery"}),
        ({"battery": battery.pk, "model": inactive.pk}, {"model"}),
        ({"battery": battery.pk, "model": model.pk, "samples": 0}, {"samples"}),
        ({"battery": battery.pk, "model": model.pk, "samples": "many"}, {"samples"}),
        ({"battery": battery.pk, "model": model.pk, "max_concurrent_calls": 1000}, {"max_concurrent_calls"}),
        ({"battery": battery.pk, "model": model.pk, "placement": "inside"}, {"placement"}),
        ({"battery": "1; DROP TABLE", "model": model.pk}, {"battery"}),
        # The form's own rule: a MedAgent placement names its stage, case and participants.
        ({"battery": interjection.pk, "model": model.pk, "placement": "medagent"},
         {"stage", "case", "patient_model", "helper_model"}),
        ({"battery": interjection.pk, "model": model.pk, "placement": "medagent", "stage": 6}, {"stage"}),
        # The service's rules: no judge for a stigma battery (not a field of its own: non_field_errors).
        ({"battery": battery.pk, "model": model.pk, "judge_model": model.pk}, {"non_field_errors"}),
        ({"battery": battery.pk, "model": model.pk, "judge_model": inactive.pk}, {"judge_model"}),
    ]
    for payload, fields in cases:
        body = assert_error(post(admin, RUNS, payload), 400, "invalid")
        assert set(body["details"]) == fields, (payload, body)
        assert all(isinstance(m, str) and m for messages in body["details"].values() for m in messages)
    body = assert_error(admin.post(RUNS, data="{not json", content_type="application/json"), 400)
    assert (ProbeRun.objects.count(), ProbeItem.objects.count()) == before
    # Researchers read but do not launch.
    assert_error(post(api(make_user(Role.RESEARCHER)), RUNS, {"battery": battery.pk, "model": model.pk}), 403)
    assert (ProbeRun.objects.count(), ProbeItem.objects.count()) == before
    # A valid launch: the service's items, queued (no worker here: they stay queued).
    response = post(admin, RUNS, {"battery": battery.pk, "model": model.pk, "samples": 2, "seed": 9,
                                  "name": "Over the API"})
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["name"] == "Over the API" and run["samples"] == 2 and run["seed"] == 9
    assert run["progress"]["total"] == 8 == ProbeItem.objects.filter(run_id=run["id"]).count()
    assert run["progress"]["counts"]["queued"] == 8 and run["placement"] == "standalone"
    launched = ProbeRun.objects.get(pk=run["id"])
    assert launched.created_by.role == Role.ADMIN and launched.model_snapshot == model.provenance()


def test_stigma_items_as_json_jsonl_and_csv_match_the_database(stigma_run):
    client = api(make_user(Role.RESEARCHER))
    url = f"{RUNS}/{stigma_run.pk}/items"
    rows = all_pages(client, url, {"page_size": 5})
    items = {i.pk: i for i in ProbeItem.objects.filter(run=stigma_run)}
    assert [r["item_id"] for r in rows] == sorted(items)
    variant = SMALL_BATTERY[3]
    rules = {q["key"]: q["stigmatizing"] for q in SMALL_BATTERY if q["type"] == "question"}
    for row in rows:
        item = items[row["item_id"]]
        assert row["run_id"] == stigma_run.pk and row["battery_slug"] == "stigma-small"
        assert row["battery_version"] == 1 and row["battery_digest"] == stigma_run.battery.digest
        assert row["protocol"] == "stigma" and row["prompt_version"] == "stigma-prompt-v1"
        assert (row["model_name"], row["model"], row["model_is_simulated"]) == ("Sim A", "simulator/sensemaker-a",
                                                                                  True)
        assert row["placement"] == "standalone" and row["stage"] is None and row["stage_requested"] is None
        assert (row["vignette_key"], row["condition"], row["variant_key"], row["question_key"]) == (
            item.vignette_key, item.condition, item.variant_key, item.question_key)
        assert (row["variant_age"], row["variant_gender"], row["variant_ethnicity"]) == (
            variant["age"], variant["gender"], variant["ethnicity"])
        assert (row["sample_index"], row["seed"], row["status"]) == (item.sample_index, item.seed, "done")
        assert row["reply"] == item.raw_reply and row["answer"] == item.answer
        assert row["no_valid_option_reason"] == item.parse_error
        # The protocol's score: stigmatizing when the answer is one of the question's stigmatizing options.
        expected = None if not item.answer else item.answer in rules[item.question_key]
        assert row["stigmatizing"] is expected is item.stigmatizing
        assert row["clinician_n"] == 0 and row["judge_answers"] == [] and row["verification_question"] is None
    assert {r["condition"] for r in rows} == {"daily_troubles", "schizophrenia"}
    filtered = all_pages(client, url, {"condition": "schizophrenia", "status": "done"})
    assert [r["item_id"] for r in filtered] == [r["item_id"] for r in rows if r["condition"] == "schizophrenia"]

    jsonl = client.get(url, {"format": "jsonl"})
    assert jsonl.status_code == 200 and jsonl["Content-Type"].startswith("application/x-ndjson")
    assert jsonl["X-Export-Schema-Version"] == probe_export.PROBE_EXPORT_SCHEMA_VERSION
    assert f'probe-run-{stigma_run.pk}-items.jsonl' in jsonl["Content-Disposition"]
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert lines == rows

    response = client.get(url, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert list(table[0]) == probe_export.CSV_COLUMNS and len(table) == len(rows)
    for line, row in zip(table, rows, strict=True):
        assert int(line["item_id"]) == row["item_id"] and line["answer"] == row["answer"]
        assert line["stigmatizing"] == {None: "", True: "true", False: "false"}[row["stigmatizing"]]
        assert line["reply"] == row["reply"] and line["model"] == "simulator/sensemaker-a"
        assert json.loads(line["judge_answers_json"]) == []
    # Each download is in the audit log, by whom and in which format (paging through JSON is not a download).
    from audit.models import AuditEvent

    downloads = AuditEvent.objects.filter(action="probes.run_export", object_id=str(stigma_run.pk))
    assert sorted(e.data["new"]["format"] for e in downloads) == ["csv", "jsonl"]
    assert {e.actor.role for e in downloads} == {Role.RESEARCHER}
    # Bad parameters are 400s in the JSON shape, whatever the format.
    assert "format" in assert_error(client.get(url, {"format": "parquet"}), 400, "invalid")["details"]
    assert "status" in assert_error(client.get(url, {"status": "nope"}), 400, "invalid")["details"]


def test_interjection_items_carry_clinicians_verdicts_and_the_judges_answers(world, client):
    battery = services.import_battery(None, small_set(("si_bridges", "hall_figure", "del_dead")), "s.jsonl").battery
    sim_judge = ModelConfig.objects.create(name="Sim judge", model="simulator/judge")
    run = services.launch_run(None, services.RunRequest(battery=battery, model=simulator(), samples=2, seed=3,
                                                        judge_model=sim_judge), enqueue_tasks=False)
    services.run_inline(run, threads=2)
    campaign = services.create_verification_campaign(world.admin, run, name="Verification",
                                                     raters=[world.rater, world.other_rater], overlap_k=2)
    open_campaign(world.admin, campaign)
    # Two clinicians who disagree: one says yes to every question, the other no.
    rate_all(client, campaign, world.rater, lambda page: True)
    rate_all(client, campaign, world.other_rater, lambda page: False)
    researcher = api(world.researcher)
    rows = all_pages(researcher, f"{RUNS}/{run.pk}/items", {"page_size": 4})
    probes = {p["key"]: p for p in run.battery.content["probes"]}
    pseudonyms = {world.rater.pseudonym: True, world.other_rater.pseudonym: False}
    assert len(rows) == 6
    for row in rows:
        item = ProbeItem.objects.get(pk=row["item_id"])
        probe = probes[item.vignette_key]
        assert row["protocol"] == "interjection" and row["variant_key"] == "none" and row["answer"] == ""
        assert row["conversation_id"] == item.conversation_id and row["reply"] == item.raw_reply
        assert row["verification_question"] == probe["verification_question"]
        assert row["correct_answer"] == probe["correct_answer"] and row["stigmatizing"] is None
        scores = AxisScore.objects.filter(rating__assignment__item__conversation_id=item.conversation_id,
                                          axis__key="verification", rating__status="submitted")
        assert row["clinician_n"] == scores.count() == 2 and row["clinician_yes"] == 1
        assert row["clinician_appropriate"] == 1 and row["clinician_unsafe"] == 0
        assert {v["rater"]: v["answer_yes"] for v in row["clinician_verdicts"]} == pseudonyms
        for verdict in row["clinician_verdicts"]:
            assert verdict["appropriate"] == (verdict["answer_yes"] == (probe["correct_answer"] == "yes"))
            assert verdict["campaign_id"] == campaign.pk and verdict["safe"] is True
        (answer,) = ProbeJudgeAnswer.objects.filter(item=item)
        (judged,) = row["judge_answers"]
        assert (judged["judge_model"], judged["judge_name"], judged["judge_is_simulated"]) == (
            "simulator/judge", "Sim judge", True)
        assert judged["prompt_version"] == answer.prompt_version == "probe-judge-v1"
        assert judged["answer_yes"] is answer.answer_yes and judged["raw_reply"] == answer.raw_reply
        assert judged["seed"] == answer.seed and judged["status"] == "done"
        assert judged["appropriate"] == (answer.answer_yes == (probe["correct_answer"] == "yes"))
        assert row["judge_n"] == 1 and row["judge_appropriate"] == int(judged["appropriate"])
    # Raters appear by pseudonym only, in every format.
    jsonl = b"".join(researcher.get(f"{RUNS}/{run.pk}/items", {"format": "jsonl"}).streaming_content).decode()
    text = b"".join(researcher.get(f"{RUNS}/{run.pk}/items", {"format": "csv"}).streaming_content).decode()
    assert [json.loads(line) for line in jsonl.splitlines()] == rows
    for body in (jsonl, text, json.dumps(rows)):
        assert world.rater.username not in body and world.other_rater.username not in body
        assert world.rater.pseudonym in body
    table = list(csv.DictReader(io.StringIO(text)))
    assert [json.loads(line["clinician_verdicts_json"]) for line in table] == [r["clinician_verdicts"] for r in rows]
    assert [int(line["clinician_n"]) for line in table] == [2] * 6


def test_admins_cancel_a_run_researchers_cannot(stigma_run):
    run = services.launch_run(None, services.RunRequest(battery=stigma_run.battery, model=stigma_run.model,
                                                        samples=2), enqueue_tasks=False)
    url = f"{RUNS}/{run.pk}/cancel"
    assert_error(api(make_user(Role.RESEARCHER)).post(url), 403)
    assert_error(api(make_user(Role.RATER)).post(url), 403)
    assert ProbeItem.objects.filter(run=run, status="queued").count() == 8
    response = api(make_user(Role.ADMIN)).post(url)
    assert response.status_code == 200, response.content
    assert response.json()["items"] == 8 and response.json()["run"]["id"] == run.pk
    assert response.json()["run"]["status"] == "cancelled" == ProbeRun.objects.get(pk=run.pk).status
    assert ProbeItem.objects.filter(run=run, status="cancelled").count() == 8
    assert_error(api(make_user(Role.ADMIN)).post(f"{RUNS}/999999/cancel"), 404, "not_found")


@pytest.mark.worker
def test_retry_re_runs_failed_items_on_a_real_worker(http_model, fake_llm, fast_retries):  # noqa: F811
    """Two calls refused by the provider (401, not retried) fail their items with the reason; the export
    says so; retry over the API re-queues them and a real worker finishes them with their seeds."""
    from tests.probes.test_probe_runs import finished, scripted
    from tests.worker_support import wait_for, worker_thread

    fake_llm.responder = scripted
    fake_llm.push_faults("401", "401")
    run = services.launch_run(None, services.RunRequest(battery=stigma_battery(), model=http_model, seed=4),
                              enqueue_tasks=False)
    services.run_inline(run, threads=1)
    failed = list(ProbeItem.objects.filter(run=run, status="failed").order_by("id"))
    assert len(failed) == 2 and all(i.failure_reason for i in failed)
    researcher, admin = api(make_user(Role.RESEARCHER)), api(make_user(Role.ADMIN))
    rows = {r["item_id"]: r for r in all_pages(researcher, f"{RUNS}/{run.pk}/items", {"status": "failed"})}
    assert sorted(rows) == [i.pk for i in failed]
    assert all(rows[i.pk]["failure_reason"] == i.failure_reason and rows[i.pk]["answer"] == "" for i in failed)
    assert researcher.get(f"{RUNS}/{run.pk}").json()["progress"]["counts"]["failed"] == 2
    assert_error(researcher.post(f"{RUNS}/{run.pk}/retry"), 403)
    with worker_thread(concurrency=1):
        response = admin.post(f"{RUNS}/{run.pk}/retry")
        assert response.status_code == 200 and response.json()["items"] == 2, response.content
        wait_for(finished(run), message="retried items")
    retried = {i.pk: i for i in ProbeItem.objects.filter(pk__in=[i.pk for i in failed])}
    assert all(i.status == "done" and i.failure_reason == "" and i.raw_reply for i in retried.values())
    assert [retried[i.pk].seed for i in failed] == [i.seed for i in failed]
    detail = researcher.get(f"{RUNS}/{run.pk}").json()
    assert detail["status"] == "done" and detail["progress"]["counts"]["done"] == 4
    assert admin.post(f"{RUNS}/{run.pk}/retry").json()["items"] == 0
