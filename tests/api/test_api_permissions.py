"""The API's permission matrix, method by method: every route of api/urls.py x every HTTP method it
answers x every role, by session and by bearer token. tests/security covers one method per route; this
covers the writes too (PATCH, POST to collections) and proves that routes it does not list do not exist."""
import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from api import urls as api_urls
from generation.models import CaseStudy
from tests.factories import build_world, make_case, make_user
from tests.security.url_access import _probe_run

pytestmark = pytest.mark.django_db

READ = {"anon": 401, "rater": 403, "researcher": 200, "admin": 200}
ADMIN_WRITE = {"anon": 401, "rater": 403, "researcher": 403, "admin": (200, 201)}


def _job_payload(w):
    case = make_case()
    CaseStudy.objects.filter(pk=case.pk).update(intent="interpreting_information", goal="functioning")
    model = w.objects["model_config"].pk
    return {"name": "api job", "cases": [case.pk], "patient_model": model, "sensemaker_model": model,
            "helper_model": model, "traits": ["openness"], "literacies": ["basic"]}


def _campaign_payload(w):
    raters = [make_user(Role.RATER).pk for _ in range(2)]
    return {"name": "api campaign", "raters": raters, "overlap_k": 2,
            "conversations": [w.objects["conversation"].pk]}


def _judge_run_payload(w):
    return {"judge_model": w.objects["judge_run"].judge_model_id, "campaign": w.objects["campaign"].pk,
            "samples": 2, "seed": 4, "max_concurrent_calls": 2}


def _probe_run_payload(w):
    return {"battery": w.objects["probe_battery"].pk, "model": w.objects["model_config"].pk, "seed": 2}


# (url name, kwargs, method, payload builder, expected status per role). Unsafe methods of read-only
# resources answer 405 to everyone who gets past authentication.
MATRIX = [
    ("api:conversation_list", {}, "get", None, READ),
    ("api:conversation_detail", {"pk": "conversation"}, "get", None, READ),
    ("api:conversation_scores", {"pk": "conversation"}, "get", None, READ),
    ("api:conversation_import", {}, "post", "import", ADMIN_WRITE),
    ("api:rubric_list", {}, "get", None, READ),
    ("api:campaign_list", {}, "get", None, READ),
    ("api:campaign_list", {}, "post", _campaign_payload, ADMIN_WRITE),
    ("api:campaign_detail", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_detail", {"pk": "campaign"}, "patch", lambda w: {"description": "changed"}, ADMIN_WRITE),
    ("api:campaign_ratings", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_scores", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_agreement", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_judge_agreement", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_judge_run_agreement", {"pk": "campaign", "run_pk": "results_judge_run"}, "get", None, READ),
    ("api:campaign_export", {"pk": "campaign"}, "get", None, READ),
    ("api:campaign_datasheet", {"pk": "campaign"}, "get", None, READ),
    ("api:judge_validation_create", {}, "post", lambda w: {
        "judge_run": w.objects["validation_judge_run"].pk, "name": "Second look again",
        "raters": [w.rater.pk, w.other_rater.pk], "overlap_k": 2}, ADMIN_WRITE),
    ("api:campaign_judge_validation", {"pk": "validation_campaign"}, "get", None, READ),
    ("api:job_list", {}, "get", None, READ),
    ("api:job_list", {}, "post", _job_payload, ADMIN_WRITE),
    ("api:job_detail", {"pk": "job"}, "get", None, READ),
    ("api:job_cancel", {"pk": "job"}, "post", None, ADMIN_WRITE),
    ("api:job_retry", {"pk": "job"}, "post", None, ADMIN_WRITE),
    ("api:judge_run_list", {}, "get", None, READ),
    ("api:judge_run_list", {}, "post", _judge_run_payload, ADMIN_WRITE),
    ("api:judge_run_detail", {"pk": "judge_run"}, "get", None, READ),
    ("api:judge_run_scores", {"pk": "judge_run"}, "get", None, READ),
    ("api:judge_run_cancel", {"pk": "judge_run"}, "post", None, ADMIN_WRITE),
    ("api:judge_run_retry", {"pk": "judge_run"}, "post", None, ADMIN_WRITE),
    ("api:probe_report", {"pk": "probe_battery"}, "get", None, READ),
    ("api:probe_run_list", {}, "get", None, READ),
    ("api:probe_run_list", {}, "post", _probe_run_payload, ADMIN_WRITE),
    ("api:probe_run_detail", {"pk": _probe_run}, "get", None, READ),
    ("api:probe_run_items", {"pk": _probe_run}, "get", None, READ),
    ("api:probe_run_cancel", {"pk": _probe_run}, "post", None, ADMIN_WRITE),
    ("api:probe_run_retry", {"pk": _probe_run}, "post", None, ADMIN_WRITE),
    ("api:my_assignments", {}, "get", None, {"anon": 401, "rater": 200, "researcher": 403, "admin": 403}),
    ("api:me", {}, "get", None, {"anon": 401, "rater": 200, "researcher": 200, "admin": 200}),
    ("api:schema", {}, "get", None, READ),
]
# Methods no route of the matrix answers: 405 for any authenticated caller (401 without credentials).
NOT_ALLOWED = [
    ("api:conversation_list", {}, "delete"), ("api:conversation_detail", {"pk": "conversation"}, "put"),
    ("api:conversation_detail", {"pk": "conversation"}, "delete"), ("api:campaign_detail", {"pk": "campaign"}, "put"),
    ("api:campaign_detail", {"pk": "campaign"}, "delete"), ("api:campaign_export", {"pk": "campaign"}, "post"),
    ("api:job_detail", {"pk": "job"}, "delete"), ("api:job_cancel", {"pk": "job"}, "get"),
    ("api:conversation_import", {}, "get"), ("api:campaign_ratings", {"pk": "campaign"}, "post"),
    ("api:judge_run_detail", {"pk": "judge_run"}, "delete"), ("api:judge_run_scores", {"pk": "judge_run"}, "post"),
    ("api:judge_run_cancel", {"pk": "judge_run"}, "get"),
    ("api:probe_report", {"pk": "probe_battery"}, "post"),
    ("api:probe_run_detail", {"pk": _probe_run}, "delete"), ("api:probe_run_items", {"pk": _probe_run}, "post"),
    ("api:probe_run_cancel", {"pk": _probe_run}, "get"),
]


def _url(world, name, kwargs):
    # A kwarg names an object of the world, or is a function that makes one (probe runs, made on demand).
    return reverse(name, kwargs={k: (v(world) if callable(v) else world.objects[v]).pk for k, v in kwargs.items()})


def _call(client, method, url, payload, headers=None):
    headers = headers or {}
    if payload is None:
        return getattr(client, method)(url, headers=headers)
    if isinstance(payload, str):
        return client.post(url, data=payload.encode(), content_type="application/x-ndjson", headers=headers)
    return getattr(client, method)(url, data=json.dumps(payload), content_type="application/json", headers=headers)


def _payload(world, builder, seq=[0]):  # noqa: B006 - a counter shared by calls
    if builder == "import":
        seq[0] += 1
        return json.dumps({"external_id": f"perm-{seq[0]}", "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}) + "\n"
    return builder(world) if builder else None


def _ok(expected, status):
    return status in expected if isinstance(expected, tuple) else status == expected


@pytest.mark.parametrize("name,kwargs,method,builder,expected", MATRIX, ids=[f"{m[0]}-{m[2]}" for m in MATRIX])
def test_permission_matrix(name, kwargs, method, builder, expected):
    world = build_world()
    url = _url(world, name, kwargs)
    # Denied roles first (a permitted write must not change what a denied one sees).
    order = sorted(expected, key=lambda role: 0 if not _ok(expected[role], 200) else 1)
    for role in order:
        for via in ("session", "token"):
            if role == "anon" and via == "token":
                continue
            client = Client()
            headers = {}
            if role != "anon":
                if via == "session":
                    client.force_login(world.user(role))
                else:
                    headers = {"Authorization": f"Bearer {world.tokens[role]}"}
            response = _call(client, method, url, _payload(world, builder), headers)
            where = f"{method.upper()} {url} as {role} by {via}"
            assert _ok(expected[role], response.status_code), (where, response.status_code, response.content[:300])
            if response.status_code >= 400:
                body = json.loads(response.content)
                assert body["error"]["status"] == response.status_code, where


@pytest.mark.parametrize("name,kwargs,method", NOT_ALLOWED, ids=[f"{m[0]}-{m[2]}" for m in NOT_ALLOWED])
def test_other_methods_are_405_in_the_json_shape(name, kwargs, method):
    world = build_world()
    url = _url(world, name, kwargs)
    for role in ("researcher", "admin", "rater"):
        response = _call(Client(), method, url, None, {"Authorization": f"Bearer {world.tokens[role]}"})
        assert response.status_code == 405, (method, url, role, response.status_code)
        assert json.loads(response.content)["error"] == {
            "status": 405, "code": "method_not_allowed", "message": f'Method "{method.upper()}" not allowed.'}
    assert _call(Client(), method, url, None).status_code == 401


def test_the_matrix_covers_every_api_route():
    named = {f"api:{p.name}" for p in api_urls.urlpatterns} - {"api:docs", "api:not_found"}
    assert named == {m[0] for m in MATRIX}


def test_unknown_routes_are_json_404s_after_authentication():
    world = build_world()
    token = {"Authorization": f"Bearer {world.tokens['researcher']}"}
    for path in ("/api/v1/", "/api/v1/nothing", "/api/v1/conversations/abc", "/api/v1/campaigns/1/exports",
                 "/api/v1/campaigns/0%5B%0A%C2%A8/agreement"):  # a newline in the path (found by schemathesis)
        for method in ("get", "post", "delete"):
            response = _call(Client(), method, path, None, token)
            assert response.status_code == 404, (method, path)
            assert json.loads(response.content)["error"]["code"] == "not_found"
    hint = Client().get("/api/v1/me", headers=token)
    assert hint.status_code == 404 and "Did you mean /api/v1/me/?" in hint.json()["error"]["message"]
    bad = Client().get("/api/v1/nothing", headers={"Authorization": "Bearer mhsd_wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["status"] == 401
    assert Client().get("/api/v1/nothing").status_code == 404


def test_a_trailing_slash_reaches_the_same_route_with_the_same_permissions():
    """`POST /api/v1/jobs/` as clients write it: served by the route, not redirected (a redirect would
    turn the POST into a GET), and checked exactly as the route without the slash."""
    world = build_world()
    for role, expected in (("researcher", 200), ("admin", 200), ("rater", 403)):
        headers = {"Authorization": f"Bearer {world.tokens[role]}"}
        assert Client().get("/api/v1/conversations/", headers=headers).status_code == expected, role
        assert Client().get("/api/v1/jobs/", headers=headers).status_code == expected, role
    assert Client().get("/api/v1/jobs/").status_code == 401
    researcher = {"Authorization": f"Bearer {world.tokens['researcher']}"}
    assert Client().post("/api/v1/jobs/", {}, headers=researcher).status_code == 403
    # A session user still needs the CSRF token on the slash form.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.admin)
    refused = browser.post("/api/v1/jobs/", {})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]


def test_browsers_get_json_too():
    """No browsable-API HTML: Accept: text/html still gets JSON data and the JSON error shape."""
    world = build_world()
    html = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # what browsers send
    client = Client()
    assert client.get("/api/v1/conversations", headers=html).headers["Content-Type"] == "application/json"
    client.force_login(world.researcher)
    ok = client.get("/api/v1/conversations", headers=html)
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "application/json"
    missing = client.get("/api/v1/nothing/here", headers=html)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    client.force_login(world.rater)
    denied = client.get("/api/v1/jobs", headers=html)
    assert denied.status_code == 403 and denied.json()["error"]["status"] == 403
    # A client that accepts nothing JSON is told so, in JSON.
    refused = client.get("/api/v1/me/", headers={"Accept": "text/html"})
    assert refused.status_code == 406 and refused.json()["error"]["code"] == "not_acceptable"


def test_errors_outside_drf_keep_the_json_shape_under_api_only():
    """A rejected Host header never reaches a DRF view; Django's handlers answer, in JSON under /api/."""
    rejected = Client().get("/api/v1/conversations", HTTP_HOST="evil.example")
    assert rejected.status_code == 400 and rejected.json()["error"]["code"] == "bad_request"
    page = Client().get("/accounts/login/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and "json" not in page.headers.get("Content-Type", "")

    from django.test import RequestFactory

    from api.errors import handler500

    failed = handler500(RequestFactory().get("/api/v1/campaigns/1/export"))
    assert failed.status_code == 500 and json.loads(failed.content)["error"]["status"] == 500
    assert "text/html" in handler500(RequestFactory().get("/rate/"))["Content-Type"]
