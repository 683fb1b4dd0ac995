"""A campaign on the MHDash-style categorical rubric, rated through the real rating services: the snapshot's
nominal tables and confusion heat maps (numbers worked out by hand below), the results page, CSV and SVG
downloads, the API agreement endpoint and the exports, and who may see each of them."""
import csv
import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from rating import services as rating_services
from rating.rubric_files import RUBRIC_DIR, load_rubric_file
from results import figures, services
from results.stats import krippendorff_alpha
from results.stats.nominal import wilson_interval
from tests.factories import make_assignment, make_campaign, make_conversation, make_job, make_token, make_user

SVG = "{http://www.w3.org/2000/svg}"
nan = np.nan
# Reference risk level (conversation metadata) and each rater's label; "-" = not rated by that rater.
#   conv  reference  rater1    rater2    rater3
#   c1    none       none      none      -
#   c2    low        low       moderate  -
#   c3    high       high      high      imminent
#   c4    imminent   -         high      moderate
#   c5    moderate   moderate  -         moderate
#   c6    (none)     low       low       -
#   c7    "severe"   none      -         -          (not a category: left out, counted)
REFERENCE = ["none", "low", "high", "imminent", "moderate", None, "severe"]
LABELS = [
    ["none", "none", None], ["low", "moderate", None], ["high", "high", "imminent"], [None, "high", "moderate"],
    ["moderate", None, "moderate"], ["low", "low", None], ["none", None, None],
]
CODES = {"none": 0, "low": 1, "moderate": 2, "high": 3, "imminent": 4}


@pytest.fixture
def computed(db):
    rubric, _ = load_rubric_file(RUBRIC_DIR / "mhdash-v1.json")
    job = make_job()
    raters = [make_user(Role.RATER) for _ in range(3)]
    conversations = []
    for ref in REFERENCE:
        metadata = {} if ref is None else {"risk_level": ref}
        conversations.append(make_conversation(job=job, n_messages=4, provenance={"metadata": metadata}))
    campaign = make_campaign(raters=raters, conversations=conversations, k=3, rubric=rubric)
    for conv, labels in zip(conversations, LABELS, strict=True):
        for rater, label in zip(raters, labels, strict=True):
            if label is None:
                continue
            assignment = make_assignment(campaign, rater, campaign.items.get(conversation=conv))
            rating_services.submit_rating(assignment, rater, rating_services.DraftChanges(values={
                "risk_level": label, "dialog_intent": "information", "concern_type": "none"}))
    snapshot = services.recompute_campaign(campaign.pk, n_boot=200)
    return campaign, raters, snapshot


def _rows(table, axis="Risk level"):
    return [row for row in table["rows"] if row[0] == axis]


def test_the_snapshot_holds_the_hand_computed_nominal_figures(computed):
    campaign, raters, snapshot = computed
    tables = snapshot.tables["tables"]
    stats = snapshot.axes.get(axis_key="risk_level").statistics
    matrix = np.array([[nan if v is None else CODES[v] for v in row] for row in LABELS])
    assert stats["krippendorff_alpha"]["alpha"] == pytest.approx(
        krippendorff_alpha(matrix, "nominal", range(5), n_boot=0)["alpha"])
    assert all(r["leniency"] is None for r in stats["raters"])  # no order between categories
    nominal = stats["nominal"]
    # Pairs in both orders: c1 2 x (none, none); c2 (low, moderate) both ways; c3 2 x (high, high) and
    # 2 x (high, imminent) both ways; c4 (high, moderate) both ways; c5 2 x moderate; c6 2 x low.
    assert nominal["pair_confusion"] == [
        [2, 0, 0, 0, 0], [0, 2, 1, 0, 0], [0, 1, 2, 1, 0], [0, 0, 1, 2, 2], [0, 0, 0, 2, 0]]
    ref = nominal["reference"]
    # Rows = reference: none <- 2 x none; low <- low, moderate; moderate <- 2 x moderate;
    # high <- high, high, imminent; imminent <- high, moderate. c6 has none, c7's "severe" is no category.
    assert ref["confusion"] == [
        [2, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 2, 0, 0], [0, 0, 0, 2, 1], [0, 0, 1, 1, 0]]
    assert ref["agreement"] == pytest.approx(7 / 11) and ref["n_conversations"] == 5
    assert ref["n_not_a_category"] == 1 and nominal["reference_source"] == "metadata.risk_level"
    # High-risk reference: c3 (3 of 3 raters said high or imminent) and c4 (1 of 2) -> (1 + 0.5)/2.
    recall = ref["high_risk_recall"]
    assert recall["recall"] == pytest.approx(0.75) and (recall["n_high_risk_labels"], recall["n_ratings"]) == (4, 5)
    assert (recall["wilson_low"], recall["wilson_high"]) == pytest.approx(wilson_interval(4, 5))
    # The other two axes name a reference that these conversations lack, and nobody disagreed.
    intent = snapshot.axes.get(axis_key="dialog_intent").statistics
    assert intent["nominal"]["reference"] is None and intent["krippendorff_alpha"]["alpha"] is None

    [agree] = _rows(tables["nominal_agreement"])
    assert agree[1:5] == [5, 6, 3, 14] and agree[5] == pytest.approx(stats["krippendorff_alpha"]["alpha"])
    assert agree[8] == pytest.approx(nominal["gwet_ac1"]["coefficient"])
    assert agree[12] == pytest.approx(100 * 7 / 11)
    [recall_row] = _rows(tables["high_risk_recall"])
    assert recall_row[1:7] == ["High, Imminent", "metadata.risk_level", 2, 5, 4, pytest.approx(75.0)]
    assert ["Risk level", "reference vs rater", "Imminent", "High", 1] in tables["confusion"]["rows"]
    # Means and model comparisons are for numbers: no categorical axis there.
    assert not any("Risk level" in str(row) for row in tables["summary"]["rows"])


def test_ordinal_campaign_snapshots_have_no_nominal_tables(db):
    from tests.results.results_fixture import build_fixed_campaign

    fixed = build_fixed_campaign()
    snapshot = services.recompute_campaign(fixed.campaign.pk, n_boot=50)
    assert not {"nominal_agreement", "confusion", "high_risk_recall"} & set(snapshot.tables["tables"])
    assert "confusion" not in snapshot.tables["figures"]
    assert all("nominal" not in (row.statistics or {}) for row in snapshot.axes.all())


def _nominal_urls(campaign, snapshot):
    pk = campaign.pk
    specs = figures.figure_specs(snapshot)
    names = [name for name, section, _ in specs if section == "nominal"]
    # Kappa heat maps and drift plots exist for categorical axes too; they have no means or distributions.
    assert {"kappa-risk_level", "rater-agreement-risk_level"} <= {name for name, _, _ in specs}
    assert not any(name.startswith(("distribution-risk", "length-risk", "means-")) for name, _, _ in specs)
    assert names == ["confusion-dialog_intent", "confusion-concern_type", "confusion-risk_level",
                     "confusion-reference-risk_level"]
    return ([reverse("results:campaign", args=[pk])]
            + [reverse("results:table_csv", args=[pk, t]) for t in ("nominal_agreement", "confusion",
                                                                     "high_risk_recall")]
            + [reverse("results:figure", args=[pk, n]) for n in names])


def test_researchers_and_admins_see_the_categorical_section_and_its_downloads(computed):
    campaign, raters, snapshot = computed
    urls = _nominal_urls(campaign, snapshot)
    for role in (Role.RESEARCHER, Role.ADMIN):
        client = Client()
        client.force_login(make_user(role))
        for url in urls:
            assert client.get(url).status_code == 200, url
        page = client.get(urls[0]).content.decode()
        assert 'id="categorical"' in page and "Categorical axes: high-risk recall" in page
        assert 'id="figure-confusion-reference-risk_level"' in page
        assert "Rater-by-rater kappa: Risk level" in page
    svg = client.get(reverse("results:figure", args=[campaign.pk, "confusion-reference-risk_level"])).content
    root = ET.fromstring(svg)
    cells = root.findall(f".//{SVG}rect[@class='cell']") + root.findall(f".//{SVG}rect[@class='cell diag']")
    assert len(cells) == 25
    assert "n=11" in svg.decode() and "reference (metadata.risk_level)" in svg.decode()
    body = client.get(reverse("results:table_csv", args=[campaign.pk, "confusion"])).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["Axis", "Comparison", "Row", "Column", "Count"]
    assert ["Risk level", "rater vs rater", "High", "Imminent", "2"] in rows


def test_anonymous_users_and_raters_get_nothing_nominal(computed):
    campaign, raters, snapshot = computed
    urls = _nominal_urls(campaign, snapshot)
    anonymous = Client()
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    outsider = make_user(Role.RATER)  # another rater, not in this campaign
    for rater in (raters[0], outsider):
        client = Client()
        client.force_login(rater)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 403, url
            assert b"Risk level" not in response.content


def test_the_api_agreement_endpoint_returns_the_nominal_figures_to_readers_only(computed):
    campaign, raters, snapshot = computed
    url = f"/api/v1/campaigns/{campaign.pk}/agreement"
    for role in (Role.RESEARCHER, Role.ADMIN):
        token = make_token(make_user(role))
        body = Client().get(url, headers={"Authorization": f"Bearer {token}"}).json()
        risk = next(a for a in body["axes"] if a["axis"] == "risk_level")
        assert risk["level"] == "nominal"
        assert risk["statistics"]["nominal"]["reference"]["confusion"][3] == [0, 0, 0, 2, 1]
        # Computed on request with another n_boot: the same point figures as the snapshot's.
        fresh = Client().get(url, {"n_boot": 150}, headers={"Authorization": f"Bearer {token}"}).json()
        assert fresh["source"] in ("computed", "cache")
        fresh_risk = next(a for a in fresh["axes"] if a["axis"] == "risk_level")["statistics"]["nominal"]
        stored = risk["statistics"]["nominal"]
        assert fresh_risk["pair_confusion"] == stored["pair_confusion"]
        assert fresh_risk["reference"]["confusion"] == stored["reference"]["confusion"]
        assert fresh_risk["gwet_ac1"]["coefficient"] == stored["gwet_ac1"]["coefficient"]
        assert fresh_risk["reference"]["high_risk_recall"]["recall"] == 0.75
    rater_token = make_token(raters[0])
    response = Client().get(url, headers={"Authorization": f"Bearer {rater_token}"})
    assert response.status_code == 403 and b"risk_level" not in response.content
    assert Client().get(url).status_code in (401, 403)


def test_exports_carry_the_category_keys(computed):
    campaign, raters, snapshot = computed
    headers = {"Authorization": f"Bearer {make_token(make_user(Role.RESEARCHER))}"}
    url = f"/api/v1/campaigns/{campaign.pk}/export"

    def get(fmt, **extra):
        response = Client().get(url, {"format": fmt, **extra}, headers=headers)
        assert response.status_code == 200, response
        return b"".join(response.streaming_content)

    records = [json.loads(line) for line in get("jsonl").splitlines()]
    labelled = sorted(s["category"] for r in records for rating in r["ratings"] for s in rating["scores"]
                      if s["axis"] == "risk_level")
    assert labelled == sorted(v for row in LABELS for v in row if v is not None)
    assert all(s["value"] is None for r in records for rating in r["ratings"] for s in rating["scores"])
    assert not any(a["axis"] == "risk_level" for r in records for a in r["aggregate"])  # no mean of categories
    rows = list(csv.DictReader(io.StringIO(get("csv").decode())))
    risk = [row for row in rows if row["axis"] == "risk_level"]
    assert len(risk) == 14 and {row["value"] for row in risk} == {""} and "imminent" in {r["category"] for r in risk}
    table = pq.read_table(io.BytesIO(get("parquet")))
    scores = [s for ratings in table.column("ratings").to_pylist() for r in ratings for s in r["scores"]]
    assert table.schema.field("ratings").type.value_type.field("scores").type.value_type.field(
        "category").type == pa.string()
    assert sorted(s["category"] for s in scores if s["axis"] == "risk_level") == labelled
