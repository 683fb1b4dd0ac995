"""A finished judge run reaches the results: judging's status refresh fires judging.events, results
schedules a recompute of the campaign, and the recomputed snapshot holds the judge-vs-clinician row."""
import pytest

from judging import services
from results import services as results_services
from results.models import JudgeAgreement

from .helpers import campaign_of, launch, simulator_judge

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_finished_run_schedules_a_recompute_whose_snapshot_compares_the_judge():
    campaign = campaign_of(2)
    run = launch(simulator_judge(), campaign, enqueue_tasks=False, samples=2)
    assert not results_services.is_pending(campaign.pk)
    services.run_inline(run, threads=2)
    run.refresh_from_db()
    assert run.status == "done" and run.finished_at is not None
    # The hook fired once the run finished: a recompute of the campaign is pending.
    assert results_services.is_pending(campaign.pk)
    snapshot = results_services.run_scheduled_recompute(campaign.pk)
    row = JudgeAgreement.objects.get(snapshot=snapshot, judge_run=run)
    assert row.n_conversations == 2
    assert row.provenance and row.statistics  # per-axis statistics computed from the run's real scores
