"""The Django admin shows rating data but changes none of it: rubrics, campaigns, assignments, ratings,
notes and safety flags change only through rating/ (validated and audited)."""
import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from rating import assignment as assigning
from rating import services
from rating.models import Campaign, MessageNote, Rubric, SafetyFlag
from rating.rubric_files import load_rubric
from tests.factories import make_user
from tests.rating.rating_support import build_campaign, full_values


@pytest.fixture
def world(db):
    campaign, raters = build_campaign(n_items=3, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, raters[0])
    services.submit_rating(a, raters[0], services.changes_from_post(
        {**full_values(campaign), "note__1": "dismissive", "problematic__1": "1"}))
    flag = services.raise_safety_flag(a, raters[0], "missed_risk", "Risk cue ignored.")
    client = Client()
    client.force_login(make_user(Role.ADMIN))
    return campaign, client, flag


def _url(model, action, *args):
    return reverse(f"admin:rating_{model._meta.model_name}_{action}", args=args)


def test_campaign_is_view_only_with_a_link_instead_of_a_per_conversation_inline(world):
    campaign, client, _ = world
    page = client.get(_url(Campaign, "change", campaign.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert reverse("campaigns:detail", args=[campaign.pk]) in html and "3 (0 gold)" in html
    assert "TOTAL_FORMS" not in html  # no inline formset: nothing to hit the 1,000-field limit
    assert 'name="overlap_k"' not in html and 'name="status"' not in html
    before = Campaign.objects.values("name", "status", "overlap_k", "rubric_id").get(pk=campaign.pk)
    response = client.post(_url(Campaign, "change", campaign.pk), {
        "name": "renamed", "status": "closed", "overlap_k": 5, "rubric": campaign.rubric_id, "lease_minutes": 1})
    assert response.status_code == 403
    assert Campaign.objects.values("name", "status", "overlap_k", "rubric_id").get(pk=campaign.pk) == before
    assert client.get(_url(Campaign, "add")).status_code == 403
    assert client.post(_url(Campaign, "delete", campaign.pk), {"post": "yes"}).status_code == 403
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_rubric_is_view_only_and_only_an_unused_one_can_be_deleted(world):
    campaign, client, _ = world
    rubric = campaign.rubric
    page = client.get(_url(Rubric, "change", rubric.pk))
    assert page.status_code == 200 and 'name="axes-0-name"' not in page.content.decode()
    response = client.post(_url(Rubric, "change", rubric.pk), {"name": "edited in place", "slug": rubric.slug,
                                                               "version": rubric.version})
    assert response.status_code == 403
    assert Rubric.objects.get(pk=rubric.pk).name == rubric.name
    assert client.get(_url(Rubric, "add")).status_code == 403
    assert client.post(_url(Rubric, "delete", rubric.pk), {"post": "yes"}).status_code == 403
    unused, _ = load_rubric({"slug": "unused-scale", "name": "Unused", "axes": [
        {"key": "x", "name": "X", "kind": "ordinal", "scale": [1, 3]}]})
    assert client.post(_url(Rubric, "delete", unused.pk), {"post": "yes"}).status_code == 302
    assert not Rubric.objects.filter(pk=unused.pk).exists()


def test_safety_flags_and_message_notes_cannot_be_changed_or_deleted(world):
    _, client, flag = world
    note = MessageNote.objects.get()
    for model, obj in ((SafetyFlag, flag), (MessageNote, note)):
        assert client.get(_url(model, "change", obj.pk)).status_code == 200
        assert client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
        changelist = client.post(_url(model, "changelist"), {
            "action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
        assert changelist.status_code in (200, 302, 403)
        assert model.objects.filter(pk=obj.pk).exists()
    assert SafetyFlag.objects.get(pk=flag.pk).reason == "Risk cue ignored."
