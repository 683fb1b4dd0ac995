"""Recomputation: what a snapshot stores, that it is reproducible, drift flags, compaction of old
snapshots, and the debounced scheduling through a real Celery worker on the real Redis."""
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from accounts.roles import Role
from core.redis_client import get_redis
from mhsd_platform.celery import app
from results import selectors, services
from results.models import AgreementSnapshot, AxisAgreement
from results.stats import compute_agreement
from results.stats.raters import DRIFT_WINDOW
from tests.factories import make_user
from tests.results.results_fixture import build_drifting_campaign, build_fixed_campaign, submit
from tests.worker_support import wait_for, worker_thread


@pytest.fixture
def fixed(db):
    return build_fixed_campaign()


def test_snapshot_stores_every_axis_with_the_statistics_of_its_matrix(fixed):
    snapshot = services.recompute_campaign(fixed.campaign.pk, n_boot=200, seed=11)
    assert (snapshot.n_conversations, snapshot.n_raters, snapshot.n_ratings) == (5, 3, 10)
    assert (snapshot.n_boot, snapshot.seed, snapshot.trigger) == (200, 11, "auto")
    rows = list(snapshot.axes.order_by("axis__order"))
    assert [r.axis_key for r in rows] == [a.key for a in selectors.rated_axes(fixed.campaign)]
    data = selectors.campaign_ratings(fixed.campaign)
    # The stored statistics are exactly results.stats on the selector's matrix (same seed, same CI).
    direct = compute_agreement(
        data.matrices["susceptibility"], "ordinal", [1, 2, 3, 4], n_boot=200, seed=11,
        gold=data.gold["susceptibility"], timestamps=data.times_for("susceptibility"), rater_ids=data.rater_labels,
    )
    sus = snapshot.axes.get(axis_key="susceptibility")
    assert sus.statistics["krippendorff_alpha"] == direct["krippendorff_alpha"]
    assert sus.statistics["gwet_ac1"] == direct["gwet_ac1"]
    assert (sus.alpha, sus.alpha_ci_low, sus.alpha_ci_high) == (
        direct["krippendorff_alpha"]["alpha"], direct["krippendorff_alpha"]["ci_low"],
        direct["krippendorff_alpha"]["ci_high"])
    assert (sus.n_pairable, sus.n_raters, sus.level) == (4, 3, "ordinal")
    # Constant axes have no alpha (no disagreement is possible to measure against); stored as None.
    assert snapshot.axes.get(axis_key="severity").alpha is None


def test_same_ratings_same_figures(fixed):
    first = services.recompute_campaign(fixed.campaign.pk, n_boot=300)
    second = services.recompute_campaign(fixed.campaign.pk, n_boot=300)
    assert first.input_hash == second.input_hash and first.input_fingerprint == second.input_fingerprint
    assert first.tables == second.tables
    for a, b in zip(first.axes.order_by("axis__order"), second.axes.order_by("axis__order"), strict=True):
        assert a.statistics == b.statistics
    submit(fixed.campaign, fixed.conv["c3"], fixed.raters[0], 4, 0)
    third = services.recompute_campaign(fixed.campaign.pk, n_boot=300)
    assert third.input_hash != first.input_hash and third.n_ratings == 11


def test_an_empty_campaign_still_gets_a_snapshot(db):
    from tests.factories import make_campaign, make_conversation

    campaign = make_campaign(conversations=[make_conversation()])
    snapshot = services.recompute_campaign(campaign.pk)
    assert (snapshot.n_conversations, snapshot.n_ratings) == (0, 0)
    assert AxisAgreement.objects.filter(snapshot=snapshot, statistics__isnull=True).count() == 7
    assert snapshot.tables["tables"]["by_model"]["rows"] == []


def test_a_rater_whose_agreement_drifts_down_is_flagged(db, rf):
    campaign, raters = build_drifting_campaign()
    snapshot = services.recompute_campaign(campaign.pk, n_boot=50)
    flagged = snapshot.drift_flagged
    assert [(f["rater"], f["axis"]) for f in flagged] == [(raters[0].pseudonym, "susceptibility")]
    f = flagged[0]
    # Rater 1 agreed fully with both colleagues, then scored at least 2 points off on the 1-4 scale: quadratic
    # agreement 1 - (2/3)^2 = 0.556 at best on those.
    assert f["method"] == "peer-adjusted" and f["baseline_agreement"] == 1.0 and f["recent_agreement"] <= 0.556
    assert f["n_recent"] == DRIFT_WINDOW and f["p_value"] < 0.01
    # Colleagues agree less with "the others" too, but relative to their peers they did not change.
    stats = {r["pseudonym"]: r for r in snapshot.rater_stats}
    assert stats[raters[1].pseudonym]["axes"]["susceptibility"]["drift"]["flagged"] is False
    assert stats[raters[0].pseudonym]["summary"]["drift_axes"] == ["susceptibility"]
    assert selectors.drift_alerts(campaign) == flagged

    # The alert other pages include: shown to admins and researchers, nothing for a rater.
    template = Template("{% load results_tags %}{% drift_alert campaign %}")
    request = rf.get("/")
    request.user = make_user(Role.ADMIN)
    html = template.render(Context({"request": request, "campaign": campaign}))
    assert "Agreement drifting down" in html and raters[0].pseudonym in html
    request.user = raters[1]
    assert "drifting" not in template.render(Context({"request": request, "campaign": campaign}))


@pytest.fixture
def rf():
    return RequestFactory()


def test_old_snapshots_are_compacted_but_keep_their_alpha(fixed):
    for _ in range(services.KEEP_FULL_SNAPSHOTS + 2):
        services.recompute_campaign(fixed.campaign.pk, n_boot=10)
    snaps = list(AgreementSnapshot.objects.filter(campaign=fixed.campaign).order_by("computed_at", "id"))
    assert [s.compacted for s in snaps] == [True, True] + [False] * services.KEEP_FULL_SNAPSHOTS
    assert snaps[0].tables == {} and snaps[0].rater_stats == []
    old = snaps[0].axes.get(axis_key="susceptibility")
    assert old.statistics is None and old.alpha == snaps[-1].axes.get(axis_key="susceptibility").alpha
    history = [h for h in selectors.alpha_history(fixed.campaign) if h["axis"] == "susceptibility"]
    assert len(history) == len(snaps) and history[0]["snapshot"] == snaps[0].pk
    assert len([h for h in selectors.alpha_history(fixed.campaign, limit=5) if h["axis"] == "susceptibility"]) == 5


def test_the_task_skips_work_when_nothing_changed(fixed):
    first = services.run_scheduled_recompute(fixed.campaign.pk)
    again = services.run_scheduled_recompute(fixed.campaign.pk)
    assert again.pk == first.pk and AgreementSnapshot.objects.filter(campaign=fixed.campaign).count() == 1
    submit(fixed.campaign, fixed.conv["c5"], fixed.raters[0], 2, 0)
    assert services.stale_campaign_ids() == [fixed.campaign.pk]
    newer = services.run_scheduled_recompute(fixed.campaign.pk)
    assert newer.pk != first.pk and newer.n_ratings == 11
    assert services.stale_campaign_ids() == []


def test_the_periodic_sweep_schedules_stale_campaigns(fixed):
    from results.tasks import recompute_stale_campaigns

    get_redis().delete(services.pending_key(fixed.campaign.pk))
    assert recompute_stale_campaigns() == [fixed.campaign.pk]  # ratings, but no snapshot yet
    assert services.is_pending(fixed.campaign.pk)
    services.recompute_campaign(fixed.campaign.pk, n_boot=10)
    assert recompute_stale_campaigns() == []


def test_scheduling_never_raises_when_redis_is_down(fixed):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        assert services.schedule_recompute(fixed.campaign.pk) is False
        assert services.is_pending(fixed.campaign.pk) is False


@contextmanager
def hung_redis():
    """A TCP port that accepts connections (the kernel's backlog) but never answers: a hung Redis or a
    black-holed network path, where a client without timeouts would wait for ever."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()


def _timed(fn, limit):
    """Run fn in a thread; (result, seconds), or fail if it is still blocked after `limit` seconds."""
    out = {}

    def run():
        started = time.perf_counter()
        out["value"] = fn()
        out["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still blocked after {limit} s"
    return out["value"], out["seconds"]


def test_a_rater_submitting_while_redis_hangs_waits_about_a_second(fixed, django_capture_on_commit_callbacks):
    with hung_redis() as url, override_settings(REDIS_URL=url):
        queued, seconds = _timed(lambda: services.schedule_recompute(fixed.campaign.pk), limit=6)
        assert queued is False and seconds < 2.5
        pending, seconds = _timed(lambda: services.is_pending(fixed.campaign.pk), limit=6)
        assert pending is False and seconds < 2.5

        # The real path, in this thread (it needs the test's database connection): a submission whose
        # on_commit hook schedules the recomputation.
        started = time.perf_counter()
        with django_capture_on_commit_callbacks(execute=True) as hooks:
            submit(fixed.campaign, fixed.conv["c3"], fixed.raters[0], 4, 0)
        assert len(hooks) >= 1 and time.perf_counter() - started < 3.5
    assert selectors.has_submitted_ratings(fixed.campaign.pk)


def test_a_failed_enqueue_does_not_hold_the_window_shut(fixed, monkeypatch):
    from results import tasks

    get_redis().delete(services.pending_key(fixed.campaign.pk))

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.recompute_agreement, "apply_async", broker_down)
    assert services.schedule_recompute(fixed.campaign.pk) is False
    assert not services.is_pending(fixed.campaign.pk)  # the next submission may try again
    monkeypatch.undo()
    assert services.schedule_recompute(fixed.campaign.pk, delay=30) is True
    get_redis().delete(services.pending_key(fixed.campaign.pk))


def _reset_queue(campaign_id):
    """Forget tasks and keys left by anything else (e.g. submissions that scheduled their own run)."""
    app.control.purge()
    get_redis().delete(services.pending_key(campaign_id), services.lock_key(campaign_id))
    services.forget_queued()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_requests_makes_one_recomputation_by_a_real_worker():
    fixed = build_fixed_campaign()
    campaign_id = fixed.campaign.pk
    _reset_queue(campaign_id)
    count = AgreementSnapshot.objects.filter(campaign_id=campaign_id).count
    with worker_thread(concurrency=2):
        outcomes = [services.schedule_recompute(campaign_id, delay=2) for _ in range(25)]
        assert outcomes.count(True) == 1
        assert services.is_pending(campaign_id)
        wait_for(lambda: count() == 1, timeout=60, message="the debounced snapshot")
        wait_for(lambda: not services.is_pending(campaign_id), timeout=30, message="the pending flag to clear")
        time.sleep(2.5)  # longer than the window: no second run was queued
        assert count() == 1
        snapshot = selectors.latest_snapshot(campaign_id)
        assert snapshot.n_ratings == 10 and not selectors.is_stale(snapshot)

        # A later rating opens a new window: again one run, and it sees the new rating.
        submit(fixed.campaign, fixed.conv["c3"], fixed.raters[2], 3, 1)
        _reset_queue(campaign_id)
        outcomes = [services.schedule_recompute(campaign_id, delay=1) for _ in range(10)]
        assert outcomes.count(True) == 1
        wait_for(lambda: count() == 2, timeout=60, message="the second snapshot")
        time.sleep(1.5)
        assert count() == 2
        latest = selectors.latest_snapshot(campaign_id)
        assert latest.n_ratings == 11 and not selectors.is_stale(latest)
        means = np.array(latest.tables["figures"]["means"]["values"]["susceptibility"]["vendor/a"][:1])
        # c3 now (4 + 3)/2 = 3.5: model a mean (2.5 + 11/3 + 3.5)/3 = 3.2222.
        assert means[0] == pytest.approx((2.5 + 11 / 3 + 3.5) / 3)


def test_a_known_queued_run_spares_later_ratings_the_redis_round_trip(fixed):
    """While this process knows the queued task starts later (the pending key's value), scheduling asks
    Redis nothing; once that moment is within the clock margin it asks again; the sweep always asks."""
    r = get_redis()
    campaign_id = fixed.campaign.pk
    r.delete(services.pending_key(campaign_id))
    assert services.schedule_recompute(campaign_id, delay=30) is True
    assert float(r.get(services.pending_key(campaign_id))) > time.time() + 25  # when the task starts
    r.delete(services.pending_key(campaign_id))  # behind the process's back: Redis is not asked again
    assert services.schedule_recompute(campaign_id, delay=30) is False
    assert not services.is_pending(campaign_id)
    assert services.schedule_recompute(campaign_id, delay=30, force=True) is True
    r.delete(services.pending_key(campaign_id))

    # Another process queued a run that starts within the margin: nothing is assumed, Redis is asked.
    services.forget_queued()
    r.set(services.pending_key(campaign_id), repr(time.time() + 1))
    assert services.schedule_recompute(campaign_id) is False
    r.delete(services.pending_key(campaign_id))
    assert services.schedule_recompute(campaign_id) is True  # not skipped: the known start was too close
    # A key written by an older version ("1") teaches nothing either.
    services.forget_queued()
    r.set(services.pending_key(campaign_id), "1")
    assert services.schedule_recompute(campaign_id) is False
    r.delete(services.pending_key(campaign_id))
    assert services.schedule_recompute(campaign_id, delay=5) is True
    r.delete(services.pending_key(campaign_id))
