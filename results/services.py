"""Recomputing a campaign's agreement and results, and scheduling that without blocking raters.

`schedule_recompute` is called (via transaction.on_commit) whenever a rating is submitted or revised.
It only sets a Redis key and, the first time in a window, enqueues `results.tasks.recompute_agreement`
with a countdown: a burst of submissions within the window produces ONE recomputation, run by a worker
a few seconds later. The task clears the key before it reads the ratings, so a rating that arrives
while it computes schedules another run rather than being missed.
"""
from __future__ import annotations

import logging
import secrets
import time

import numpy as np
from django.db import transaction
from django.utils import timezone

from core import queue
from core.redis_client import get_redis
from rating.models import Campaign

from . import judge_reporting, reporting, selectors
from .models import AgreementSnapshot, AxisAgreement
from .nominal import add_nominal_statistics
from .stats import DEFAULT_N_BOOT, DEFAULT_SEED, alpha_over_time, compute_agreement

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 10
N_BOOT = DEFAULT_N_BOOT
SEED = DEFAULT_SEED  # fixed: the same ratings always give the same bootstrap interval
KEEP_FULL_SNAPSHOTS = 10  # older snapshots keep their per-axis headline figures only
LOCK_SECONDS = 15 * 60
# The registered name of results.tasks.recompute_agreement: the tasks import this module, so it
# enqueues them by name rather than importing them back.
RECOMPUTE_TASK = "results.tasks.recompute_agreement"


def pending_key(campaign_id: int) -> str:
    return f"results:recompute:pending:{campaign_id}"


def lock_key(campaign_id: int) -> str:
    return f"results:recompute:running:{campaign_id}"


# What this process knows of queued recomputations: campaign id -> a wall-clock time before which the
# queued task cannot have started (its start time, less CLOCK_MARGIN_SECONDS). A rating committed before
# then will be read by that task, so scheduling for it needs no Redis round trip: most submissions in a
# window skip it. The start time is stored as the pending key's value, so every process learns it.
_queued_until: dict[int, float] = {}
# Slack for clocks differing between the web process and the worker that runs the task.
CLOCK_MARGIN_SECONDS = 2.0


def forget_queued() -> None:
    """Drop what this process knows of queued runs (for tests that reset Redis behind its back)."""
    _queued_until.clear()


def _note_queued(campaign_id: int, starts_at) -> None:
    try:
        until = float(starts_at) - CLOCK_MARGIN_SECONDS
    except (TypeError, ValueError):  # a key written by an older version ("1"): nothing known
        return
    if until > time.time():
        _queued_until[campaign_id] = until


def schedule_recompute(campaign_id: int, delay: float = DEBOUNCE_SECONDS, *, force: bool = False) -> bool:
    """Ask for a recomputation of the campaign within about `delay` seconds; True if this call
    enqueued the task, False if one was already pending (or Redis is unreachable). `force`: ask Redis
    even if this process knows of a queued run (the periodic sweep, which is there to catch lost ones).

    Never raises: it runs after a rater's submission has committed, and a results hiccup must not
    turn their successful submission into an error page. A missed run is caught by the periodic
    sweep (results.tasks.recompute_stale_campaigns) and by the page's "stale" notice."""
    now = time.time()
    if not force and _queued_until.get(campaign_id, 0.0) > now:
        return False  # a queued task starts later and will read this rating
    claimed = False
    # This runs in the rater's request thread: the fast client gives up after ~1 s without retries, and
    # the publish is tried once (Celery would otherwise retry it with back-off), so a dead or hung Redis
    # costs the rater about a second, not a stalled page.
    r = get_redis(fast=True)
    starts_at = now + delay
    try:
        # The key outlives the countdown so the window holds until the task starts (it deletes the key).
        # Its value is when the task starts (the countdown runs from after this), read back if it is set.
        with r.pipeline(transaction=False) as pipe:
            pipe.set(pending_key(campaign_id), repr(starts_at), nx=True, ex=int(delay) + 120)
            pipe.get(pending_key(campaign_id))
            claimed, current = pipe.execute()
        claimed = bool(claimed)
        if not claimed:
            _note_queued(campaign_id, current)
            return False
        queue.enqueue(RECOMPUTE_TASK, campaign_id, countdown=delay, retry=False)
        _note_queued(campaign_id, starts_at)
        return True
    except Exception:  # noqa: BLE001 - see docstring
        logger.exception("Could not schedule the agreement recomputation of campaign %s", campaign_id)
        if claimed:  # no task was queued: do not hold the window shut for nothing
            try:
                r.delete(pending_key(campaign_id))
            except Exception:  # noqa: BLE001
                pass
        return False


def is_pending(campaign_id: int) -> bool:
    try:
        r = get_redis(fast=True)  # a page hint: never worth more than a second of the request
        return bool(r.exists(pending_key(campaign_id), lock_key(campaign_id)))
    except Exception:  # noqa: BLE001 - a status hint only
        return False


def run_scheduled_recompute(campaign_id: int) -> AgreementSnapshot | None:
    """What the Celery task does: one recomputation at a time per campaign, skipped if nothing changed."""
    r = get_redis()
    token = secrets.token_hex(16)
    if not r.set(lock_key(campaign_id), token, nx=True, ex=LOCK_SECONDS):
        # Another worker is computing this campaign; its data may predate the ratings that brought us
        # here, so come back after the window instead of dropping the request.
        r.delete(pending_key(campaign_id))
        schedule_recompute(campaign_id)
        return None
    try:
        # Cleared before reading: ratings from now on schedule a new run.
        r.delete(pending_key(campaign_id))
        if not Campaign.objects.filter(pk=campaign_id).exists():
            return None
        latest = selectors.latest_snapshot(campaign_id)
        if (latest is not None and latest.n_boot == N_BOOT and latest.seed == SEED
                and latest.input_fingerprint == selectors.ratings_fingerprint(campaign_id)):
            return latest  # a duplicate request: the newest snapshot already covers these ratings
        return recompute_campaign(campaign_id)
    finally:
        # Release only our own lock (compare-and-delete).
        r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
               1, lock_key(campaign_id), token)


def recompute_campaign(
    campaign_id: int, *, n_boot: int = N_BOOT, seed: int = SEED, trigger: str = AgreementSnapshot.Trigger.AUTO
) -> AgreementSnapshot:
    """Compute every agreement statistic and results table of the campaign and store a snapshot."""
    started = time.perf_counter()
    campaign = Campaign.objects.select_related("rubric").get(pk=campaign_id)
    # Fingerprint first: a rating committed while we read makes the snapshot look stale (and its own
    # scheduled run fixes it), never the other way round.
    fingerprint = selectors.ratings_fingerprint(campaign_id)
    data = selectors.campaign_ratings(campaign)
    facts = selectors.conversation_facts(campaign)
    stage_counts = selectors.stage_message_counts(campaign)

    infos = [reporting.AxisInfo.from_axis(a, selectors.axis_level(a)) for a in data.axes]
    references = selectors.nominal_references(campaign, data)
    statistics: dict[str, dict | None] = {}
    timelines: dict[str, list[dict]] = {}
    for axis, info in zip(data.axes, infos, strict=True):
        matrix = data.matrices[axis.key]
        if np.isnan(matrix).all():
            statistics[axis.key] = None
            continue
        categories = selectors.axis_categories(axis)
        statistics[axis.key] = compute_agreement(
            matrix, info.level, categories, n_boot=n_boot, seed=seed,
            gold=data.gold.get(axis.key), timestamps=data.times_for(axis.key), rater_ids=data.rater_labels,
        )
        if axis.is_nominal:
            statistics[axis.key] = add_nominal_statistics(statistics[axis.key], axis, matrix,
                                                          references.get(axis.key), n_boot, seed)
        timelines[axis.key] = alpha_over_time(matrix, data.times_for(axis.key), info.level, categories,
                                              n_boot=n_boot, seed=seed)

    means = selectors.conversation_means(data)
    # Means, model comparisons and score distributions are for numbers; nominal axes get their own tables.
    numeric = [info for info in infos if info.kind != "nominal"]
    results = reporting.build_results(
        numeric, means, data.matrices, facts, facts.rows_of(data.conversation_ids), stage_counts
    )
    agreement, heat = reporting.agreement_tables(infos, statistics, n_boot, seed)
    rater_tables, rater_stats, flagged = reporting.rater_tables(infos, statistics, data.rater_ids, data.rater_labels)
    timeline, timeline_fig = reporting.timeline_tables(infos, timelines, n_boot, seed)
    drift, drift_fig = reporting.drift_tables(infos, rater_stats)
    results["tables"] = {**agreement, **timeline, **rater_tables, **drift, **results["tables"]}
    nominal = [info for info in infos if info.kind == "nominal"]
    if nominal:  # only rubrics with categorical axes store these, so other snapshots stay as they were
        nominal_tables, confusion_fig = reporting.nominal_tables(nominal, statistics, n_boot, seed)
        results["tables"].update(nominal_tables)
        results["figures"]["confusion"] = confusion_fig
    results["figures"]["kappa"] = heat
    results["figures"]["alpha_time"] = timeline_fig
    results["figures"]["drift"] = drift_fig
    # Judge runs against the clinicians: the same rated conversations, seed and resamples.
    judges = judge_reporting.compute_judges(campaign, data, facts, stage_counts, infos, results["tables"], n_boot, seed)

    with transaction.atomic():
        snapshot = AgreementSnapshot.objects.create(
            campaign=campaign,
            computed_at=timezone.now(),
            trigger=trigger,
            input_fingerprint=fingerprint,
            input_hash=data.input_hash(),
            n_conversations=int(data.conversation_ids.size),
            n_raters=len(data.rater_ids),
            n_ratings=data.n_ratings,
            n_boot=n_boot,
            seed=seed,
            rater_stats=rater_stats,
            drift_flagged=flagged,
            tables=results,
        )
        AxisAgreement.objects.bulk_create([
            AxisAgreement(
                snapshot=snapshot,
                axis=axis,
                axis_key=axis.key,
                level=info.level,
                n_pairable=(statistics[axis.key] or {}).get("n_pairable_units", 0),
                n_raters=(statistics[axis.key] or {}).get("n_raters", 0),
                alpha=((statistics[axis.key] or {}).get("krippendorff_alpha") or {}).get("alpha"),
                alpha_ci_low=((statistics[axis.key] or {}).get("krippendorff_alpha") or {}).get("ci_low"),
                alpha_ci_high=((statistics[axis.key] or {}).get("krippendorff_alpha") or {}).get("ci_high"),
                statistics=statistics[axis.key],
            )
            for axis, info in zip(data.axes, infos, strict=True)
        ])
        judge_reporting.store(snapshot, judges)
        snapshot.duration_seconds = time.perf_counter() - started
        snapshot.save(update_fields=["duration_seconds"])
        compact_old_snapshots(campaign_id)
    if flagged:
        logger.warning("Campaign %s: agreement drifting down for %s", campaign_id,
                       ", ".join(f"{f['rater']} on {f['axis']}" for f in flagged))
    return snapshot


def judge_scores_changed(campaign_id: int) -> bool:
    """Call when a judge run of the campaign finishes (or its scores change): schedules the debounced
    recomputation, which then includes the run's judge-vs-clinician statistics. Never raises."""
    return schedule_recompute(campaign_id, delay=0)


def judge_run_finished(run_id: int) -> list[int]:
    """Call when a judge run finishes: schedules every campaign whose conversations it scored (a run
    launched from a filter may cover several). Returns those campaign ids. Never raises."""
    from judging.models import JudgeRun

    try:
        run = JudgeRun.objects.filter(pk=run_id).values("campaign_id", "rubric_id").first()
        if run is None:
            return []
        ids = set(Campaign.objects.filter(rubric_id=run["rubric_id"], items__conversation__judge_items__run_id=run_id)
                  .values_list("id", flat=True).distinct())
        if run["campaign_id"]:
            ids.add(run["campaign_id"])
    except Exception:  # noqa: BLE001 - called from the judge run's task: results must not fail it
        logger.exception("Could not find the campaigns of judge run %s", run_id)
        return []
    for campaign_id in sorted(ids):
        judge_scores_changed(campaign_id)
    return sorted(ids)


def compact_old_snapshots(campaign_id: int, keep: int = KEEP_FULL_SNAPSHOTS) -> int:
    """Drop the bulky JSON of all but the newest `keep` snapshots; their alpha, CI and n stay, so the
    agreement-over-time plot keeps its history without the database growing by megabytes a minute."""
    keep_ids = list(
        AgreementSnapshot.objects.filter(campaign_id=campaign_id).order_by("-computed_at", "-id")
        .values_list("id", flat=True)[:keep]
    )
    old = AgreementSnapshot.objects.filter(campaign_id=campaign_id, compacted=False).exclude(id__in=keep_ids)
    old_ids = list(old.values_list("id", flat=True))
    if not old_ids:
        return 0
    AxisAgreement.objects.filter(snapshot_id__in=old_ids).update(statistics=None)
    judge_reporting.compact(old_ids)
    return AgreementSnapshot.objects.filter(id__in=old_ids).update(
        compacted=True, rater_stats=[], tables={}, drift_flagged=[]
    )


def stale_campaign_ids() -> list[int]:
    """Open or closed campaigns with submitted ratings whose newest snapshot does not match them."""
    out = []
    campaigns = Campaign.objects.exclude(status=Campaign.Status.DRAFT).values_list("id", flat=True)
    for campaign_id in campaigns:
        latest = selectors.latest_snapshot(campaign_id)
        fingerprint = selectors.ratings_fingerprint(campaign_id)
        if latest is None:
            if selectors.has_submitted_ratings(campaign_id):
                out.append(campaign_id)
        elif latest.input_fingerprint != fingerprint:
            out.append(campaign_id)
    return out
