"""The judge-run API: admins launch (by campaign or by filter), cancel and retry; researchers read runs
and paginated judge scores with provenance; bad requests get 4xx in the one JSON error shape."""
import json

import pytest
from django.test import Client

from accounts.roles import Role
from judging import services
from judging.models import JudgeRun
from rating.rubric_files import default_rubric
from tests.factories import make_token, make_user

from .helpers import DIALOGUE, campaign_of, rubric_axes_judged, simulator_judge

pytestmark = pytest.mark.django_db(transaction=True)
RUNS = "/api/v1/judge-runs"


def api(role):
    token = make_token(make_user(role))
    return Client(headers={"Authorization": f"Bearer {token}"})


def post(client, url, payload):
    return client.post(url, data=json.dumps(payload), content_type="application/json")


def error(response, status):
    assert response.status_code == status, response.content[:400]
    body = response.json()["error"]
    assert body["status"] == status
    return body


def test_admins_launch_by_campaign_and_researchers_read_scores_with_provenance():
    admin, researcher = api(Role.ADMIN), api(Role.RESEARCHER)
    campaign, judge = campaign_of(3), simulator_judge()
    response = post(admin, RUNS, {"judge_model": judge.pk, "campaign": campaign.pk, "samples": 2, "seed": 3})
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["samples"] == 2 and run["rubric"] == {"slug": "multisenseeval", "version": 1}
    assert run["is_simulated"] and run["model_snapshot"]["model"] == "simulator/judge"
    assert run["progress"]["total"] == 6 and run["selection"] == {"campaign": campaign.pk}
    services.run_inline(JudgeRun.objects.get(pk=run["id"]), threads=3)  # no worker needed for the API's view
    listed = researcher.get(RUNS, {"campaign": campaign.pk}).json()
    assert [r["id"] for r in listed["results"]] == [run["id"]] and listed["results"][0]["status"] == "done"
    detail = researcher.get(f"{RUNS}/{run['id']}").json()
    assert detail["progress"]["percent"] == 100 and detail["failures"] == []
    # Scores, one page of 4 then the rest, each item with provenance and every judged axis.
    page = researcher.get(f"{RUNS}/{run['id']}/scores", {"page_size": 4}).json()
    rows = page["results"] + researcher.get(page["next"]).json()["results"]
    assert len(page["results"]) == 4 and len(rows) == 6 and len({r["id"] for r in rows}) == 6
    for row in rows:
        assert row["judge_model"] == "simulator/judge" and row["judge_name"] == judge.name
        assert row["prompt_version"] == "judge-v1" and row["rubric"] == "multisenseeval" and row["rubric_version"] == 1
        assert row["is_simulated"] and row["status"] == "done" and row["sample_index"] in (0, 1) and row["seed"] > 0
        assert sorted(row["scores"]) == sorted(rubric_axes_judged())
        assert all(1 <= n <= len(DIALOGUE) for s in row["scores"].values() for n in s["cited_messages"])
        assert json.loads(row["raw_reply"])["flow"]["score"] == row["scores"]["flow"]["value"]
    # Raters get nothing of it.
    error(api(Role.RATER).get(f"{RUNS}/{run['id']}/scores"), 403)


def test_launch_by_filter_needs_a_rubric_and_bad_requests_get_json_errors():
    admin = api(Role.ADMIN)
    campaign, judge = campaign_of(2), simulator_judge()
    job_id = campaign.items.first().conversation.job_id
    body = error(post(admin, RUNS, {"judge_model": judge.pk, "selection": {"jobs": [job_id]}}), 400)
    assert "rubric" in body["details"]
    response = post(admin, RUNS, {"judge_model": judge.pk, "selection": {"jobs": [job_id]},
                                  "rubric": default_rubric().pk})
    assert response.status_code == 201 and response.json()["campaign"] is None
    assert response.json()["selection"]["jobs"] == [job_id] and response.json()["progress"]["total"] == 1
    body = error(post(admin, RUNS, {"judge_model": judge.pk, "campaign": campaign.pk, "samples": 0}), 400)
    assert "samples" in body["details"]
    body = error(post(admin, RUNS, {"judge_model": 999999, "campaign": 999998}), 400)
    assert set(body["details"]) == {"judge_model", "campaign"}
    body = error(post(admin, RUNS, {"judge_model": judge.pk, "campaign": campaign.pk,
                                    "selection": {"jobs": [job_id]}}), 400)
    assert "not both" in body["details"]["non_field_errors"][0]
    judge.is_active = False
    judge.save()
    body = error(post(admin, RUNS, {"judge_model": judge.pk, "campaign": campaign.pk}), 400)
    assert "inactive" in body["details"]["judge_model"][0]
    error(api(Role.RESEARCHER).post(RUNS, data="{}", content_type="application/json"), 403)
    error(admin.get(f"{RUNS}/999999"), 404)
    assert JudgeRun.objects.count() == 1, "nothing but the valid request was launched"


def test_cancel_and_retry_actions():
    admin = api(Role.ADMIN)
    run = services.launch_run(None, services.JudgeRequest(judge_model=simulator_judge(), campaign=campaign_of(2)),
                              enqueue_tasks=False)
    response = post(admin, f"{RUNS}/{run.pk}/cancel", {})
    assert response.status_code == 200 and response.json()["items"] == 2
    assert response.json()["run"]["status"] == "cancelled"
    response = post(admin, f"{RUNS}/{run.pk}/retry", {})
    assert response.status_code == 200 and response.json()["items"] == 0


def test_the_openapi_schema_documents_the_judge_routes():
    schema = api(Role.RESEARCHER).get("/api/v1/schema/", headers={"Accept": "application/json"}).json()
    for path in ("/api/v1/judge-runs", "/api/v1/judge-runs/{id}", "/api/v1/judge-runs/{id}/scores",
                 "/api/v1/judge-runs/{id}/cancel", "/api/v1/judge-runs/{id}/retry"):
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/v1/judge-runs"]
