"""From submitted ratings in the database to reliability matrices: missing ratings are NaN, drafts do not
count, categories come from the rubric, and the whole campaign is read in a fixed number of queries."""
import numpy as np
import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from generation.models import Conversation
from rating import services as rating_services
from results import selectors, services
from results.services import recompute_campaign
from tests.factories import make_conversation
from tests.results.results_fixture import build_fixed_campaign, submit

nan = np.nan


@pytest.fixture
def fixed(db):
    return build_fixed_campaign()


def test_matrices_hold_submitted_ratings_with_nan_for_missing(fixed):
    data = selectors.campaign_ratings(fixed.campaign)
    c = fixed.conv
    # Rows: conversations with a submitted rating (c6 has none), ascending id; columns: raters by user id.
    assert data.conversation_ids.tolist() == [c[n].pk for n in ("c1", "c2", "c3", "c4", "c5")]
    assert data.rater_ids == [u.pk for u in fixed.raters]
    assert data.rater_labels == [u.pseudonym for u in fixed.raters]
    # Rater 3's draft on c1 (susceptibility 1) is not there.
    expected = np.array([[2, 3, nan], [4, 4, 3], [nan, 4, nan], [3, nan, 3], [nan, 2, 1]])
    np.testing.assert_array_equal(data.matrices["susceptibility"], expected)
    np.testing.assert_array_equal(
        data.matrices["diagnosis_hard"], [[1, 1, nan], [0, 1, 0], [nan, 0, nan], [1, nan, 1], [nan, 0, 0]]
    )
    assert data.n_ratings == 10
    # Every rated axis of the rubric in rubric order; the computed SMOG axis is not rated, so not here.
    assert [a.key for a in data.axes] == [
        "susceptibility", "severity", "benefits", "diagnosis_hard", "diagnosis_soft", "flow", "readability_judgement"]
    # Gold: c4 expects susceptibility 3; no other axis has a gold answer.
    np.testing.assert_array_equal(data.gold["susceptibility"], [nan, nan, nan, 3, nan])
    assert data.gold["severity"] is None
    # Submission times, one per rating, NaN where there is none.
    rating = fixed.assignments[("c2", 2)].rating
    rating.refresh_from_db()
    assert data.times[1, 2] == pytest.approx(rating.submitted_at.timestamp())
    assert np.isnan(data.times[0, 2])
    # True epoch seconds whatever the site's time zone (the API's figures use the same times).
    with override_settings(TIME_ZONE="America/New_York"):
        shifted = selectors.campaign_ratings(fixed.campaign)
    np.testing.assert_array_equal(shifted.times, data.times)


def test_levels_and_categories_come_from_the_rubric(fixed):
    data = selectors.campaign_ratings(fixed.campaign)
    sus, hard = data.axis("susceptibility"), data.axis("diagnosis_hard")
    assert selectors.axis_level(sus) == "ordinal" and selectors.axis_categories(sus) == [1.0, 2.0, 3.0, 4.0]
    assert selectors.axis_level(hard) == "nominal" and selectors.axis_categories(hard) == [0.0, 1.0]
    smog = fixed.campaign.rubric.axes.get(key="smog")
    assert selectors.axis_level(smog) == "interval" and selectors.axis_categories(smog) is None


def test_conversation_means_average_raters_first(fixed):
    data = selectors.campaign_ratings(fixed.campaign)
    means = selectors.conversation_means(data)
    np.testing.assert_allclose(means["susceptibility"], [2.5, 11 / 3, 4.0, 3.0, 1.5])
    np.testing.assert_allclose(means["diagnosis_hard"], [1.0, 1 / 3, 0.0, 1.0, 0.0])


def test_reading_a_campaign_takes_the_same_few_queries_however_large(fixed):
    with CaptureQueriesContext(connection) as small:
        selectors.campaign_ratings(fixed.campaign)
        selectors.conversation_facts(fixed.campaign)
        selectors.stage_message_counts(fixed.campaign)
    job = Conversation.objects.get(pk=fixed.conv["c1"].pk).job
    for _ in range(8):
        conv = make_conversation(job=job, n_messages=4, sensemaker_message_count=2)
        fixed.campaign.items.create(conversation=conv)
        for rater in fixed.raters:
            submit(fixed.campaign, conv, rater, 2, 1)
    with CaptureQueriesContext(connection) as large:
        data = selectors.campaign_ratings(fixed.campaign)
        selectors.conversation_facts(fixed.campaign)
        selectors.stage_message_counts(fixed.campaign)
    assert data.n_ratings == 10 + 8 * 3
    assert len(large.captured_queries) == len(small.captured_queries) <= 7


def test_a_revision_changes_the_matrix_and_the_fingerprint(fixed):
    before = selectors.ratings_fingerprint(fixed.campaign.pk)
    snapshot = recompute_campaign(fixed.campaign.pk, n_boot=20)
    assert not selectors.is_stale(snapshot)
    assignment = fixed.assignments[("c1", 0)]
    rating_services.save_rating_draft(assignment, assignment.rater,
                                      rating_services.DraftChanges(values={"susceptibility": "4"}))
    assert selectors.ratings_fingerprint(fixed.campaign.pk) != before
    assert selectors.is_stale(snapshot)
    assert selectors.campaign_ratings(fixed.campaign).matrices["susceptibility"][0, 0] == 4
    # Saving a draft elsewhere is not a result: the fingerprint ignores drafts.
    now = selectors.ratings_fingerprint(fixed.campaign.pk)
    draft = fixed.assignments[("c1", 2)]
    rating_services.save_rating_draft(draft, draft.rater, rating_services.DraftChanges(values={"susceptibility": "2"}))
    assert selectors.ratings_fingerprint(fixed.campaign.pk) == now


def test_precomputed_agreement_for_the_api(fixed):
    assert selectors.precomputed_agreement(fixed.campaign) is None  # nothing computed yet
    snapshot = recompute_campaign(fixed.campaign.pk, n_boot=30)
    stored = selectors.precomputed_agreement(fixed.campaign)
    assert stored["snapshot_id"] == snapshot.pk and stored["n_boot"] == 30
    assert [a["axis"] for a in stored["axes"]] == [a.key for a in selectors.rated_axes(fixed.campaign)]
    sus = stored["axes"][0]
    assert sus["level"] == "ordinal" and sus["statistics"]["n_pairable_units"] == 4
    assert sus["statistics"] == snapshot.axes.get(axis_key="susceptibility").statistics
    # Once a rating changes the stored figures are stale: the API must not serve them.
    submit(fixed.campaign, fixed.conv["c3"], fixed.raters[0], 1, 0)
    assert selectors.precomputed_agreement(fixed.campaign) is None


def test_api_on_request_agreement_equals_the_snapshot_and_names_raters_by_pseudonym(fixed):
    """Computed on request (no snapshot yet) and precomputed, the API gives the same statistics: the same
    matrices, the same rater order and the same pseudonyms, never user ids."""
    import json

    from django.core.cache import cache

    from results import agreement as results_agreement

    cache.clear()
    computed = results_agreement.campaign_agreement(fixed.campaign, n_boot=60)
    assert computed["source"] == "computed" and computed["seed"] == services.SEED
    snapshot = recompute_campaign(fixed.campaign.pk, n_boot=60, seed=services.SEED)
    precomputed = results_agreement.campaign_agreement(fixed.campaign, n_boot=60)
    assert precomputed["source"] == "precomputed" and precomputed["snapshot_id"] == snapshot.pk
    assert json.loads(json.dumps(computed["axes"])) == json.loads(json.dumps(precomputed["axes"]))

    pseudonyms = [u.pseudonym for u in sorted(fixed.raters, key=lambda u: u.pk)]
    ids = {u.pk for u in fixed.raters} | {str(u.pk) for u in fixed.raters}
    for axis in computed["axes"]:
        stats = axis["statistics"]
        assert stats["pairwise_kappa"]["raters"] == pseudonyms
        assert [r["rater"] for r in stats["raters"]] == pseudonyms
        assert not ids & set(stats["pairwise_kappa"]["raters"])
