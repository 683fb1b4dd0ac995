"""Machinery shared by every kind of queued LLM work item (a generation job's conversations, a judge
run's items): live usage counters and the reaper for items whose worker was lost.

An item row has `status` (queued/running/done/failed/cancelled), `attempts`, `failure_reason` and
`finished_at`; while a worker runs it, the worker holds a `WorkLease` (generation/concurrency.py)
named by the item's kind and id. Each app keeps its own task and its own start/finish writes; what
is the same for all of them lives here, once.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .concurrency import WorkLease

logger = logging.getLogger(__name__)

# At most one counter write per running item in this many seconds (LLM calls can be quick).
LIVE_USAGE_INTERVAL = 0.5


def cost_decimal(cost) -> Decimal | None:
    """LiteLLM's float cost as the 6-decimal value the rows store; None when the price is unknown."""
    return None if cost is None else Decimal(str(round(float(cost), 6)))


class LiveUsage:
    """The LLM client's on_call hook: keeps a running item's calls, tokens and cost up to date in its
    row, so a progress page (which sums the rows) shows them while the item runs. Writes are
    throttled, and the totals are written again, in full, when the item ends. `rows` must match the
    item only while this attempt owns it (e.g. filtered on attempts and status=running), so a lost
    worker's stray thread cannot write; `to_fields` maps the usage totals onto the row's columns."""

    def __init__(self, rows, to_fields: Callable[[dict], dict], *, first_write_after: float = 0.0):
        from .medagent import Usage

        self.rows = rows
        self.to_fields = to_fields
        self._usage = Usage()
        self._lock = threading.Lock()
        # Writes happen at most every LIVE_USAGE_INTERVAL; `first_write_after` > 0 delays the first one.
        self._last_write = time.monotonic() - LIVE_USAGE_INTERVAL + first_write_after

    def __call__(self, delta: dict) -> None:
        with self._lock:
            self._usage.add(delta)
            now = time.monotonic()
            if now - self._last_write < LIVE_USAGE_INTERVAL:
                return
            self._last_write = now
            totals = self._usage.as_dict()
        self.rows.update(**self.to_fields(totals))

    def totals(self) -> dict:
        with self._lock:
            return self._usage.as_dict()


def lost_item_ids(model, lease_kind: str) -> list[int]:
    """Running items whose worker lease has lapsed (the worker died)."""
    running = model.objects.filter(status="running").values_list("id", flat=True)
    return [item_id for item_id in running if not WorkLease.held(lease_kind, item_id)]


def reap_lost_items(model, lease_kind: str, *, max_attempts: int) -> tuple[list[int], list[int]]:
    """Put the items of dead workers back in the queue (the caller enqueues them again). One that has
    already lost `max_attempts` workers is failed instead: it is probably what kills them.
    Returns (requeued ids, given-up ids)."""
    requeued, given_up = [], []
    for item_id in lost_item_ids(model, lease_kind):
        with transaction.atomic():
            running = model.objects.filter(pk=item_id, status="running")
            if running.filter(attempts__gte=max_attempts).update(
                status="failed", finished_at=timezone.now(),
                failure_reason=f"Gave up: the worker running it was lost on each of {max_attempts} attempts.",
            ):
                given_up.append(item_id)
                continue
            if running.update(status="queued", failure_reason=""):
                requeued.append(item_id)
    if given_up:
        logger.error("%s items failed after losing %s workers: %s", lease_kind, max_attempts, given_up)
    if requeued:
        logger.warning("Re-queued %s items of a lost worker: %s", lease_kind, requeued)
    return requeued, given_up


# --- runs (a generation job, a judge run): status, cancel, retry and progress from their items ------

UNFINISHED = ("queued", "running")


def refresh_run_status(run_model, run_pk: int, items: str):
    """Derive a run's status from its items (`items` is the related name), in one place, so it never
    drifts. The run's model has status (JobStatus), started_at, finished_at and cancel_requested_at."""
    from django.db.models import Count

    from .models import apply_job_status

    with transaction.atomic():
        run = run_model.objects.select_for_update().get(pk=run_pk)
        counts = dict(getattr(run, items).values_list("status").annotate(n=Count("id")).order_by())
        fields = apply_job_status(run, counts)
        if fields:
            run.save(update_fields=fields)
        return run


def cancel_queued_items(run_model, run, items: str) -> int:
    """Mark the run cancelled-on-request and stop its queued items at once (running ones finish).
    Call inside a transaction; returns how many queued items were stopped."""
    run = run_model.objects.select_for_update().get(pk=run.pk)
    if run.cancel_requested_at is None:
        run.cancel_requested_at = timezone.now()
        run.save(update_fields=["cancel_requested_at"])
    return getattr(run, items).filter(status="queued").update(status="cancelled",
                                                              failure_reason="Cancelled before it started.")


def requeue_failed_items(run_model, run, items: str) -> tuple[list[int], list[int]]:
    """Put a run's failed items back in the queue (seeds unchanged) and re-open the run. Call inside a
    transaction and enqueue both lists after commit: (failed ids now queued, ids that were still
    queued, re-sent in case the broker lost their messages; a duplicate task is a no-op)."""
    run = run_model.objects.select_for_update().get(pk=run.pk)
    related = getattr(run, items)
    failed = list(related.filter(status="failed").values_list("id", flat=True))
    if not failed:
        return [], []
    still_queued = list(related.filter(status="queued").values_list("id", flat=True))
    related.filter(id__in=failed).update(status="queued", failure_reason="", started_at=None, finished_at=None)
    run.cancel_requested_at = None
    run.finished_at = None
    run.status = "queued"
    run.save(update_fields=["cancel_requested_at", "finished_at", "status"])
    return failed, still_queued


def run_progress(run, items, *, calls_field: str) -> dict:
    """Counts, progress, elapsed time, ETA, calls, tokens and cost of a run, from its items' rows."""
    from django.db.models import Count, Sum

    rows = items.values("status").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
    counts.update({r["status"]: r["n"] for r in rows})
    total = sum(counts.values())
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    totals = items.aggregate(prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"),
                             calls=Sum(calls_field), cost=Sum("cost_usd"))
    priced = items.filter(status="done", cost_usd__isnull=False).count()
    started = run.started_at or run.created_at
    elapsed = max(0.0, ((run.finished_at or timezone.now()) - started).total_seconds())
    remaining = counts["queued"] + counts["running"]
    eta = None
    if remaining and finished and elapsed > 0 and not run.finished_at:
        # Throughput so far predicts the rest: items run in parallel, so use the rate.
        eta = remaining * elapsed / finished
    return {
        "counts": counts,
        "total": total,
        "finished": finished,
        "percent": round(100 * finished / total) if total else 100,
        "elapsed_seconds": elapsed,
        "eta_seconds": eta,
        "prompt_tokens": totals["prompt_tokens"] or 0,
        "completion_tokens": totals["completion_tokens"] or 0,
        "llm_calls": totals["calls"] or 0,
        "cost_usd": totals["cost"],
        "cost_known_for": priced,
        "is_finished": remaining == 0,
    }


def stalled_queued_item_ids(run_model, items: str, *, quiet_seconds: float) -> list[int]:
    """Queued items of runs that look abandoned: nothing of theirs running, and no item started or
    finished (nor the run created) in `quiet_seconds`. A worker that died holding prefetched tasks
    takes their messages with it until the broker's visibility timeout (hours), so these would wait
    that long; re-sending them is harmless, since a duplicate task is a no-op."""
    from datetime import timedelta

    from django.db.models import Q

    since = timezone.now() - timedelta(seconds=quiet_seconds)
    waiting = (run_model.objects.filter(**{f"{items}__status": "queued"}, created_at__lt=since)
               .exclude(**{f"{items}__status": "running"}).distinct())
    ids = []
    for run in waiting:
        related = getattr(run, items)
        if not related.filter(Q(started_at__gte=since) | Q(finished_at__gte=since)).exists():
            ids += list(related.filter(status="queued").values_list("id", flat=True))
    return ids


def run_in_threads(item_ids, attempt: Callable[[int], str], threads: int) -> dict:
    """Run items' attempts in this process (no worker needed), `threads` at a time: the task's own code
    path, for `--inline` commands, the demo seed and tests. Returns {outcome: count}."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def one(item_id):
        try:
            return attempt(item_id)
        finally:
            connection.close()  # each pool thread has its own connection

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        outcomes = list(pool.map(one, item_ids))
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
