"""The API's resources: filtering, ordering, cursor pagination, pseudonymised ratings, aggregates,
agreement (and its cache), campaigns and jobs written through the apps' services, raters' own view."""
import json
import math
from datetime import timedelta
from statistics import mean

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.roles import Role
from api import views as api_views
from audit.models import AuditEvent
from generation.models import Conversation, GenerationJob, Message
from rating import services as rating_services
from rating.models import Assignment, AxisScore, Campaign, Rating
from results import agreement as results_agreement
from results.stats import compute_agreement
from tests.api.conftest import ApiClient, assert_error
from tests.factories import (
    make_campaign,
    make_case,
    make_conversation,
    make_job,
    make_model,
    make_persona,
    make_token,
    make_user,
)

pytestmark = pytest.mark.django_db


def walk(api, url, params=None):
    """Follow the cursor links to the end; return every item and the number of pages."""
    items, pages = [], 0
    response = api.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        page = response.json()
        assert set(page) == {"next", "previous", "results"}
        items += page["results"]
        pages += 1
        if not page["next"]:
            return items, pages
        response = api.get(page["next"])


# --- conversations --------------------------------------------------------------------------------


@pytest.fixture
def grid(db):
    """Conversations across two jobs (two models), traits, literacies, conditions and dates."""
    job_a = make_job(sensemaker=make_model("openai/model-a"))
    job_b = make_job(sensemaker=make_model("openai/model-b"))
    convs = []
    for i in range(12):
        job = job_a if i % 2 == 0 else job_b
        persona = make_persona(trait=["openness", "neuroticism", "agreeableness"][i % 3],
                               literacy="basic" if i < 6 else "advanced")
        case = make_case(condition="depression" if i % 4 else "PTSD")
        conv = make_conversation(job=job, case=case, persona=persona, is_simulated=(i == 3))
        Conversation.objects.filter(pk=conv.pk).update(created_at=timezone.now() - timedelta(days=12 - i))
        convs.append(Conversation.objects.get(pk=conv.pk))
    return {"a": job_a, "b": job_b, "convs": convs}


def ids(items):
    return [item["id"] for item in items]


def test_conversation_filters(researcher_api, grid, raters):
    convs = grid["convs"]
    url = "/api/v1/conversations"

    def listed(**params):
        return sorted(ids(walk(researcher_api, url, params)[0]))

    assert listed() == sorted(c.pk for c in convs)
    assert listed(job=grid["a"].pk) == [c.pk for c in convs[0::2]]
    assert listed(model="openai/model-b") == [c.pk for c in convs[1::2]]
    assert listed(trait="neuroticism") == [c.pk for c in convs[1::3]]
    assert listed(literacy="advanced") == [c.pk for c in convs[6:]]
    assert listed(condition="ptsd") == [c.pk for c in convs[0::4]]
    assert listed(is_simulated="true") == [convs[3].pk]
    assert len(listed(is_simulated="false")) == 11
    assert listed(trait="openness", literacy="basic", model="openai/model-a") == [convs[0].pk]
    cutoff = convs[5].created_at
    assert listed(created_after=cutoff.isoformat()) == [c.pk for c in convs[5:]]
    assert listed(created_before=cutoff.isoformat()) == [c.pk for c in convs[:5]]
    assert listed(created_after=(timezone.now() + timedelta(days=1)).date().isoformat()) == []
    campaign = make_campaign(raters=raters, conversations=convs[:4])
    assert listed(campaign=campaign.pk) == [c.pk for c in convs[:4]]
    assert listed(rubric=campaign.rubric.slug, rubric_version=campaign.rubric.version) == [c.pk for c in convs[:4]]
    assert listed(rubric_version=999) == []
    assert listed(source="imported") == []


def test_ordering_and_cursor_pagination(researcher_api, grid):
    items, pages = walk(researcher_api, "/api/v1/conversations", {"page_size": 5})
    assert pages == 3 and ids(items) == sorted(c.pk for c in grid["convs"])
    newest_first, _ = walk(researcher_api, "/api/v1/conversations", {"page_size": 4, "ordering": "-created_at"})
    assert ids(newest_first) == [c.pk for c in sorted(grid["convs"], key=lambda c: c.created_at, reverse=True)]
    # A cursor stays valid while rows are added (no duplicates, nothing skipped of what existed).
    first = researcher_api.get("/api/v1/conversations", {"page_size": 5}).json()
    make_conversation(job=grid["a"])
    rest, _ = walk(researcher_api, first["next"])
    assert len(ids(first["results"]) + ids(rest)) == 13 and len(set(ids(first["results"]) + ids(rest))) == 13


@pytest.mark.parametrize("params,field", [
    ({"trait": "bold"}, "trait"),
    ({"job": "x"}, "job"),
    ({"job": str(2**70)}, "job"),
    ({"campaign": "0"}, "campaign"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2026-02-30"}, "created_after"),
    ({"created_after": "2026-05-02", "created_before": "2026-05-01"}, "created_before"),
    ({"ordering": "text"}, "ordering"),
    ({"is_simulated": "perhaps"}, "is_simulated"),
    ({"rubric_version": "-1"}, "rubric_version"),
    ({"page_size": "0"}, None),
])
def test_bad_filter_values_are_400s_naming_the_parameter(researcher_api, params, field):
    response = researcher_api.get("/api/v1/conversations", params)
    if field is None:  # DRF falls back to the default page size for a bad page_size
        assert response.status_code == 200
        return
    error = assert_error(response, 400, "invalid")
    assert field in error["details"]


def test_bad_cursor_is_a_json_404(researcher_api, grid):
    assert_error(researcher_api.get("/api/v1/conversations", {"cursor": "garbage"}), 404, "not_found")


def test_conversation_detail(researcher_api):
    conv = make_conversation(n_messages=6, trace={"stage_counts": {"1": 2}})
    Message.objects.filter(conversation=conv, index=1).update(trace={"candidates": ["a", "b", "c"]})
    detail = researcher_api.get(f"/api/v1/conversations/{conv.pk}").json()
    assert [m["index"] for m in detail["messages"]] == list(range(6))
    assert detail["messages"][0]["stage_name"] == "Fostering the relationship"
    assert detail["stages"] == [{"stage": 1, "name": "Fostering the relationship", "messages": 2},
                                {"stage": 2, "name": "Gathering information", "messages": 2},
                                {"stage": 3, "name": "Providing information", "messages": 2}]
    assert detail["models"]["sensemaker"] == conv.sensemaker_model
    assert detail["persona"] == {"trait": "agreeableness", "literacy": "basic",
                                 "intent": "interpreting_information", "goal": "functioning"}
    assert detail["case_id"] == conv.case.external_id and detail["job"] == conv.job_id
    assert detail["trace"] is None and "trace" not in detail["messages"][1]
    traced = researcher_api.get(f"/api/v1/conversations/{conv.pk}?trace=1").json()
    assert traced["trace"] == {"stage_counts": {"1": 2}}
    assert traced["messages"][1]["trace"] == {"candidates": ["a", "b", "c"]}
    assert_error(researcher_api.get("/api/v1/conversations/987654321"), 404, "not_found")


# --- campaigns, ratings, scores -------------------------------------------------------------------


def test_campaign_list_and_detail(researcher_api, rated):
    listed = researcher_api.get("/api/v1/campaigns").json()["results"]
    assert [c["id"] for c in listed] == [rated.pk]
    detail = researcher_api.get(f"/api/v1/campaigns/{rated.pk}").json()
    assert detail["conversations"] == 5 and detail["ratings_submitted"] == 8
    assert detail["status"] == "open" and detail["rubric"]["slug"] == rated.rubric.slug
    assert detail["raters"] == sorted(u.pseudonym for u in rated.raters.all())
    assert detail["selection"]["by"] == "conversation ids (API)"
    assert researcher_api.get("/api/v1/campaigns", {"status": "closed"}).json()["results"] == []
    assert_error(researcher_api.get("/api/v1/campaigns", {"status": "paused"}), 400)


def test_campaign_create_by_selection_and_its_errors(admin_api, admin, grid, raters):
    payload = {"name": "By filters", "raters": [r.pk for r in raters], "overlap_k": 3,
               "selection": {"sensemaker_models": ["openai/model-a"], "traits": ["openness"]}}
    response = admin_api.post("/api/v1/campaigns", payload)
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    expected = {c.pk for c in grid["convs"] if c.job_id == grid["a"].pk and c.persona.trait == "openness"}
    assert set(campaign.items.values_list("conversation_id", flat=True)) == expected
    assert campaign.status == "draft" and campaign.created_by == admin
    assert AuditEvent.objects.filter(action="campaign.create", object_id=str(campaign.pk)).exists()

    too_few = admin_api.post("/api/v1/campaigns", {**payload, "overlap_k": 4})
    assert "raters" in assert_error(too_few, 400, "invalid")["details"]
    both = admin_api.post("/api/v1/campaigns", {**payload, "conversations": [grid["convs"][0].pk]})
    assert "conversations" in assert_error(both, 400)["details"]
    researcher = make_user(Role.RESEARCHER)
    not_raters = admin_api.post("/api/v1/campaigns", {**payload, "raters": [researcher.pk, *[r.pk for r in raters]]})
    assert "raters" in assert_error(not_raters, 400)["details"]
    missing = admin_api.post("/api/v1/campaigns", {**payload, "rubric": 99999})
    assert "rubric" in assert_error(missing, 400)["details"]
    unfinished = make_conversation(job=grid["a"])
    Conversation.objects.filter(pk=unfinished.pk).update(status="running")
    running = admin_api.post("/api/v1/campaigns", {**{k: v for k, v in payload.items() if k != "selection"},
                                                    "conversations": [unfinished.pk]})
    assert "not finished" in assert_error(running, 400)["details"]["conversations"][0]
    nothing = admin_api.post("/api/v1/campaigns", {**payload, "selection": {"conditions": ["none such"]}})
    assert_error(nothing, 400)
    assert Campaign.objects.count() == 1


def test_campaign_patch(admin_api, rated):
    response = admin_api.patch(f"/api/v1/campaigns/{rated.pk}", {"description": "New words", "lease_minutes": 30})
    assert response.status_code == 200 and response.json()["description"] == "New words"
    assert AuditEvent.objects.filter(action="campaign.update", object_id=str(rated.pk)).exists()
    # k is fixed once the campaign has opened (the rating services' rule).
    assert "overlap_k" in assert_error(admin_api.patch(f"/api/v1/campaigns/{rated.pk}", {"overlap_k": 3}),
                                       400)["details"]
    closed = admin_api.patch(f"/api/v1/campaigns/{rated.pk}", {"status": "closed"}).json()
    assert closed["status"] == "closed" and closed["closed_at"]
    assert_error(admin_api.patch(f"/api/v1/campaigns/{rated.pk}", {"add_conversations": [1]}), 400)
    assert_error(admin_api.patch(f"/api/v1/campaigns/{rated.pk}", {"status": "draft"}), 400)
    assert_error(admin_api.patch("/api/v1/campaigns/999999", {"name": "x"}), 404)


def test_a_campaign_patch_that_fails_in_its_last_part_commits_nothing(admin_api, grid, raters):
    created = admin_api.post("/api/v1/campaigns", {"name": "Draft", "raters": [r.pk for r in raters], "overlap_k": 2,
                                                   "lease_minutes": 60, "conversations": [grid["convs"][0].pk]})
    campaign = Campaign.objects.get(pk=created.json()["id"])
    campaign.items.all().delete()  # an empty draft: opening it is refused
    url = f"/api/v1/campaigns/{campaign.pk}"
    events_before = AuditEvent.objects.count()

    # Valid new settings, then a status change that fails: the settings are not kept either.
    refused = admin_api.patch(url, {"name": "Renamed", "lease_minutes": 45, "raters": [r.pk for r in raters[:2]],
                                    "status": "open"})
    assert "no conversations" in assert_error(refused, 400)["details"]["non_field_errors"][0]
    campaign.refresh_from_db()
    assert (campaign.name, campaign.lease_minutes, campaign.status) == ("Draft", 60, "draft")
    assert set(campaign.raters.all()) == set(raters)
    assert AuditEvent.objects.count() == events_before  # not even the audit event of the first part

    # On a closed campaign: the rename is valid, adding conversations is not; nothing is kept.
    admin_api.patch(url, {"status": "closed"})
    events_before = AuditEvent.objects.count()
    refused = admin_api.patch(url, {"name": "Renamed", "add_conversations": [grid["convs"][1].pk]})
    assert "closed" in assert_error(refused, 400)["details"]["conversations"][0]
    campaign.refresh_from_db()
    assert campaign.name == "Draft" and not campaign.items.exists()
    assert AuditEvent.objects.count() == events_before


def test_ratings_are_pseudonymised(researcher_api, admin_api, rated):
    ratings, _ = walk(researcher_api, f"/api/v1/campaigns/{rated.pk}/ratings", {"page_size": 3})
    assert len(ratings) == 8 and all(r["status"] == "submitted" for r in ratings)
    text = json.dumps(ratings)
    for user in rated.raters.all():
        assert user.username not in text and user.email not in text
    assert {r["rater"] for r in ratings} <= {u.pseudonym for u in rated.raters.all()}
    assert all(r["rater_username"] is None for r in ratings)
    one = ratings[0]
    db = Rating.objects.get(pk=one["id"])
    assert one["conversation"] == db.assignment.item.conversation_id
    assert one["active_seconds"] == db.assignment.active_seconds
    assert {s["axis"]: s["value"] for s in one["scores"]} == {s.axis.key: s.value for s in db.scores.all()}
    assert one["rubric"]["version"] == rated.rubric.version
    # Researchers may not unmask raters; admins may.
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"identify": "1"}), 403)
    identified = admin_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"identify": "1"}).json()["results"]
    assert all(r["rater_username"] == Rating.objects.get(pk=r["id"]).assignment.rater.username for r in identified)
    drafts = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"status": "draft"}).json()["results"]
    assert len(drafts) == 1 and drafts[0]["status"] == "draft"
    pseudonym = ratings[0]["rater"]
    mine = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"rater": pseudonym}).json()["results"]
    assert mine and all(r["rater"] == pseudonym for r in mine)
    # The same filters as conversations: by model under test, job, condition, persona, rubric version.
    gpt, _ = walk(researcher_api, f"/api/v1/campaigns/{rated.pk}/ratings", {"model": "openai/gpt-x"})
    expected = {r.pk for r in Rating.objects.filter(
        assignment__campaign=rated, status="submitted",
        assignment__item__conversation__sensemaker_model="openai/gpt-x")}
    assert expected and {r["id"] for r in gpt} == expected
    job_id = Rating.objects.get(pk=next(iter(expected))).assignment.item.conversation.job_id
    by_job, _ = walk(researcher_api, f"/api/v1/campaigns/{rated.pk}/ratings", {"job": job_id})
    assert {r["id"] for r in by_job} == expected
    assert not researcher_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"model": "none/such"}).json()["results"]
    assert len(walk(researcher_api, f"/api/v1/campaigns/{rated.pk}/ratings",
                    {"rubric_version": rated.rubric.version})[0]) == 8
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/ratings", {"trait": "bold"}), 400)


def test_scores_are_means_over_submitted_ratings(researcher_api, rated):
    rows, _ = walk(researcher_api, f"/api/v1/campaigns/{rated.pk}/scores", {"page_size": 2})
    assert len(rows) == 5
    for row in rows:
        values = {}
        for score in AxisScore.objects.filter(rating__assignment__campaign=rated, rating__status="submitted",
                                              rating__assignment__item__conversation_id=row["conversation"]):
            if score.value is not None:
                values.setdefault(score.axis.key, []).append(score.value)
        assert {a["axis"] for a in row["axes"]} == set(values)
        for axis in row["axes"]:
            assert math.isclose(axis["mean"], mean(values[axis["axis"]])) and axis["n"] == len(values[axis["axis"]])
        assert row["n_raters"] == (2 if values else 0)  # the draft-only conversation has none
    single = researcher_api.get(f"/api/v1/conversations/{rows[0]['conversation']}/scores").json()
    assert single["campaigns"][0]["campaign"] == rated.pk
    assert single["campaigns"][0]["axes"] == rows[0]["axes"]


# --- agreement ------------------------------------------------------------------------------------


def test_agreement_equals_the_statistics_on_the_same_matrix(researcher_api, rated):
    response = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/agreement", {"n_boot": 50})
    assert response.status_code == 200
    body = response.json()
    assert body["n_boot"] == 50 and body["source"] in ("computed", "precomputed")
    rated_axes = [a for a in rated.rubric.axes.all() if a.is_rated]
    assert [a["axis"] for a in body["axes"]] == [a.key for a in rated_axes]
    # Rebuild one axis's matrix from the ORM and compute it directly.
    axis = rated_axes[0]
    raters = sorted(rated.raters.filter(assignments__campaign=rated, assignments__status="submitted")
                    .values_list("pseudonym", flat=True).distinct())
    scores = AxisScore.objects.filter(axis=axis, rating__status="submitted", rating__assignment__campaign=rated)
    units = sorted({s.rating.assignment.item.conversation_id for s in scores})
    matrix = np.full((len(units), len(raters)), np.nan)
    for s in scores:
        matrix[units.index(s.rating.assignment.item.conversation_id),
               raters.index(s.rating.assignment.rater.pseudonym)] = s.value
    direct = compute_agreement(matrix, "ordinal", [1.0, 2.0, 3.0, 4.0], n_boot=50, seed=0, rater_ids=raters)
    got = body["axes"][0]["statistics"]
    assert got["n_units"] == direct["n_units"] == 4 and got["n_raters"] == 3
    assert got["krippendorff_alpha"]["alpha"] == pytest.approx(direct["krippendorff_alpha"]["alpha"])
    assert got["percent_exact_agreement"] == direct["percent_exact_agreement"]


def test_agreement_is_cached_until_a_rating_changes(researcher_api, rated, monkeypatch):
    calls = []
    real = results_agreement.compute_campaign_agreement
    monkeypatch.setattr(results_agreement, "compute_campaign_agreement",
                        lambda campaign, n_boot: calls.append(n_boot) or real(campaign, n_boot))
    url = f"/api/v1/campaigns/{rated.pk}/agreement"
    first = researcher_api.get(url, {"n_boot": 20}).json()
    if first["source"] == "precomputed":
        pytest.skip("the results app serves precomputed agreement for this campaign")
    assert first["source"] == "computed"
    assert researcher_api.get(url, {"n_boot": 20}).json()["source"] == "cache"
    assert calls == [20]
    # A revision of a submitted rating changes the fingerprint: the next request recomputes.
    assignment = Assignment.objects.filter(campaign=rated, status="submitted").first()
    current = assignment.rating.scores.get(axis__key="flow").value
    rating_services.save_rating_draft(assignment, assignment.rater, rating_services.DraftChanges(
        values={"flow": str(int(current % 4) + 1)}))
    again = researcher_api.get(url, {"n_boot": 20}).json()
    assert again["source"] == "computed" and calls == [20, 20]
    assert_error(researcher_api.get(url, {"n_boot": 100000}), 400)


def test_agreement_prefers_the_results_snapshot_while_it_is_current(researcher_api, rated):
    from results.services import recompute_campaign

    snapshot = recompute_campaign(rated.pk, n_boot=30)
    url = f"/api/v1/campaigns/{rated.pk}/agreement"
    body = researcher_api.get(url).json()
    assert body["source"] == "precomputed" and body["snapshot_id"] == snapshot.pk and body["n_boot"] == 30
    axis = body["axes"][0]
    stored = snapshot.axes.get(axis_key=axis["axis"]).statistics
    assert axis["statistics"] == json.loads(json.dumps(stored))
    # Another bootstrap size is computed (and cached) on request.
    assert researcher_api.get(url, {"n_boot": 10}).json()["source"] == "computed"
    sheet = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/datasheet").json()
    assert sheet["agreement"]["source"] == "precomputed" and sheet["agreement"]["n_boot"] == 30
    # A revision makes the snapshot stale: the API computes afresh rather than serve old figures.
    assignment = Assignment.objects.filter(campaign=rated, status="submitted").first()
    current = assignment.rating.scores.get(axis__key="flow").value
    rating_services.save_rating_draft(assignment, assignment.rater, rating_services.DraftChanges(
        values={"flow": str(int(current % 4) + 1)}))
    fresh = researcher_api.get(url).json()
    assert fresh["source"] == "computed" and fresh["n_boot"] == results_agreement.DEFAULT_N_BOOT


# --- jobs -----------------------------------------------------------------------------------------


def test_jobs_list_detail_and_admin_actions(admin_api, researcher_api, admin):
    case = make_case()
    sim = make_model("simulator/sensemaker-a")
    payload = {"name": "via api", "cases": [case.pk], "patient_model": sim.pk, "sensemaker_model": sim.pk,
               "helper_model": sim.pk, "traits": ["openness", "neuroticism"], "literacies": ["basic"], "seed": 7}
    response = admin_api.post("/api/v1/jobs", payload)
    assert response.status_code == 201, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.created_by == admin and job.seed == 7
    assert response.json()["conversations"]["queued"] == 2 and response.json()["progress"]["total"] == 2
    listed = researcher_api.get("/api/v1/jobs").json()["results"]
    assert listed[0]["id"] == job.pk and listed[0]["conversations"]["queued"] == 2
    assert researcher_api.get(f"/api/v1/jobs/{job.pk}").json()["settings_snapshot"]["traits"] == [
        "openness", "neuroticism"]
    assert researcher_api.get("/api/v1/jobs", {"model": "simulator/sensemaker-a"}).json()["results"]
    assert not researcher_api.get("/api/v1/jobs", {"model": "other"}).json()["results"]

    # Retry re-queues failed conversations only; cancel stops queued ones.
    first = job.conversations.first()
    Conversation.objects.filter(pk=first.pk).update(status="failed", failure_reason="boom")
    retried = admin_api.post(f"/api/v1/jobs/{job.pk}/retry").json()
    assert retried["conversations"] == 1 and retried["job"]["conversations"]["queued"] == 2
    cancelled = admin_api.post(f"/api/v1/jobs/{job.pk}/cancel").json()
    assert cancelled["conversations"] == 2 and cancelled["job"]["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(job.pk)).exists()

    not_ready = make_case(facts=[], intent="", goal="", facts_status="pending")
    refused = admin_api.post("/api/v1/jobs", {**payload, "cases": [not_ready.pk]})
    assert "no facts" in assert_error(refused, 400, "invalid")["details"]["non_field_errors"][0]
    assert_error(admin_api.post("/api/v1/jobs", {**payload, "helper_model": 999999}), 400)
    assert_error(admin_api.post("/api/v1/jobs", {**payload, "traits": ["bold"]}), 400)
    assert_error(admin_api.post("/api/v1/jobs/999999/cancel"), 404)

    # The form in the issue and in many clients, with a trailing slash, creates a job the same way.
    slashed = admin_api.post("/api/v1/jobs/", {**payload, "name": "with a slash"})
    assert slashed.status_code == 201, slashed.content
    assert GenerationJob.objects.get(pk=slashed.json()["id"]).name == "with a slash"


# --- raters ---------------------------------------------------------------------------------------


def test_raters_see_their_own_assignments_and_no_model_identity(rated, raters):
    rater = raters[0]
    api = ApiClient(make_token(rater))
    response = api.get("/api/v1/my/assignments")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {r["id"] for r in rows} == set(Assignment.objects.filter(rater=rater).values_list("id", flat=True))
    # Conversations are named as on the rating page, never by database id (ids follow the job, so the model).
    assert all(r["conversation"] == f"Conversation {r['id']}" for r in rows)
    text = response.content.decode()
    for conv in Conversation.objects.filter(campaign_items__campaign=rated):
        for model in {conv.sensemaker_model, conv.patient_model, conv.helper_model} - {""}:
            assert model not in text
    assert "model" not in text and "pseudonym" not in text
    for other in raters[1:]:
        assert other.pseudonym not in text
    # Everything else in the API is closed to raters.
    for path in ("/api/v1/conversations", f"/api/v1/campaigns/{rated.pk}", f"/api/v1/campaigns/{rated.pk}/ratings",
                 f"/api/v1/campaigns/{rated.pk}/export", "/api/v1/jobs", "/api/v1/schema/"):
        assert_error(api.get(path), 403)


# --- throttling and server errors -----------------------------------------------------------------


def test_throttled_requests_get_429_in_the_json_shape(researcher_api, rated, monkeypatch):
    # The rate comes from settings (API_THROTTLE_EXPORT); DRF keeps the rates dict on the class.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert api_views.ExportThrottle.THROTTLE_RATES["export"] == rates["export"]
    monkeypatch.setitem(api_views.ExportThrottle.THROTTLE_RATES, "export", "2/min")
    url = f"/api/v1/campaigns/{rated.pk}/datasheet"
    export = f"/api/v1/campaigns/{rated.pk}/export"
    for _ in range(2):
        assert researcher_api.get(export).status_code == 200
    throttled = researcher_api.get(export)
    error = assert_error(throttled, 429, "throttled")
    assert int(throttled.headers["Retry-After"]) > 0 and "throttled" in error["message"].lower()
    assert researcher_api.get(url).status_code == 200  # other endpoints have their own budget


def test_unexpected_errors_are_json_500s_without_internals(researcher_api, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api_views.selectors, "conversations", broken)
    with caplog.at_level("ERROR"):
        response = researcher_api.get("/api/v1/conversations")
    error = assert_error(response, 500, "server_error")
    assert "secret" not in response.content.decode() and error["message"] == "Internal server error."
    assert any("Unhandled API error" in r.message for r in caplog.records)


def test_schema_lists_every_route_and_error_shape(researcher_api):
    schema = researcher_api.get("/api/v1/schema/?format=json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/campaigns/{id}/export", "/api/v1/conversations/import", "/api/v1/jobs/{id}/retry",
            "/api/v1/campaigns/{id}/agreement", "/api/v1/my/assignments"} <= paths
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "429"):
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, code)
    assert set(schema["components"]["securitySchemes"]) == {"BearerToken", "cookieAuth"}
