"""Agreement of clinicians with the judge (validation mode): the statistic against hand-computed values,
the interval method by size, and the same numbers on the page, in the CSV and in the API."""
import csv
import io

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from judging import validation
from rating import assignment as assigning
from results.validation_reporting import (
    Verdict,
    agreement_rate,
    agreement_rates,
    cluster_bootstrap_interval,
    wilson_interval,
)
from tests.factories import make_token, make_user
from tests.judging.validation_support import all_agree, build_validation


def test_wilson_matches_published_values():
    # 7 of 10: 0.3968-0.8922 (Wilson 1927; the values in Newcombe 1998, table I, and scipy's binomtest).
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert wilson_interval(0, 5) == (0.0, pytest.approx(0.4345, abs=1e-4))
    assert wilson_interval(5, 5) == (pytest.approx(0.5655, abs=1e-4), 1.0)


def test_small_campaigns_get_wilson_and_large_ones_the_seeded_conversation_bootstrap():
    few = [Verdict(c, "flow", c % 3 != 0, 2.0, None if c % 3 else 4.0) for c in range(12)]
    r = agreement_rate(few, "flow", "Flow")
    assert (r.n_verdicts, r.n_agree, r.n_disagree, r.n_conversations) == (12, 8, 4, 12)
    assert r.rate == pytest.approx(8 / 12)
    assert (r.ci_low, r.ci_high) == wilson_interval(8, 12) and r.ci_method.startswith("Wilson")
    assert r.mean_correction == pytest.approx(2.0)

    # 40 conversations x 2 verdicts; in 30 both agree, in 10 one of the two does.
    many = [Verdict(c, "flow", not (c >= 30 and i == 1), 3.0, 1.0 if c >= 30 and i == 1 else None)
            for c in range(40) for i in range(2)]
    r = agreement_rate(many, "flow", "Flow", n_boot=1000, seed=20260521)
    assert r.rate == pytest.approx(70 / 80) and r.ci_method.startswith("bootstrap over conversations")
    assert r.ci_low < r.rate < r.ci_high
    # The same resampling written out: conversations drawn with replacement, verdicts come along.
    agree = np.array([2.0] * 30 + [1.0] * 10)
    n = np.full(40, 2.0)
    assert (r.ci_low, r.ci_high) == cluster_bootstrap_interval(agree, n, 1000, 20260521)
    assert agreement_rate(many, "flow", "Flow", n_boot=1000, seed=20260521) == r  # seeded: reproducible
    assert r.mean_correction == pytest.approx(-2.0)
    everyone = [Verdict(c, "flow", True, 3.0, None) for c in range(40)]
    perfect = agreement_rate(everyone, "flow", "Flow", n_boot=200)
    assert (perfect.rate, perfect.ci_low, perfect.ci_high) == (1.0, 1.0, 1.0)


@pytest.fixture
def reviewed(db):
    """3 conversations x 2 clinicians. Clinician 1 agrees everywhere; clinician 2 disagrees on flow in
    the first and third conversation they get (corrections 4 and 3; the judge said 1)."""
    v, raters = build_validation(n_items=3, n_raters=2, k=2)
    for rater_no, rater in enumerate(raters):
        for i in range(3):
            a = assigning.next_assignment(v.campaign, rater)
            fields = all_agree(v)
            if rater_no == 1 and i in (0, 2):
                fields.update({"verdict__flow": "disagree", "value__flow": "4" if i == 0 else "3"})
            changes, verdicts = validation.verdict_changes_from_post(fields)
            validation.submit_review(a, rater, changes, verdicts)
    return v


def test_rates_from_submitted_reviews_equal_the_hand_count(reviewed):
    rows = {r.axis_key: r for r in agreement_rates(reviewed.campaign_id)}
    flow = rows["flow"]
    # 6 verdicts on flow, 4 agree: 0.667, Wilson(4, 6) below 30 conversations; corrections +3 and +2.
    assert (flow.n_verdicts, flow.n_agree, flow.n_conversations) == (6, 4, 3)
    assert flow.rate == pytest.approx(4 / 6)
    assert (flow.ci_low, flow.ci_high) == pytest.approx(wilson_interval(4, 6))
    assert flow.mean_correction == pytest.approx(2.5)
    assert rows["severity"].rate == 1.0 and rows["severity"].mean_correction is None
    # Seven judged axes (SMOG is computed, never judged): 42 verdicts, 40 agreeing.
    assert len(rows) == 8 and (rows["all"].n_verdicts, rows["all"].n_agree) == (42, 40)


def test_page_csv_and_api_show_the_same_rates(reviewed):
    pk = reviewed.campaign_id
    researcher = make_user(Role.RESEARCHER)
    client = Client()
    client.force_login(researcher)
    page = client.get(reverse("validation_results:campaign", args=[pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Wilson over verdicts" in html and "0.667" in html and "2.50" in html
    sheet = client.get(reverse("validation_results:agreement_csv", args=[pk]))
    rows = list(csv.reader(io.StringIO(sheet.content.decode())))
    flow = next(r for r in rows if r[0] == "flow")
    assert flow[2:6] == ["6", "3", "4", str(4 / 6)] and float(flow[10]) == 2.5
    api = Client().get(f"/api/v1/campaigns/{pk}/judge-validation",
                       HTTP_AUTHORIZATION=f"Bearer {make_token(researcher)}").json()
    by_key = {a["axis_key"]: a for a in api["axes"]}
    assert by_key["flow"]["rate"] == pytest.approx(4 / 6) and by_key["flow"]["n_verdicts"] == 6
    assert api["judge_run"]["id"] == reviewed.judge_run_id and "Wilson" in api["method"]
    # A campaign that is not in validation mode has no such report.
    assert client.get(reverse("validation_results:campaign", args=[pk + 999])).status_code == 404
