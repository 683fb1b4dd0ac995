"""Validation mode pages: rating's pages route validation assignments here, the admin's creation form
shows errors in place, drafts survive a reload, and an incomplete submission shows each error."""
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from judging import validation
from judging.models import JudgeRun, ValidationCampaign
from rating import assignment as assigning
from rating.models import AxisScore, Campaign
from tests.factories import make_conversation, make_user
from tests.judging.judge_fixture import make_judge_run
from tests.judging.validation_support import JUDGE_MODEL, all_agree, build_validation

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_rating_pages_send_the_clinician_to_the_validation_page():
    v, (rater, _) = build_validation()
    client = _client(rater)
    home = client.get(reverse("rating:home"))
    assert v.campaign.name in home.content.decode()
    response = client.post(reverse("rating:next", args=[v.campaign_id]), follow=True)
    a = rater.assignments.get(status="active")
    assert response.redirect_chain[-1][0] == reverse("judge_validation:validate", args=[a.pk])
    assert client.get(reverse("rating:rate", args=[a.pk])).headers["Location"] == reverse(
        "judge_validation:validate", args=[a.pk])
    # Rating's save and submit refuse it: no rating scores for a validation campaign.
    lease = a.lease_expires_at
    assert client.post(reverse("rating:save", args=[a.pk]), {"value__flow": "2"}).status_code == 409
    response = client.post(reverse("rating:submit", args=[a.pk]), {"value__flow": "2"})
    assert response.headers["Location"] == reverse("judge_validation:validate", args=[a.pk])
    assert not AxisScore.objects.exists()
    a.refresh_from_db()
    assert a.lease_expires_at == lease and a.status == "active"  # the refused writes changed nothing at all
    # And an ordinary rating assignment is no validation page.
    from tests.factories import make_assignment, make_campaign

    plain = make_campaign(raters=[rater], conversations=[make_conversation()], k=1)
    other = make_assignment(plain, rater)
    assert client.get(reverse("judge_validation:validate", args=[other.pk])).status_code == 404


def test_draft_saves_answer_with_fragments_and_survive_a_reload():
    v, (rater, _) = build_validation()
    a = assigning.next_assignment(v.campaign, rater)
    client = _client(rater)
    save = reverse("judge_validation:save", args=[a.pk])
    ok = client.post(save, {"verdict__flow": "disagree", "value__flow": "3", "comment__flow": "Abrupt"},
                     HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "Draft saved" in ok.content.decode()
    bad = client.post(save, {"value__severity": "7"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422 and 'id="err-value__severity"' in bad.content.decode()
    assert "takes 1 to 4; got 7" in bad.content.decode()
    page = client.get(reverse("judge_validation:validate", args=[a.pk])).content.decode()
    assert re.search(r'name="verdict__flow" value="disagree" data-verdict="disagree"\s+checked', page)
    assert re.search(r'name="value__flow" value="3"\s+checked', page)
    assert ">Abrupt</textarea>" in page
    # An incomplete submission: back to the page with every missing verdict listed.
    response = client.post(reverse("judge_validation:submit", args=[a.pk]), follow=True)
    html = response.content.decode()
    assert 'id="error-summary"' in html and "agree or disagree with the judge" in html
    assert ">Abrupt</textarea>" in html


def test_admin_creates_a_validation_campaign_with_errors_in_the_page():
    admin = make_user(Role.ADMIN)
    raters = [make_user(Role.RATER) for _ in range(2)]
    run = make_judge_run(conversations=[make_conversation() for _ in range(2)], model=JUDGE_MODEL)
    running = make_judge_run(conversations=[make_conversation()], model=JUDGE_MODEL, status=JudgeRun.Status.RUNNING)
    client = _client(admin)
    url = reverse("judge_validation:create")
    page = client.get(url + f"?run={run.pk}")
    assert page.status_code == 200 and run.name in page.content.decode() and running.name not in page.content.decode()
    data = {"judge_run": run.pk, "sample_index": 0, "name": "judge-gpt-x check", "description": "",
            "raters": [r.pk for r in raters], "overlap_k": 3, "lease_minutes": 30}
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "must not name the judge" in " ".join(errors["name"]) and "raters" in errors
    assert not Campaign.objects.exists()
    response = client.post(url, {**data, "name": "Second look", "overlap_k": 2, "open_now": "on"})
    v = ValidationCampaign.objects.get()
    assert response.status_code == 302 and response.headers["Location"] == reverse("campaigns:detail",
                                                                                  args=[v.campaign_id])
    assert v.campaign.status == Campaign.Status.OPEN and v.campaign.items.count() == 2
    listing = client.get(reverse("judge_validation:list")).content.decode()
    assert "Second look" in listing and reverse("validation_results:campaign", args=[v.campaign_id]) in listing


def test_the_campaign_pages_of_rating_and_results_work_for_a_validation_campaign():
    v, (rater, _) = build_validation()
    a = assigning.next_assignment(v.campaign, rater)
    changes, verdicts = validation.verdict_changes_from_post(all_agree(v))
    validation.submit_review(a, rater, changes, verdicts)
    admin = _client(make_user(Role.ADMIN))
    for url in (reverse("campaigns:detail", args=[v.campaign_id]), reverse("campaigns:list"),
                reverse("results:index"), reverse("results:campaign", args=[v.campaign_id]),
                reverse("validation_results:campaign", args=[v.campaign_id])):
        assert admin.get(url).status_code == 200, url
    mine = _client(rater).get(reverse("rating:campaign", args=[v.campaign_id]))
    assert mine.status_code == 200 and "Submitted" in mine.content.decode()


def test_the_api_creates_a_validation_campaign_and_answers_bad_input_with_its_json_errors():
    from tests.factories import make_token

    admin = make_user(Role.ADMIN)
    raters = [make_user(Role.RATER) for _ in range(2)]
    run = make_judge_run(conversations=[make_conversation() for _ in range(2)], model=JUDGE_MODEL, samples=2)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(admin)}")
    url = reverse("api:judge_validation_create")
    base = {"judge_run": run.pk, "name": "Second look", "raters": [r.pk for r in raters], "overlap_k": 2}
    for change, field in (({"judge_run": 999999}, "judge_run"), ({"sample_index": 2}, "sample_index"),
                          ({"name": "openai pilot"}, "name"), ({"overlap_k": 3}, "raters")):
        response = api.post(url, {**base, **change}, content_type="application/json")
        assert response.status_code == 400, response.content
        body = response.json()["error"]
        assert body["status"] == 400 and field in body["details"], body
    assert not Campaign.objects.exists()
    response = api.post(url, {**base, "sample_index": 1, "open": True}, content_type="application/json")
    assert response.status_code == 201, response.content
    v = ValidationCampaign.objects.get()
    assert response.json()["campaign"]["id"] == v.campaign_id and v.sample_index == 1
    assert v.campaign.status == Campaign.Status.OPEN


def test_a_conversation_without_judge_scores_is_explained_and_can_be_skipped():
    from rating.models import CampaignItem

    v, (rater,) = build_validation(n_items=1, k=1, n_raters=1)
    CampaignItem.objects.filter(campaign=v.campaign).delete()
    CampaignItem.objects.create(campaign=v.campaign, conversation=make_conversation())  # added later, not judged
    a = assigning.next_assignment(v.campaign, rater)
    client = _client(rater)
    page = client.get(reverse("judge_validation:validate", args=[a.pk]))
    assert page.status_code == 200 and "no scores for this conversation" in page.content.decode()
    assert reverse("rating:skip", args=[a.pk]) in page.content.decode()
    save = client.post(reverse("judge_validation:save", args=[a.pk]), {"verdict__flow": "agree"})
    assert save.status_code == 409
    client.post(reverse("rating:skip", args=[a.pk]), {"reason": "No judge scores."})
    a.refresh_from_db()
    assert a.status == "skipped"
