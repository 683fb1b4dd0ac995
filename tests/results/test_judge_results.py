"""Judge-vs-clinician results on the real database: selectors, the snapshot, pages, CSV and SVG, and the
recomputation a finished judge run triggers through a real Celery worker."""
import csv
import io
import time
from xml.etree import ElementTree

import numpy as np
import pytest

from accounts.roles import Role
from judging import events as judging_events
from judging.models import JudgeRun
from rating.rubric_files import load_rubric
from results import judge_selectors, selectors, services
from results.models import JudgeAgreement
from results.stats import unit_means
from results.stats.judge import judge_agreement
from tests.factories import make_conversation, make_user
from tests.judging.judge_fixture import make_judge_run
from tests.results.results_fixture import CONSTANT, build_fixed_campaign
from tests.results.test_results_recompute import _reset_queue
from tests.worker_support import wait_for, worker_thread

# The judge's susceptibility (two samples) and hard diagnosis per conversation of the fixed campaign;
# c6 has no clinician's rating, c3 only one. Sample 1 of c2 failed.
JUDGE = {
    "c1": [(3, 1), (3, 1)],
    "c2": [(4, 0)],
    "c3": [(4, 1), (3, 1)],
    "c4": [(2, 1), (3, 1)],
    "c5": [(1, 0), (2, 0)],
    "c6": [(4, 1), (4, 1)],
}


def judge_scores(fixed):
    scores = {}
    for name, samples in JUDGE.items():
        for i, (sus, hard) in enumerate(samples):
            scores[(fixed.conv[name], i)] = {"susceptibility": sus, "diagnosis_hard": hard, **CONSTANT}
    return scores


@pytest.fixture
def fixed(db):
    return build_fixed_campaign()


@pytest.fixture
def judged(fixed):
    run = make_judge_run(fixed.campaign, judge_scores(fixed), samples=2, failed=[(fixed.conv["c2"], 1)])
    snapshot = services.recompute_campaign(fixed.campaign.pk, n_boot=200, seed=11)
    return fixed, run, snapshot


def test_selector_aligns_samples_with_the_clinicians_conversations(fixed):
    run = make_judge_run(fixed.campaign, judge_scores(fixed), samples=2, failed=[(fixed.conv["c2"], 1)])
    data = selectors.campaign_ratings(fixed.campaign)
    scores = judge_selectors.judge_scores(fixed.campaign, run, data.axes)
    assert scores.n_samples == 2 and scores.conversation_ids.size == 6
    aligned = scores.aligned("susceptibility", data.conversation_ids)  # c1..c5: the rated conversations
    expected = [[3, 3], [4, np.nan], [4, 3], [2, 3], [1, 2]]
    assert np.array_equal(aligned, np.array(expected, dtype=float), equal_nan=True)
    assert list(judge_selectors.campaign_judge_runs(fixed.campaign)) == [run]


def test_only_finished_runs_on_the_campaign_rubric_count_and_filter_runs_too(fixed):
    make_judge_run(fixed.campaign, judge_scores(fixed), status=JudgeRun.Status.RUNNING)
    assert list(judge_selectors.campaign_judge_runs(fixed.campaign)) == []
    other_rubric, _ = load_rubric({"slug": "other", "version": 1, "name": "Other", "axes": [
        {"key": "susceptibility", "name": "S", "kind": "ordinal", "scale": [1, 4]}]})
    make_judge_run(fixed.campaign, {(fixed.conv["c1"], 0): {"susceptibility": 2}}, rubric=other_rubric)
    assert list(judge_selectors.campaign_judge_runs(fixed.campaign)) == []
    outside = make_conversation()  # chosen by the same filter, but not an item of the campaign
    scores = {**judge_scores(fixed), (outside, 0): {"susceptibility": 1}}
    by_filter = make_judge_run(fixed.campaign, scores, attach=False, status=JudgeRun.Status.CANCELLED)
    assert list(judge_selectors.campaign_judge_runs(fixed.campaign)) == [by_filter]
    read = judge_selectors.judge_scores(fixed.campaign, by_filter, selectors.rated_axes(fixed.campaign))
    assert sorted(read.conversation_ids.tolist()) == sorted(c.pk for c in fixed.conv.values())


def test_snapshot_stores_the_judge_statistics_and_leaves_the_clinicians_agreement_alone(fixed):
    before = services.recompute_campaign(fixed.campaign.pk, n_boot=200, seed=11)
    run = make_judge_run(fixed.campaign, judge_scores(fixed), samples=2, failed=[(fixed.conv["c2"], 1)])
    assert selectors.is_stale(before)  # a finished judge run makes the results stale
    after = services.recompute_campaign(fixed.campaign.pk, n_boot=200, seed=11)
    assert not selectors.is_stale(after)
    # The judge is never a clinician: same raters, ratings and agreement as without it.
    assert (after.n_raters, after.n_ratings, after.input_hash) == (before.n_raters, before.n_ratings, before.input_hash)
    for a, b in zip(before.axes.order_by("axis__order"), after.axes.order_by("axis__order"), strict=True):
        assert a.statistics == b.statistics
    stored = JudgeAgreement.objects.get(snapshot=after)
    assert stored.judge_run == run and stored.n_conversations == 6
    assert stored.provenance["judge_model"] == "simulator/judge" and stored.provenance["simulated"] is True
    assert stored.provenance["items"]["failed"] == 1 and stored.provenance["prompt_version"] == "judge-v1"
    # The stored statistics are results.stats.judge on the selectors' matrices (same seed and resamples).
    data = selectors.campaign_ratings(fixed.campaign)
    scores = judge_selectors.judge_scores(fixed.campaign, run, data.axes)
    direct = judge_agreement(data.matrices["susceptibility"], scores.aligned("susceptibility", data.conversation_ids),
                             "ordinal", [1, 2, 3, 4], n_boot=200, seed=11, judge_all=scores.matrices["susceptibility"])
    sus = stored.statistics["susceptibility"]
    assert sus["paired"]["alpha"]["value"] == pytest.approx(direct["paired"]["alpha"]["value"])
    # By hand: judge means c1..c5 = 3, 4, 3.5, 2.5, 1.5; clinicians' means 2.5, 11/3, 4, 3, 1.5.
    bias = np.mean(np.array([3, 4, 3.5, 2.5, 1.5]) - np.array([2.5, 11 / 3, 4, 3, 1.5]))
    assert sus["paired"]["bias"]["value"] == pytest.approx(bias)
    assert sus["paired"]["n_units"] == 5 and sus["one_more_rater"]["n_units"] == 4  # c3 has one clinician
    assert sus["self_consistency"]["n_units"] == 5  # c6 counts (no clinician needed); c2 has one sample
    hard = stored.statistics["diagnosis_hard"]
    assert hard["level"] == "nominal" and hard["one_more_rater"]["level"] == "nominal"
    assert sus["paired"]["ci_note"].startswith("no interval")  # five conversations: no bootstrap interval


def test_per_model_tables_from_the_judge(judged):
    fixed, run, snapshot = judged
    tables = JudgeAgreement.objects.get(snapshot=snapshot).tables["tables"]
    by_model = {(r[0], r[2]): r for r in tables["judge_by_model"]["rows"]}
    # Model vendor/a: c1-c3, judge means 3, 4, 3.5 on susceptibility; vendor/b: c4-c6, 2.5, 1.5, 4.
    assert by_model[("vendor/a", "Perceived susceptibility")][6] == pytest.approx(3.5)
    assert by_model[("vendor/b", "Perceived susceptibility")][6] == pytest.approx(8 / 3)
    side = {(r[0], r[1]): r for r in tables["judge_side_by_side"]["rows"]}
    row = side[("vendor/a", "Perceived susceptibility")]
    clinicians_a = np.mean([2.5, 11 / 3, 4])
    assert row[4] == pytest.approx(clinicians_a) and row[8] == pytest.approx(3.5)
    assert row[11] == pytest.approx(3.5 - clinicians_a)
    assert "from the judge" in tables["judge_summary"]["title"] and "judge_trait_literacy" in tables


@pytest.fixture
def judged_page(judged, client):
    fixed, run, snapshot = judged
    client.force_login(make_user(Role.RESEARCHER))
    return fixed, run, client


def test_results_page_shows_the_judge_section_with_tables_and_figures(judged_page):
    fixed, run, client = judged_page
    page = client.get(f"/results/campaigns/{fixed.campaign.pk}/").content.decode()
    assert 'id="judge"' in page and f'id="judge-run-{run.pk}"' in page
    assert "Judge against the clinicians&#x27; mean per axis" in page or "Judge against the clinicians' mean" in page
    assert "The judge as one more rater" in page and "Judge self-consistency across samples" in page
    assert "mean of its samples" in page and "first sample" in page
    assert f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/tables/judge_vs_clinicians.csv" in page
    assert f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/figures/scatter-susceptibility.svg" in page
    assert "simulator/judge [simulated]" in page


def test_per_model_source_selector_shows_humans_judge_or_both(judged_page):
    fixed, run, client = judged_page
    url = f"/results/campaigns/{fixed.campaign.pk}/"
    humans = client.get(url).content.decode()
    assert f'value="judge-{run.pk}"' in humans and f'value="both-{run.pk}"' in humans
    assert "from the judge" not in humans.split('id="judge"')[0]
    judge = client.get(url, {"source": f"judge-{run.pk}"}).content.decode()
    results_part = judge.split('id="results"')[1].split('id="judge"')[0]
    assert "Summary by model (the paper&#x27;s layout): from the judge" in results_part
    assert f'id="table-judge_summary-{run.pk}"' in results_part and 'id="table-summary"' not in results_part
    both = client.get(url, {"source": f"both-{run.pk}"}).content.decode()
    results_part = both.split('id="results"')[1].split('id="judge"')[0]
    assert 'id="table-summary"' in results_part and f'id="table-judge_summary-{run.pk}"' in results_part
    assert "clinicians and judge side by side" in results_part
    # An unknown source falls back to the clinicians.
    assert client.get(url, {"source": "judge-999999"}).status_code == 200


def test_judge_tables_download_as_csv_with_the_stored_numbers(judged_page):
    fixed, run, client = judged_page
    stored = JudgeAgreement.objects.get(judge_run=run).tables["tables"]
    for name in ("judge_vs_clinicians", "judge_as_rater", "judge_self_consistency", "judge_side_by_side",
                 "judge_summary", "judge_by_model", "judge_trait_literacy"):
        response = client.get(f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/tables/{name}.csv")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0] == [c["label"] for c in stored[name]["columns"]]
        assert len(rows) - 1 == len(stored[name]["rows"])
    rows = list(csv.reader(io.StringIO(client.get(
        f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/tables/judge_vs_clinicians.csv").content.decode())))
    sus = next(r for r in rows if r[0] == "Perceived susceptibility")
    bias = JudgeAgreement.objects.get(judge_run=run).statistics["susceptibility"]["paired"]["bias"]["value"]
    assert float(sus[rows[0].index("Bias (judge - clinicians)")]) == bias
    base = f"/results/campaigns/{fixed.campaign.pk}/judge"
    assert client.get(f"{base}/{run.pk}/tables/nope.csv").status_code == 404
    assert client.get(f"{base}/999999/tables/judge_as_rater.csv").status_code == 404


def test_judge_figures_are_svg_with_n_points_and_the_bias_lines(judged_page):
    fixed, run, client = judged_page
    base = f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/figures"
    ns = {"s": "http://www.w3.org/2000/svg"}
    root = ElementTree.fromstring(client.get(f"{base}/scatter-susceptibility.svg").content)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "n = 5 conversations" in texts
    points = root.findall(".//s:circle[@class='pt']", ns)
    # Five conversations with distinct (clinicians' mean, judge) pairs: five points.
    assert len(points) == 5
    assert root.findall(".//s:line[@class='identity']", ns)
    ba = ElementTree.fromstring(client.get(f"{base}/bland-altman-susceptibility.svg").content)
    for cls in ("bias", "loa_low", "loa_high"):
        assert ba.findall(f".//s:line[@class='{cls}']", ns), cls
    assert any("n = 5 conversations" == "".join(t.itertext()) for t in ba.iter("{http://www.w3.org/2000/svg}text"))
    download = client.get(f"{base}/scatter-susceptibility.svg", {"download": "1"})
    assert "attachment" in download["Content-Disposition"]
    assert client.get(f"{base}/scatter-nope.svg").status_code == 404


def test_snapshot_json_holds_the_judge_statistics(judged_page):
    fixed, run, client = judged_page
    payload = client.get(f"/results/campaigns/{fixed.campaign.pk}/snapshot.json").json()
    (judge,) = payload["judges"]
    assert judge["run"]["run_id"] == run.pk and judge["run"]["prompt_version"] == "judge-v1"
    stored = JudgeAgreement.objects.get(judge_run=run)
    assert judge["statistics"] == stored.statistics and "judge_vs_clinicians" in judge["tables"]
    assert "paired.alpha" in payload["judge_definitions"]
    assert payload["snapshot"]["n_raters"] == 3  # the judge is not a rater


def test_raters_get_nothing_of_the_judge_results(judged, client):
    fixed, run, _ = judged
    client.force_login(fixed.raters[0])
    for url in (f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/tables/judge_vs_clinicians.csv",
                f"/results/campaigns/{fixed.campaign.pk}/judge/{run.pk}/figures/scatter-susceptibility.svg",
                f"/results/campaigns/{fixed.campaign.pk}/?source=judge-{run.pk}"):
        assert client.get(url).status_code in (403, 404), url


def test_page_without_a_judge_run_says_so(fixed, client):
    services.recompute_campaign(fixed.campaign.pk, n_boot=50)
    client.force_login(make_user(Role.ADMIN))
    page = client.get(f"/results/campaigns/{fixed.campaign.pk}/").content.decode()
    assert "No finished judge run has scored" in page and 'name="source"' not in page


def test_compacted_snapshots_keep_judge_statistics_without_tables(judged):
    fixed, run, first = judged
    for _ in range(services.KEEP_FULL_SNAPSHOTS):
        services.recompute_campaign(fixed.campaign.pk, n_boot=20)
    old = JudgeAgreement.objects.get(snapshot=first)
    assert old.tables == {} and old.statistics["susceptibility"]["paired"]["n_units"] == 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_finished_judge_run_is_recomputed_by_a_real_worker():
    fixed = build_fixed_campaign()
    campaign_id = fixed.campaign.pk
    _reset_queue(campaign_id)
    with worker_thread(concurrency=2):
        services.schedule_recompute(campaign_id, delay=0)
        wait_for(lambda: selectors.latest_snapshot(campaign_id) is not None, timeout=60, message="first snapshot")
        wait_for(lambda: not services.is_pending(campaign_id), timeout=30, message="the pending flag to clear")
        first = selectors.latest_snapshot(campaign_id)
        assert not first.judge_agreements.exists()
        run = make_judge_run(fixed.campaign, judge_scores(fixed), samples=2, attach=False)
        # What the judge-run task calls when the run finishes: every campaign it scored is recomputed.
        assert services.judge_run_finished(run.pk) == [campaign_id]
        wait_for(lambda: JudgeAgreement.objects.filter(judge_run=run).exists(), timeout=60,
                 message="the judge's statistics")
        # The same through judging's event, the way judging (which may not import results) tells it.
        _reset_queue(campaign_id)
        second = make_judge_run(fixed.campaign, judge_scores(fixed), samples=1)
        judging_events.judge_run_finished(second.pk)
        wait_for(lambda: JudgeAgreement.objects.filter(judge_run=second).exists(), timeout=60,
                 message="the second run's statistics, through judging.events")
        latest = selectors.latest_snapshot(campaign_id)
        assert latest.pk != first.pk and not selectors.is_stale(latest)
        time.sleep(0.5)
    assert services.judge_run_finished(999999) == []
    assert unit_means(np.array([[1.0, 3.0]]))[0] == 2.0
