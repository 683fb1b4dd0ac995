"""Read-side queries of the probe pages."""
from django.db.models import Count, Sum
from django.utils import timezone

from .models import ItemStatus, ProbeRun


def run_progress(run: ProbeRun) -> dict:
    """Counts, answered/refused split, elapsed time, ETA, tokens and cost of a run, from its items."""
    counts = {status: 0 for status in ItemStatus.values}
    counts.update(dict(run.items.values_list("status").annotate(n=Count("id")).order_by()))
    total = sum(counts.values())
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    totals = run.items.aggregate(calls=Sum("calls"), prompt_tokens=Sum("prompt_tokens"),
                                 completion_tokens=Sum("completion_tokens"), cost=Sum("cost_usd"))
    no_option = run.items.filter(status=ItemStatus.DONE, answer="").count()
    started = run.started_at or run.created_at
    elapsed = max(0.0, ((run.finished_at or timezone.now()) - started).total_seconds())
    remaining = counts["queued"] + counts["running"]
    eta = remaining * elapsed / finished if remaining and finished and elapsed > 0 else None
    return {
        "counts": counts, "total": total, "finished": finished,
        "percent": round(100 * finished / total) if total else 100,
        "answered": counts["done"] - no_option, "no_valid_option": no_option,
        "elapsed_seconds": elapsed, "eta_seconds": eta,
        "calls": totals["calls"] or 0, "prompt_tokens": totals["prompt_tokens"] or 0,
        "completion_tokens": totals["completion_tokens"] or 0, "cost_usd": totals["cost"],
        "is_finished": remaining == 0,
    }


def attention_items(run: ProbeRun, limit: int = 200):
    """Failed items and replies that picked no option: what a person should look at."""
    return run.items.filter(status__in=[ItemStatus.FAILED, ItemStatus.DONE], answer="").order_by("id")[:limit]


def exchanges(run: ProbeRun, limit: int = 500):
    """An interjection run's recorded exchanges (empty for a stigma run)."""
    if run.battery.protocol != "interjection":
        return []
    return run.items.filter(conversation__isnull=False).order_by("id")[:limit]
