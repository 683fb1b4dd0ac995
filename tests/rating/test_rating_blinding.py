"""Blinding: crawl everything a rater can reach and look for what they must never see.

The campaign's conversations come from distinctive model strings, a distinctive job, provider and persona,
one of them is gold, and another rater has rated and commented on it. The crawl follows every link the
rater's pages offer, performs every rater action (htmx fragments included) and reads the rater-facing
JSON API. None of the secrets may appear; the ground-truth diagnosis may appear only inside elements marked
as the diagnostic-accuracy context.
"""
import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.roles import Role
from generation.models import Conversation
from rating import assignment as assigning
from rating import services
from rating.models import Campaign, CampaignItem
from tests.factories import (
    make_campaign,
    make_case,
    make_conversation,
    make_model,
    make_persona,
    make_token,
    make_user,
)
from tests.rating.rating_support import full_values

GROUND_TRUTH = "Zebra-striped dysthymia"
SECRETS = [
    "secret-model-xyz", "openai", "SecretConfigName", "Secret Job Alpha", "secret-provider", "patient-secret-abc",
    "helper-secret-def", "neuroticism", "functional", "personalising", "personalizing", "longevity",
    "case-secret-123", "OTHER-RATER-COMMENT-Q7", "OTHER-OVERALL-Z9", "OTHER-FLAG-REASON", "gold", "SEED-4242",
    "seed", "provenance", "SECRET_API_KEY",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _StripGroundTruthContext(HTMLParser):
    """The document's text and attribute values, minus elements marked data-ground-truth-context."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip_depth = [], 0

    def handle_starttag(self, tag, attrs):
        if self.skip_depth:
            if tag not in VOID:
                self.skip_depth += 1
            return
        if any(name == "data-ground-truth-context" for name, _ in attrs) and tag not in VOID:
            self.skip_depth = 1
            return
        self.out.extend(value or "" for _, value in attrs)

    def handle_endtag(self, tag):
        if self.skip_depth and tag not in VOID:
            self.skip_depth -= 1

    def handle_data(self, data):
        if not self.skip_depth:
            self.out.append(data)


def outside_ground_truth_context(html: str) -> str:
    parser = _StripGroundTruthContext()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.out)


@pytest.fixture
def secret_world(db):
    sensemaker = make_model("openai/secret-model-xyz", name="SecretConfigName",
                            api_base="https://secret-provider.example/v1", api_key_env="SECRET_API_KEY")
    from generation.models import GenerationJob

    job = GenerationJob.objects.create(
        name="Secret Job Alpha", sensemaker_model=sensemaker, seed=4242,
        patient_model=make_model("anthropic/patient-secret-abc"), helper_model=make_model("helper-secret-def"),
    )
    persona = make_persona(trait="neuroticism", literacy="functional", intent="personalising_care", goal="longevity")
    convs = []
    for n in range(3):
        case = make_case(external_id=f"case-secret-123-{n}", ground_truth_diagnosis=GROUND_TRUTH,
                         condition="secret-provider-condition")
        conv = make_conversation(job=job, case=case, persona=persona, n_messages=8)
        Conversation.objects.filter(pk=conv.pk).update(
            provenance={"sensemaker": sensemaker.provenance(), "seed": "SEED-4242"}, seed=4242,
        )
        convs.append(conv)
    rater, other = make_user(Role.RATER, "blind-rater"), make_user(Role.RATER, "other-rater")
    campaign = make_campaign(raters=[rater, other], conversations=convs, k=2)
    CampaignItem.objects.filter(campaign=campaign, conversation=convs[0]).update(
        is_gold=True, gold_scores={"flow": 4, "susceptibility": 3})
    # The other rater has rated (and flagged) the gold conversation first.
    theirs = assigning.next_assignment(campaign, other)
    services.submit_rating(theirs, other, services.changes_from_post({
        **full_values(campaign), "comment__flow": "OTHER-RATER-COMMENT-Q7", "overall_comment": "OTHER-OVERALL-Z9",
        "note__1": "OTHER-RATER-COMMENT-Q7", "problematic__1": "1",
    }))
    services.raise_safety_flag(theirs, other, "other", "OTHER-FLAG-REASON")
    return campaign, rater, other, theirs


def _check(url, response, bodies):
    body = response.content.decode("utf-8", "replace")
    bodies.append((url, response.status_code, body))


def _links(html):
    return set(re.findall(r'href="(/[^"#]*)', html))


def test_rater_never_sees_models_personas_gold_or_other_raters(secret_world):
    campaign, rater, other, theirs = secret_world
    client = Client()
    client.force_login(rater)
    hx = {"HTTP_HX_REQUEST": "true"}
    bodies = []

    # 1. Take a conversation: depth-first gives the rater the one the other rater already started.
    response = client.post(reverse("rating:next", args=[campaign.pk]), follow=True)
    _check("next", response, bodies)
    mine = rater.assignments.get(status="active")
    assert mine.item_id == theirs.item_id
    # 2. Every rater action, htmx fragments included.
    save = reverse("rating:save", args=[mine.pk])
    for data in ({"value__flow": "2"}, {"comment__flow": "mine"}, {"value__flow": "9"},
                 {"note__1": "mine", "problematic__1": "1"}, {"overall_comment": "mine"}):
        _check(save, client.post(save, data, **hx), bodies)
    for url, data, extra in [
        (reverse("rating:heartbeat", args=[mine.pk]), {"active_seconds": "4"}, hx),
        (reverse("rating:flag", args=[mine.pk]), {"category": "other", "reason": "mine"}, hx),
        (reverse("rating:flag", args=[mine.pk]), {"category": "", "reason": ""}, hx),
        (reverse("rating:flag", args=[mine.pk]), {"category": "other", "reason": "mine"}, {}),
        (reverse("rating:submit", args=[mine.pk]), {}, {}),  # incomplete: errors page
    ]:
        _check(url, client.post(url, data, follow=True, **extra), bodies)
    response = client.post(reverse("rating:submit", args=[mine.pk]), {**full_values(campaign), "then": "next"},
                           follow=True)
    _check("submit", response, bodies)
    nxt = rater.assignments.get(status="active")
    _check("skip", client.post(reverse("rating:skip", args=[nxt.pk]), {"reason": "mine"}, follow=True), bodies)
    _check("revise", client.post(save, {"value__flow": "3"}, **hx), bodies)
    # Another rater's assignment: a 404 page, nothing else.
    _check("theirs", client.get(reverse("rating:rate", args=[theirs.pk])), bodies)
    # 3. Crawl every link the rater's pages offer.
    seen, queue = set(), deque(["/", reverse("rating:home")])
    while queue and len(seen) < 60:
        url = queue.popleft()
        if url in seen or url.startswith(("/static/", "/accounts/logout")):
            continue
        seen.add(url)
        response = client.get(url, follow=True)
        _check(url, response, bodies)
        if "html" in response.headers.get("Content-Type", ""):
            queue.extend(u for u in _links(response.content.decode()) if urlsplit(u).path not in seen)
    assert reverse("rating:rate", args=[mine.pk]) in seen and reverse("rating:campaign", args=[campaign.pk]) in seen
    # 4. The JSON a rater can reach, with the session and with a token.
    token = make_token(rater)
    for name in ("api:me", "api:my_assignments"):
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        _check(url, client.get(url), bodies)
        _check(url + " (token)", Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}"), bodies)

    assert len(bodies) > 20
    ground_truth_seen = False
    for url, status, body in bodies:
        lowered = body.lower()
        for secret in SECRETS:
            assert secret.lower() not in lowered, f"{secret!r} leaked in {url} ({status})"
        if GROUND_TRUTH in body:
            ground_truth_seen = True
            assert GROUND_TRUTH not in outside_ground_truth_context(body), f"ground truth outside its context: {url}"
    assert ground_truth_seen, "the diagnostic-accuracy axes must show the ground truth"


def test_strip_helper_really_strips_only_the_marked_context():
    html = ('<div data-ground-truth-context><p>A <br> B <strong>PTSD</strong></p></div><p>PTSD elsewhere</p>'
            '<input value="x"><section data-ground-truth-context>PTSD</section>')
    text = outside_ground_truth_context(html)
    assert text.count("PTSD") == 1 and "elsewhere" in text


def test_campaign_text_that_would_unblind_raters_is_refused_on_the_pages_and_in_the_api(secret_world):
    """Raters read the campaign's name and description: naming a model, provider, job or persona label of
    its conversations is a form error on the pages and a 400 in the API, and nothing is saved."""
    campaign, rater, other, _ = secret_world
    admin = make_user(Role.ADMIN)
    client = Client()
    client.force_login(admin)
    conversations = list(Conversation.objects.filter(campaign_items__campaign=campaign))
    job = conversations[0].job
    base = {"description": "", "rubric": campaign.rubric_id, "raters": [rater.pk, other.pk], "overlap_k": 2,
            "lease_minutes": 30, "jobs": [job.pk]}
    cases = [
        ("name", "Pilot of Secret-Model-XYZ", "secret-model-xyz"),  # the model, any case
        ("name", "OpenAI round", "openai"),  # its provider
        ("name", "SecretConfigName check", "secretconfigname"),  # the model configuration
        ("description", "Served from secret-provider.example today", "secret-provider.example"),  # api_base host
        ("description", "Conversations of Secret Job Alpha", "secret job alpha"),  # the job
        ("description", "All neuroticism personas", "neuroticism"),  # persona labels, values and labels
        ("description", "About personalising the care journey", "personalising the care journey"),
    ]
    before = Campaign.objects.count()
    for field, text, term in cases:
        response = client.post(reverse("campaigns:create"), {**base, "name": "Pilot", field: text})
        assert response.status_code == 200, (field, text)
        error = " ".join(response.context["form"].errors.get(field, []))
        assert f"“{term}”" in error and "Raters see" in error, (field, text, error)
        assert term in response.content.decode().lower()  # shown in the page, beside the field
    assert Campaign.objects.count() == before
    # A word that merely contains a label is fine ("functionality" is not the literacy "functional").
    response = client.post(reverse("campaigns:create"), {**base, "name": "Spring pilot",
                                                         "description": "A functionality check"})
    assert response.status_code == 302 and Campaign.objects.count() == before + 1

    edit = client.post(reverse("campaigns:edit", args=[campaign.pk]), {
        "name": campaign.name, "description": "Rated outputs of secret-model-xyz", "raters": [rater.pk, other.pk],
        "overlap_k": 2, "lease_minutes": 60})
    assert edit.status_code == 200 and "secret-model-xyz" in " ".join(edit.context["form"].errors["description"])
    campaign.refresh_from_db()
    assert campaign.description == ""

    api = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(admin)}")
    by_ids = api.post("/api/v1/campaigns", {
        "name": "API pilot", "description": "From secret-provider.example", "raters": [rater.pk, other.pk],
        "overlap_k": 2, "conversations": [c.pk for c in conversations]}, content_type="application/json")
    by_filters = api.post("/api/v1/campaigns", {
        "name": "Neuroticism round", "raters": [rater.pk, other.pk], "overlap_k": 2,
        "selection": {"jobs": [job.pk]}}, content_type="application/json")
    patch = api.patch(f"/api/v1/campaigns/{campaign.pk}", {"description": "Secret Job Alpha"},
                      content_type="application/json")
    for response, term in ((by_ids, "secret-provider.example"), (by_filters, "neuroticism"),
                           (patch, "secret job alpha")):
        assert response.status_code == 400, response.content
        assert f"“{term}”" in response.content.decode("utf-8"), response.content
    assert Campaign.objects.count() == before + 1
