"""Categorical (nominal) rubric axes: the file format and its errors, the storage constraints, drafts and
submission through the rater's pages."""
import json
import re

import pytest
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.urls import reverse

from audit.models import AuditEvent
from rating import assignment as assigning
from rating import services
from rating.models import AxisScore, Rating, Rubric
from rating.rubric_files import RUBRIC_DIR, RubricFileError, load_rubric, load_rubric_file
from tests.factories import PASSWORD
from tests.rating.rating_support import build_campaign

MHDASH = RUBRIC_DIR / "mhdash-v1.json"
HX = {"HTTP_HX_REQUEST": "true"}


def _small(**axis_changes) -> dict:
    axis = {"key": "risk", "name": "Risk", "kind": "nominal",
            "categories": [{"key": "none", "label": "None"}, {"key": "high", "label": "High", "high_risk": True}]}
    axis.update(axis_changes)
    return {"slug": "cat", "name": "Categorical", "axes": [axis]}


def test_the_mhdash_rubric_loads_with_its_categories_in_order(db):
    rubric, created = load_rubric_file(MHDASH)
    assert created and rubric.slug == "mhdash"
    risk = rubric.axes.get(key="risk_level")
    assert risk.kind == "nominal" and risk.agreement_level == "nominal" and risk.scale_min is None
    assert risk.category_keys() == ["none", "low", "moderate", "high", "imminent"]
    assert risk.high_risk_keys() == ["high", "imminent"] and risk.reference == "metadata.risk_level"
    assert risk.allowed_values() == [] and risk.is_rated
    assert [a.key for a in rubric.axes.all()] == ["dialog_intent", "concern_type", "risk_level"]
    assert load_rubric_file(MHDASH) == (rubric, False)  # same content: no new version


@pytest.mark.parametrize(("change", "message"), [
    ({"categories": [{"key": "only", "label": "Only"}]}, "axes[0]: nominal axes need 'categories': a list of 2 to 10"),
    ({"categories": [{"key": f"c{i}", "label": "C"} for i in range(11)]}, "a list of 2 to 10"),
    ({"categories": "none,high"}, "axes[0]: nominal axes need 'categories'"),
    ({"categories": [{"key": "none", "label": "None"}, {"key": "none", "label": "Again"}]},
     "axes[0].categories[1]: duplicate category key 'none'"),
    ({"categories": [{"key": "None!", "label": "None"}, {"key": "b", "label": "B"}]},
     "axes[0].categories[0]: 'key' must be lower-case letters"),
    ({"categories": [{"key": "a"}, {"key": "b", "label": "B"}]}, "axes[0].categories[0]: 'label' must be text"),
    ({"categories": [{"key": "a", "label": "A", "high_risk": "yes"}, {"key": "b", "label": "B"}]},
     "axes[0].categories[0]: 'high_risk' must be true or false, got 'yes'"),
    ({"categories": [{"key": "a", "label": "A", "colour": "red"}, {"key": "b", "label": "B"}]},
     "axes[0].categories[0]: unknown field(s) ['colour']"),
    ({"categories": ["a", "b"]}, "axes[0].categories[0]: must be an object"),
    ({"scale": [1, 5]}, "axes[0]: nominal axes take 'categories', not 'scale'"),
    ({"points": [{"value": 1, "label": "x"}]}, "axes[0]: nominal axes take 'categories', not 'points'"),
    ({"agreement_level": "ordinal"}, "analysed at the nominal level"),
    ({"reference": "ground_truth_diagnosis"}, "axes[0]: 'reference' must be \"condition\" or \"metadata.<name>\""),
])
def test_bad_nominal_axes_are_refused_naming_the_field_and_nothing_is_loaded(db, change, message):
    with pytest.raises(RubricFileError) as caught:
        load_rubric(_small(**change))
    assert message in str(caught.value)
    assert not Rubric.objects.filter(slug="cat").exists()


def test_categories_and_reference_on_an_ordinal_axis_are_errors(db):
    data = {"slug": "cat", "name": "C", "axes": [{"key": "x", "kind": "ordinal", "scale": [1, 4],
                                                   "categories": [], "reference": "condition"}]}
    with pytest.raises(RubricFileError) as caught:
        load_rubric(data)
    assert "axes[0]: 'categories' is only for nominal axes" in str(caught.value)
    assert "axes[0]: 'reference' is only for nominal axes" in str(caught.value)


def test_a_bad_file_names_its_json_line(tmp_path, db):
    path = tmp_path / "broken.json"
    path.write_text('{"slug": "x",\n "axes": [\n  {"key": "r", "kind": "nominal",}\n]}')
    with pytest.raises(RubricFileError, match=r"broken.json: not valid JSON \(line 3"):
        load_rubric_file(path)


def test_the_rubrics_page_shows_nominal_errors_and_loads_nothing(admin_client_for_rubrics):
    client = admin_client_for_rubrics
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = _small(categories=[{"key": "a", "label": "A"}])
    upload = SimpleUploadedFile("cat.json", json.dumps(data).encode(), content_type="application/json")
    page = client.post(reverse("campaigns:rubrics"), {"file": upload}).content.decode()
    assert "nominal axes need" in page and not Rubric.objects.filter(slug="cat").exists()


@pytest.fixture
def admin_client_for_rubrics(db, client):
    from accounts.roles import Role
    from tests.factories import make_user

    admin = make_user(Role.ADMIN)
    client.login(request=HttpRequest(), username=admin.username, password=PASSWORD)
    return client


# --- storage -----------------------------------------------------------------------------------------


@pytest.fixture
def nominal(db):
    rubric, _ = load_rubric_file(MHDASH)
    campaign, raters = build_campaign(n_items=3, n_raters=2, k=2, rubric=rubric)
    rater = raters[0]
    return campaign, rater, assigning.next_assignment(campaign, rater)


def _answers(assignment):
    return {s.axis.key: (s.value, s.category)
            for s in AxisScore.objects.filter(rating__assignment=assignment).select_related("axis")}


def test_the_database_refuses_scores_that_do_not_fit_the_axis(nominal, small_campaign):
    campaign, rater, a = nominal
    rating = services.rating_for(a)
    risk = campaign.rubric.axes.get(key="risk_level")
    ordinal_campaign, (ordinal_rater, _, _) = small_campaign
    ordinal_a = assigning.next_assignment(ordinal_campaign, ordinal_rater)
    ordinal_rating = services.rating_for(ordinal_a)
    flow = ordinal_campaign.rubric.axes.get(key="susceptibility")
    bad = [
        dict(rating=rating, axis=risk, value=2.0),  # a number on a nominal axis
        dict(rating=rating, axis=risk, category="extreme"),  # not one of its categories
        dict(rating=rating, axis=risk, category=""),  # empty is not a category
        dict(rating=ordinal_rating, axis=flow, category="high"),  # a category on an ordinal axis
        dict(rating=ordinal_rating, axis=flow, value=3.0, category="high"),  # both
    ]
    for fields in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            AxisScore.objects.create(**fields)
    AxisScore.objects.create(rating=rating, axis=risk, category="high")
    AxisScore.objects.create(rating=ordinal_rating, axis=flow, value=3.0)
    # An update that bypasses the ORM's checks is refused as well.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE rating_axisscore SET category = 'nonsense' WHERE axis_id = %s", [risk.pk])
    assert AxisScore.objects.get(rating=rating).category == "high"


@pytest.fixture
def small_campaign(db):
    return build_campaign(n_items=3, n_raters=3, k=2)


# --- drafts and submission ---------------------------------------------------------------------------


def test_nominal_drafts_save_validate_and_are_idempotent(nominal):
    campaign, rater, a = nominal
    out = services.save_rating_draft(a, rater, services.changes_from_post({
        "value__risk_level": "moderate", "comment__risk_level": "mentions pills", "value__dialog_intent": "3",
        "value__concern_type": "suicide",
    }))
    assert out.errors == {"value__dialog_intent": "“3” is not a category of Dialog intent.",
                          "value__concern_type": "“suicide” is not a category of Concern type."}
    assert _answers(a) == {"risk_level": (None, "moderate")}
    before = Rating.objects.get(assignment=a).updated_at
    services.save_rating_draft(a, rater, services.changes_from_post({"value__risk_level": "moderate"}))
    assert Rating.objects.get(assignment=a).updated_at == before
    services.save_rating_draft(a, rater, services.changes_from_post({"value__risk_level": ""}))  # clear
    assert _answers(a) == {"risk_level": (None, None)}


def test_submit_needs_every_nominal_axis_then_revisions_are_audited(nominal):
    campaign, rater, a = nominal
    with pytest.raises(services.SubmitRejected) as caught:
        services.submit_rating(a, rater, services.changes_from_post({"value__risk_level": "high"}))
    assert caught.value.errors == {"value__dialog_intent": "Choose a category for Dialog intent.",
                                   "value__concern_type": "Choose a category for Concern type."}
    assert _answers(a)["risk_level"] == (None, "high")  # the valid part of the draft is kept
    rating = services.submit_rating(a, rater, services.changes_from_post(
        {"value__dialog_intent": "crisis_help", "value__concern_type": "self_harm"}))
    assert rating.status == "submitted"
    [event] = AuditEvent.objects.filter(action="rating.submit")
    assert event.data["new"]["values"] == {"dialog_intent": "crisis_help", "concern_type": "self_harm",
                                           "risk_level": "high"}
    out = services.save_rating_draft(a, rater, services.changes_from_post({"value__risk_level": "imminent"}))
    assert not out.errors
    [revision] = AuditEvent.objects.filter(action="rating.revise")
    assert (revision.data["old"], revision.data["new"]) == ({"value__risk_level": "high"},
                                                            {"value__risk_level": "imminent"})
    out = services.save_rating_draft(a, rater, services.changes_from_post({"value__risk_level": ""}))
    assert "required" in out.errors["value__risk_level"]


def test_the_rating_page_shows_categories_as_radios_and_saves_and_submits_them(nominal, client):
    campaign, rater, a = nominal
    client.login(request=HttpRequest(), username=rater.username, password=PASSWORD)
    page = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    fieldset = re.search(r'<fieldset[^>]*data-axis="risk_level".*?</fieldset>', page, re.S).group(0)
    assert 'data-kind="nominal"' in fieldset and 'role="radiogroup"' in fieldset
    radios = re.findall(r'<input type="radio" name="value__risk_level" value="(\w+)"[^>]*data-digit="(\d)"',
                        fieldset)
    assert radios == [("none", "1"), ("low", "2"), ("moderate", "3"), ("high", "4"), ("imminent", "5")]
    assert "Thoughts of harm with a plan" in fieldset  # the category's description
    assert "high_risk" not in page and "metadata.risk_level" not in page  # results-only facts stay hidden
    assert "axis of named" in page  # the shortcuts dialog explains digits on categories
    response = client.post(reverse("rating:save", args=[a.pk]), {"value__risk_level": "low"}, **HX)
    assert response.status_code == 200
    page = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert re.search(r'value="low"[^>]*checked', page)
    response = client.post(reverse("rating:submit", args=[a.pk]), {
        "value__dialog_intent": "advice", "value__concern_type": "anxiety", "then": "stop"})
    assert response.status_code == 302
    assert Rating.objects.get(assignment=a).status == "submitted"
    assert _answers(a) == {"risk_level": (None, "low"), "dialog_intent": (None, "advice"),
                           "concern_type": (None, "anxiety")}



def test_the_llm_judge_leaves_nominal_axes_to_clinicians(db):
    from judging.prompts import judged_axes

    rubric, _ = load_rubric_file(MHDASH)
    assert judged_axes(rubric) == []  # every MHDash axis is categorical


def test_gold_answers_are_refused_on_nominal_axes(nominal):
    from rating.campaigns import CampaignError, add_gold

    campaign, rater, a = nominal
    with pytest.raises(CampaignError) as caught:
        add_gold(None, campaign, a.item.conversation_id, {"risk_level": "high"})
    assert "categorical" in caught.value.errors["gold__risk_level"]
    assert not campaign.items.filter(is_gold=True).exists()
