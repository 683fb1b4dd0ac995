"""Admin campaign pages: create from filters, open/close, gold items, progress, leases, safety queue, rubrics."""
import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEvent
from generation.models import Conversation
from rating import assignment as assigning
from rating import services
from rating.models import Assignment, Campaign, Rubric, SafetyFlag
from rating.rubric_files import DEFAULT_RUBRIC_FILE, default_rubric
from tests.factories import make_conversation, make_job, make_model, make_persona, make_user
from tests.rating.rating_support import build_campaign


@pytest.fixture
def admin_client(db, client):
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    return client, admin


@pytest.fixture
def pool(db):
    """Two jobs with different models under test and personas; one unfinished conversation."""
    job_a = make_job(sensemaker=make_model("openai/model-a"))
    job_b = make_job(sensemaker=make_model("deepseek/model-b"))
    agreeable, neurotic = make_persona(trait="agreeableness"), make_persona(trait="neuroticism", literacy="advanced")
    convs = {
        "a1": make_conversation(job=job_a, persona=agreeable),
        "a2": make_conversation(job=job_a, persona=neurotic),
        "b1": make_conversation(job=job_b, persona=agreeable),
        "b2": make_conversation(job=job_b, persona=neurotic),
    }
    unfinished = make_conversation(job=job_a, persona=make_persona(trait="openness"))
    Conversation.objects.filter(pk=unfinished.pk).update(status="running")
    raters = [make_user(Role.RATER) for _ in range(3)]
    return job_a, job_b, convs, unfinished, raters


def _create(client, raters, **extra):
    data = {"name": "Pilot", "description": "", "rubric": default_rubric().pk, "raters": [r.pk for r in raters],
            "overlap_k": 2, "lease_minutes": 30, **extra}
    return client.post(reverse("campaigns:create"), data)


def test_create_from_filters_uses_only_finished_matching_conversations(admin_client, pool):
    client, admin = admin_client
    job_a, job_b, convs, unfinished, raters = pool
    response = _create(client, raters, sensemaker_models=["openai/model-a"])
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Pilot")
    assert set(campaign.items.values_list("conversation_id", flat=True)) == {convs["a1"].pk, convs["a2"].pk}
    assert campaign.status == "draft" and campaign.lease_minutes == 30 and campaign.created_by == admin
    assert campaign.selection["sensemaker_models"] == ["openai/model-a"] and campaign.selection["status"] == "done"
    assert AuditEvent.objects.filter(action="campaign.create", object_id=str(campaign.pk)).exists()

    _create(client, raters, name="Neurotic", traits=["neuroticism"], jobs=[job_b.pk])
    assert list(Campaign.objects.get(name="Neurotic").items.values_list("conversation_id", flat=True)) == [
        convs["b2"].pk]
    _create(client, raters, name="Sample", limit=3, seed=7)
    assert Campaign.objects.get(name="Sample").items.count() == 3


def test_create_errors_are_shown_and_nothing_is_saved(admin_client, pool):
    client, admin = admin_client
    *_, raters = pool
    response = _create(client, raters[:1], overlap_k=2)
    assert response.status_code == 200 and "choose at least 2" in response.content.decode()
    response = _create(client, raters, conditions=["no-such-condition"])
    assert "This field is required" not in response.content.decode()
    response = _create(client, raters, traits=["extraversion"])
    assert "No finished conversation matches these filters." in response.content.decode()
    researcher = make_user(Role.RESEARCHER)
    response = _create(client, [*raters, researcher])
    assert response.status_code == 200
    assert not Campaign.objects.exists()


def test_preview_counts_matching_conversations(admin_client, pool):
    client, admin = admin_client
    response = client.get(reverse("campaigns:preview"), {"traits": ["agreeableness"]}, HTTP_HX_REQUEST="true")
    assert re.search(r"<strong>2</strong> finished conversations match\.", response.content.decode())
    page = client.get(reverse("campaigns:create")).content.decode()
    assert "<strong>4</strong> finished conversations match" in page
    assert page.count('value="openai/model-a"') == 1 and page.count('value="deepseek/model-b"') == 1


def test_open_close_edit_and_gold(admin_client, pool):
    client, admin = admin_client
    job_a, job_b, convs, unfinished, raters = pool
    _create(client, raters)
    campaign = Campaign.objects.get()
    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), {
        "name": "Pilot 2", "description": "d", "raters": [r.pk for r in raters], "overlap_k": 3, "lease_minutes": 45})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.overlap_k, campaign.lease_minutes) == ("Pilot 2", 3, 45)
    client.post(reverse("campaigns:open", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == "open" and campaign.opened_at
    # k is fixed once open (the disabled field keeps its value even if another one is posted).
    client.post(reverse("campaigns:edit", args=[campaign.pk]), {
        "name": "Pilot 2", "raters": [r.pk for r in raters], "overlap_k": 1, "lease_minutes": 45})
    campaign.refresh_from_db()
    assert campaign.overlap_k == 3

    gold_url = reverse("campaigns:gold", args=[campaign.pk])
    response = client.post(gold_url, {"conversation": convs["a1"].pk, "gold__flow": "4", "gold__diagnosis_hard": "1"})
    assert response.status_code == 302
    item = campaign.items.get(conversation=convs["a1"])
    assert item.is_gold and item.gold_scores == {"flow": 4, "diagnosis_hard": 1}
    response = client.post(gold_url, {"conversation": unfinished.pk, "gold__flow": "4"})
    assert "is not finished" in response.content.decode()
    response = client.post(gold_url, {"conversation": convs["b1"].pk})
    assert "at least one axis" in response.content.decode()
    assert not campaign.items.filter(conversation=convs["b1"], is_gold=True).exists()

    client.post(reverse("campaigns:close", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == "closed" and campaign.closed_at
    assert list(AuditEvent.objects.filter(object_type="rating.campaign", object_id=str(campaign.pk))
                .order_by("id").values_list("action", flat=True)) == [
        "campaign.create", "campaign.update", "campaign.open", "campaign.update", "campaign.close"]


def test_opening_needs_k_raters(admin_client, pool):
    client, admin = admin_client
    *_, raters = pool
    campaign, _ = build_campaign(n_items=1, n_raters=1, k=1, status="draft")
    Campaign.objects.filter(pk=campaign.pk).update(overlap_k=2)
    response = client.post(reverse("campaigns:open", args=[campaign.pk]), follow=True)
    assert "needs at least 2 raters" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_detail_shows_progress_stuck_leases_flags_and_reclaims(admin_client):
    client, admin = admin_client
    campaign, (r1, r2, r3) = build_campaign(n_items=4, n_raters=3, k=2)
    a1 = assigning.next_assignment(campaign, r1)
    services.submit_rating(a1, r1, services.changes_from_post(
        {f"value__{ax.key}": "1" for ax in campaign.rubric.axes.all() if ax.is_rated}))
    a2 = assigning.next_assignment(campaign, r2)  # depth first: completes a1's conversation
    assert a2.item_id == a1.item_id
    a3 = assigning.next_assignment(campaign, r3)
    Assignment.objects.filter(pk=a2.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    Assignment.objects.filter(pk=a3.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=30))
    services.raise_safety_flag(a1, r1, "missed_risk", "Self-harm hint ignored.")

    html = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert r1.pseudonym in html and r1.display_name in html
    assert "Self-harm hint ignored." in html and "Missed risk" in html
    assert html.count("Release now") == 2  # the expired lease and the one whose page went quiet
    assert "1 / 8" in html  # ratings submitted of items x k
    assert "fewest conversations shared by a pair" in html
    response = client.post(reverse("campaigns:reclaim", args=[campaign.pk]), follow=True)
    assert "1 expired lease(s) reclaimed." in response.content.decode()
    assert Assignment.objects.get(pk=a2.pk).status == "released"
    client.post(reverse("campaigns:release", args=[a3.pk]))
    assert Assignment.objects.get(pk=a3.pk).status == "released"
    assert AuditEvent.objects.filter(action="assignment.release", actor=admin).exists()

    # Researchers see progress read-only, raters by pseudonym only.
    researcher = make_user(Role.RESEARCHER)
    client.force_login(researcher)
    html = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert r1.pseudonym in html and r1.username not in html
    assert "Release now" not in html and "Close the campaign" not in html and "Reclaim" not in html


def test_safety_queue_open_first_and_handling(admin_client):
    client, admin = admin_client
    campaign, (r1, r2) = build_campaign(n_items=2, n_raters=2, k=1)
    a = assigning.next_assignment(campaign, r1)
    old = services.raise_safety_flag(a, r1, "other", "OLDER-RESOLVED")
    services.handle_safety_flag(old, admin, "resolve", "done")
    new = services.raise_safety_flag(a, r1, "harmful_advice", "NEWER-OPEN")
    html = client.get(reverse("campaigns:safety_queue")).content.decode()
    assert html.index("NEWER-OPEN") < html.index("OLDER-RESOLVED")
    assert "1 open" in html
    url = reverse("campaigns:flag_handle", args=[new.pk])
    response = client.post(url, {"action": "resolve", "note": ""}, follow=True)
    assert "Say what was done" in response.content.decode()
    assert SafetyFlag.objects.get(pk=new.pk).status == "open"
    client.post(url, {"action": "acknowledge"})
    client.post(url, {"action": "resolve", "note": "Escalated to the clinical lead."})
    flag = SafetyFlag.objects.get(pk=new.pk)
    assert flag.status == "resolved" and flag.resolution_note == "Escalated to the clinical lead."
    html = client.get(reverse("campaigns:safety_queue"), {"status": "open"}).content.decode()
    assert "NEWER-OPEN" not in html and "No safety flags." in html


def test_rubric_upload_new_version_noop_and_named_errors(admin_client):
    client, admin = admin_client
    default_rubric()
    url = reverse("campaigns:rubrics")
    data = json.loads(DEFAULT_RUBRIC_FILE.read_text())
    upload = SimpleUploadedFile("same.json", json.dumps(data).encode(), content_type="application/json")
    response = client.post(url, {"file": upload}, follow=True)
    assert "already has exactly this content" in response.content.decode()
    data["axes"][0]["help_text"] = "Changed help."
    upload = SimpleUploadedFile("v2.json", json.dumps(data).encode(), content_type="application/json")
    client.post(url, {"file": upload})
    assert list(Rubric.objects.filter(slug="multisenseeval").values_list("version", flat=True)) == [2, 1]

    bad = {"slug": "ctrs", "name": "CTRS", "axes": [
        {"key": "agenda", "kind": "ordinal", "scale": [0, 6], "points": [{"value": 9, "label": "x"}]},
        {"key": "agenda", "kind": "likert"},
    ]}
    upload = SimpleUploadedFile("ctrs.json", json.dumps(bad).encode(), content_type="application/json")
    html = client.post(url, {"file": upload}).content.decode()
    assert "ctrs.json" in html and "value 9 is outside the scale [0, 6]" in html
    assert "duplicate key &#x27;agenda&#x27;" in html and "&#x27;kind&#x27; must be one of" in html
    assert not Rubric.objects.filter(slug="ctrs").exists()
    upload = SimpleUploadedFile("broken.json", b"{not json", content_type="application/json")
    assert "broken.json: not valid JSON (line 1" in client.post(url, {"file": upload}).content.decode()
    mindeval = (DEFAULT_RUBRIC_FILE.parent / "mindeval-v1.json").read_bytes()
    client.post(url, {"file": SimpleUploadedFile("mindeval.json", mindeval)})
    assert Rubric.objects.filter(slug="mindeval").exists()


@pytest.mark.django_db
def test_a_rubric_file_with_an_unknown_agreement_level_is_refused_before_it_can_break_recomputation():
    from rating.rubric_files import RubricFileError, load_rubric

    data = {"slug": "typo-rubric", "name": "Typo", "axes": [
        {"key": "flow", "name": "Flow", "kind": "ordinal", "scale": [1, 4], "agreement_level": "likert"},
        {"key": "ok", "name": "OK", "kind": "binary", "required": "yes"},
    ]}
    with pytest.raises(RubricFileError) as caught:
        load_rubric(data)
    message = str(caught.value)
    assert "axes[0]: 'agreement_level' must be one of" in message and "'likert'" in message
    assert "axes[1]: 'required' must be true or false" in message
    assert not Rubric.objects.filter(slug="typo-rubric").exists()


def test_persona_intent_and_goal_filters_on_the_page_and_in_the_api(admin_client):
    from django.test import Client

    from tests.factories import make_token

    client, admin = admin_client
    job = make_job()
    longevity = make_conversation(job=job, persona=make_persona(intent="lifestyle_literacy", goal="longevity"))
    comfort = make_conversation(job=job, persona=make_persona(intent="lifestyle_literacy", goal="comfort"))
    make_conversation(job=job, persona=make_persona(intent="interpreting_information", goal="comfort"))
    raters = [make_user(Role.RATER) for _ in range(2)]
    page = client.get(reverse("campaigns:create")).content.decode()
    assert 'name="intents"' in page and 'name="goals"' in page
    preview = client.get(reverse("campaigns:preview"), {"intents": ["lifestyle_literacy"]}, HTTP_HX_REQUEST="true")
    assert re.search(r"<strong>2</strong> finished conversations match\.", preview.content.decode())
    assert _create(client, raters, intents=["lifestyle_literacy"], goals=["longevity"]).status_code == 302
    campaign = Campaign.objects.get(name="Pilot")
    assert list(campaign.items.values_list("conversation_id", flat=True)) == [longevity.pk]
    assert (campaign.selection["intents"], campaign.selection["goals"]) == (["lifestyle_literacy"], ["longevity"])

    api = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(admin)}")
    response = api.post("/api/v1/campaigns", {
        "name": "Second round", "raters": [r.pk for r in raters], "overlap_k": 2,
        "selection": {"intents": ["lifestyle_literacy"], "goals": ["comfort"]}}, content_type="application/json")
    assert response.status_code == 201, response.content
    second = Campaign.objects.get(pk=response.json()["id"])
    assert list(second.items.values_list("conversation_id", flat=True)) == [comfort.pk]
    bad = api.post("/api/v1/campaigns", {"name": "Third", "raters": [r.pk for r in raters], "overlap_k": 2,
                                         "selection": {"goals": ["immortality"]}}, content_type="application/json")
    assert bad.status_code == 400 and "immortality" in bad.content.decode()


def test_default_rubric_cites_the_paper_and_does_not_claim_verbatim_anchors(db):
    citation = default_rubric().citation
    assert "arXiv 2505.20201" in citation and "adapted" in citation and "quoted from" not in citation
