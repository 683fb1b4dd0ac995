"""Fixtures for the REST API tests: token clients per role and a world with rated conversations."""
import json

import pytest
from django.test import Client

from accounts.roles import Role
from rating import campaigns as campaign_ops
from rating import services as rating_services
from rating.models import Campaign
from tests.api.rated import IMPORT_LINES, import_jsonl, rate_everything
from tests.factories import make_conversation, make_job, make_model, make_token, make_user


class ApiClient:
    """A Django test client that sends a bearer token and parses the JSON error shape."""

    def __init__(self, token: str | None):
        self.token = token
        self.client = Client()

    def _headers(self, headers):
        out = dict(headers or {})
        if self.token:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    def get(self, path, data=None, headers=None, **kw):
        return self.client.get(path, data=data, headers=self._headers(headers), **kw)

    def post(self, path, data=None, content_type="application/json", headers=None, **kw):
        if content_type == "application/json" and data is not None and not isinstance(data, str | bytes):
            data = json.dumps(data)
        return self.client.post(path, data=data, content_type=content_type, headers=self._headers(headers), **kw)

    def multipart(self, path, data, headers=None):
        return self.client.post(path, data=data, headers=self._headers(headers))

    def patch(self, path, data, headers=None):
        return self.client.patch(path, data=json.dumps(data), content_type="application/json",
                                 headers=self._headers(headers))

    def delete(self, path, headers=None):
        return self.client.delete(path, headers=self._headers(headers))

    def put(self, path, data=None, headers=None):
        return self.client.put(path, data=json.dumps(data or {}), content_type="application/json",
                               headers=self._headers(headers))


def assert_error(response, status, code=None):
    """Every API error: JSON, {"error": {"status", "code", "message"}} with the HTTP status repeated."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def admin(db):
    return make_user(Role.ADMIN)


@pytest.fixture
def researcher(db):
    return make_user(Role.RESEARCHER)


@pytest.fixture
def raters(db):
    return [make_user(Role.RATER) for _ in range(3)]


@pytest.fixture
def admin_api(admin):
    return ApiClient(make_token(admin))


@pytest.fixture
def researcher_api(researcher):
    return ApiClient(make_token(researcher))


@pytest.fixture
def rated(admin, admin_api, raters):
    """A campaign of three imported and one generated conversation, rated by three raters (k=2) through
    the rating services, plus an unrated conversation with only a draft, a gold item and a safety flag."""
    response = import_jsonl(admin_api, IMPORT_LINES)
    assert response.status_code == 201, response.content
    imported = [c["id"] for c in response.json()["conversations"]]
    job = make_job(sensemaker=make_model("openai/gpt-x"))
    generated = make_conversation(job=job, n_messages=6, is_simulated=False, smog_grade=9.25)
    late = make_conversation(job=job, n_messages=4)
    drafter = make_user(Role.RATER)
    response = admin_api.post("/api/v1/campaigns", {
        "name": "Round trip, with a comma", "overlap_k": 2, "raters": [r.pk for r in raters],
        "conversations": [*imported, generated.pk],
    })
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    response = admin_api.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": "open"})
    assert response.status_code == 200 and response.json()["status"] == "open", response.content
    campaign.refresh_from_db()
    campaign_ops.add_gold(admin, campaign, imported[0], {"susceptibility": "3", "diagnosis_hard": "1"})
    rate_everything(campaign, raters)
    # Added after the ratings: an unrated conversation whose only rating is a draft (never exported).
    response = admin_api.patch(f"/api/v1/campaigns/{campaign.pk}", {
        "add_conversations": [late.pk], "raters": [r.pk for r in [*raters, drafter]]})
    assert response.status_code == 200, response.content
    from rating import assignment as assigning

    draft = assigning.next_assignment(campaign, drafter)
    assert draft.item.conversation_id == late.pk
    rating_services.save_rating_draft(draft, drafter, rating_services.DraftChanges(values={"susceptibility": "2"}))
    flagged = campaign.assignments.filter(item__conversation_id=imported[0]).first()
    rating_services.raise_safety_flag(flagged, flagged.rater, "missed_risk", "Missed a risk cue, see message 1",
                                      message_index=1)
    campaign.refresh_from_db()
    return campaign
