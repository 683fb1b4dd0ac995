"""Results pages: who may see them (raters get nothing, CSV and SVG included), what they show, and that
every table downloads as CSV with the stored numbers."""
import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import AuditEvent
from core.redis_client import get_redis
from rating.models import Rating
from results import figures, services
from results.models import AgreementSnapshot
from results.stats.alpha import MIN_CI_UNITS
from tests.factories import make_user
from tests.results.results_fixture import MODEL_A, build_fixed_campaign, submit

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def computed(db):
    fixed = build_fixed_campaign()
    fixed.snapshot = services.recompute_campaign(fixed.campaign.pk, n_boot=100)
    return fixed


def results_urls(fixed):
    pk = fixed.campaign.pk
    urls = [reverse("results:index"), reverse("results:campaign", args=[pk]), reverse("results:status", args=[pk]),
            reverse("results:snapshot_json", args=[pk])]
    urls += [reverse("results:table_csv", args=[pk, name]) for name in fixed.snapshot.tables["tables"]]
    urls.append(reverse("results:table_csv", args=[pk, "alpha_history"]))
    urls += [reverse("results:figure", args=[pk, name]) for name, _, _ in figures.figure_specs(fixed.snapshot)]
    return urls


def test_raters_get_nothing_from_any_results_url(computed, client):
    urls = results_urls(computed)
    assert len(urls) > 30  # every table and every figure of the campaign
    for rater in computed.raters:  # raters of this very campaign
        client.force_login(rater)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 403, url
            assert b"Perceived susceptibility" not in response.content
        response = client.post(reverse("results:recompute", args=[computed.campaign.pk]))
        assert response.status_code == 403
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_researchers_and_admins_see_everything(computed, client):
    for role in (Role.RESEARCHER, Role.ADMIN):
        client.force_login(make_user(role))
        for url in results_urls(computed):
            assert client.get(url).status_code == 200, url


def test_only_admins_may_recompute(computed, client):
    url = reverse("results:recompute", args=[computed.campaign.pk])
    get_redis().delete(services.pending_key(computed.campaign.pk))
    client.force_login(make_user(Role.RESEARCHER))
    assert client.post(url).status_code == 403
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("results:campaign",
                                                                          args=[computed.campaign.pk])
    assert services.is_pending(computed.campaign.pk)  # queued for the worker, not computed in the request
    assert AuditEvent.objects.filter(action="results.recompute", actor=admin).exists()
    page = client.get(response["Location"]).content.decode()
    assert "Recomputation queued" in page and "Recomputing" in page


def test_page_shows_agreement_results_and_the_averaging_rule(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    page = client.get(reverse("results:campaign", args=[computed.campaign.pk])).content.decode()
    assert "averaged per conversation across its raters first" in page
    assert "Krippendorff&#x27;s alpha" in page or "Krippendorff's alpha" in page
    assert "0.600" in page  # hard diagnostic accuracy alpha, worked out in test_results_tables
    assert MODEL_A in page and "Up to date" in page
    assert "Recompute now" not in page  # researchers read, admins recompute
    assert computed.raters[0].pseudonym in page and computed.raters[0].username not in page
    # Every figure is inline SVG.
    assert page.count("<svg ") == len(figures.figure_specs(computed.snapshot))
    # After another rating the page says its figures are out of date.
    submit(computed.campaign, computed.conv["c3"], computed.raters[0], 4, 0)
    page = client.get(reverse("results:campaign", args=[computed.campaign.pk])).content.decode()
    assert "Out of date" in page


def test_page_states_how_the_interval_was_made_and_shows_none_for_too_few_conversations(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    page = client.get(reverse("results:campaign", args=[computed.campaign.pk])).content.decode()
    method = page[page.index('id="bootstrap-method"'):].split("</p>")[0]
    for words in ("percentile bootstrap", "resampled with replacement", "100 resamples",
                  f"seed {computed.snapshot.seed}", f"fewer than {MIN_CI_UNITS}"):
        assert words in method
    # Four conversations with two or more ratings: alpha is shown, its interval is not.
    hard = computed.snapshot.axes.get(axis_key="diagnosis_hard")
    assert hard.alpha == pytest.approx(0.6) and hard.alpha_ci_low is None and hard.alpha_ci_high is None
    assert "4 units with two or more ratings" in hard.statistics["krippendorff_alpha"]["ci_note"]
    agreement = computed.snapshot.tables["tables"]["agreement"]
    assert "seed" in agreement["note"] and "(bootstrap)" in agreement["columns"][6]["label"]


def test_admins_see_who_is_who(computed, client):
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("results:campaign", args=[computed.campaign.pk])).content.decode()
    assert "Recompute now" in page and "Who is who" in page
    assert computed.raters[0].username in page


def test_a_campaign_without_results_says_so(db, client):
    from tests.factories import make_campaign

    campaign = make_campaign()
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("results:campaign", args=[campaign.pk])).content.decode()
    assert "Not computed yet" in page
    assert client.get(reverse("results:table_csv", args=[campaign.pk, "agreement"])).status_code == 404
    assert client.get(reverse("results:figure", args=[campaign.pk, "alpha-over-time"])).status_code == 404
    assert client.get(reverse("results:snapshot_json", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("results:campaign", args=[campaign.pk + 999])).status_code == 404


def test_every_table_downloads_as_csv_with_the_stored_numbers(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    pk = computed.campaign.pk
    for name, table in computed.snapshot.tables["tables"].items():
        response = client.get(reverse("results:table_csv", args=[pk, name]))
        assert response["Content-Type"].startswith("text/csv")
        assert f'filename="campaign-{pk}-{name}.csv"' in response["Content-Disposition"]
        parsed = list(csv.reader(io.StringIO(response.content.decode())))
        assert parsed[0] == [c["label"] for c in table["columns"]]
        assert len(parsed) == 1 + len(table["rows"])
        for got, row in zip(parsed[1:], table["rows"], strict=True):
            for cell, value in zip(got, row, strict=True):
                if value is None:
                    assert cell == ""
                elif isinstance(value, float):
                    assert float(cell) == value  # full precision, not the page's rounding
                else:
                    assert cell == str(value)
    by_model = client.get(reverse("results:table_csv", args=[pk, "by_model"])).content.decode()
    row = next(r for r in csv.DictReader(io.StringIO(by_model))
               if r["Model"] == MODEL_A and r["Axis"] == "Perceived susceptibility")
    assert float(row["Mean"]) == pytest.approx(61 / 18)
    history = list(csv.reader(io.StringIO(
        client.get(reverse("results:table_csv", args=[pk, "alpha_history"])).content.decode())))
    assert len(history) == 1 + 7  # one snapshot x seven rated axes
    assert client.get(reverse("results:table_csv", args=[pk, "no_such_table"])).status_code == 404


def test_json_download_has_every_statistic(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    body = json.loads(client.get(reverse("results:snapshot_json", args=[computed.campaign.pk])).content)
    assert body["snapshot"]["id"] == computed.snapshot.pk and body["snapshot"]["n_boot"] == 100
    hard = next(a for a in body["axes"] if a["axis"] == "diagnosis_hard")
    assert hard["statistics"]["krippendorff_alpha"]["alpha"] == pytest.approx(0.6)
    assert "krippendorff_alpha" in body["definitions"] and body["drift_rule"]


def test_figures_are_valid_svg_with_one_mark_per_datum(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    pk = computed.campaign.pk

    def svg(name):
        response = client.get(reverse("results:figure", args=[pk, name]))
        assert response["Content-Type"].startswith("image/svg+xml")
        return ET.fromstring(response.content)

    def marks(root, tag, cls):
        return [e for e in root.iter(f"{SVG}{tag}") if cls in (e.get("class") or "").split()]

    # Means on the 1-4 scale: 5 ordinal axes x 2 models, each with a CI bar where n >= 2.
    means = svg("means-1-to-4")
    assert len(marks(means, "rect", "bar")) == 10
    assert len(marks(means, "line", "err")) == 10
    assert len(marks(svg("means-percent"), "rect", "bar")) == 4  # hard and soft accuracy x 2 models
    # Kappa heat map: 3 raters -> 3 x 3 cells, the diagonal marked.
    heat = svg("kappa-susceptibility")
    assert len(marks(heat, "rect", "cell")) == 9 and len(marks(heat, "rect", "diag")) == 3
    # Distribution: 4 scores x 2 models; score vs length: 3 lengths for model a + 2 for b.
    assert len(marks(svg("distribution-susceptibility"), "rect", "bar")) == 8
    assert len(marks(svg("length-susceptibility"), "circle", "pt")) == 5
    # Alpha as the ratings came in: one point per step of submissions where alpha is defined, placed at
    # the submission time of the step's last rating, whatever the number of recomputations.
    timeline = computed.snapshot.tables["figures"]["alpha_time"]
    assert set(timeline) == {"susceptibility", "diagnosis_hard"}  # the axes where raters disagree at all
    defined = sum(p["alpha"] is not None for points in timeline.values() for p in points)
    over_time = svg("alpha-over-time")
    assert len(marks(over_time, "circle", "pt")) == defined
    submitted = {r.submitted_at.timestamp() for r in Rating.objects.filter(
        assignment__campaign=computed.campaign, status=Rating.Status.SUBMITTED)}
    for key, points in timeline.items():
        assert {p["time"] for p in points} <= submitted
        assert points[-1]["n_ratings"] == 10 and points[-1]["n_units"] == 4
        assert points[-1]["alpha"] == computed.snapshot.axes.get(axis_key=key).alpha  # the headline figure
    texts = [t.text for t in over_time.iter(f"{SVG}text")]
    assert "n=4" in [t.text for t in marks(over_time, "text", "n")]
    assert "Perceived susceptibility (n = 4 conversations, 3 raters)" in texts
    services.recompute_campaign(pk, n_boot=100)
    assert len(marks(svg("alpha-over-time"), "circle", "pt")) == defined
    # Each rater's agreement with the others, by window of their ratings: one point per rater here
    # (fewer than a window of ratings each), its n printed.
    drift = svg("rater-agreement-susceptibility")
    assert len(marks(drift, "circle", "pt")) == 3
    assert {t.text for t in marks(drift, "text", "n")} == {"n=3"}
    assert client.get(reverse("results:figure", args=[pk, "kappa-no-such-axis"])).status_code == 404
    download = client.get(reverse("results:figure", args=[pk, "alpha-over-time"]), {"download": "1"})
    assert "attachment" in download["Content-Disposition"]


def test_status_fragment_reports_new_results(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    url = reverse("results:status", args=[computed.campaign.pk])
    get_redis().delete(services.pending_key(computed.campaign.pk))
    assert "Up to date" in client.get(url, {"shown": computed.snapshot.pk}).content.decode()
    newer = services.recompute_campaign(computed.campaign.pk, n_boot=10)
    assert AgreementSnapshot.objects.filter(campaign=computed.campaign).count() == 2
    assert "New results ready" in client.get(url, {"shown": computed.snapshot.pk}).content.decode()
    assert "Up to date" in client.get(url, {"shown": newer.pk}).content.decode()


def test_index_lists_campaigns_with_their_results(computed, client):
    client.force_login(make_user(Role.RESEARCHER))
    page = client.get(reverse("results:index")).content.decode()
    assert reverse("results:campaign", args=[computed.campaign.pk]) in page
    assert "(10 ratings)" in page
