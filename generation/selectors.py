from django.db.models import Count

from .models import CaseStudy, Conversation, GenerationJob, ModelConfig


def generation_counts() -> dict:
    by_status = dict(Conversation.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "cases": CaseStudy.objects.count(),
        "models": ModelConfig.objects.filter(is_active=True).count(),
        "jobs": GenerationJob.objects.count(),
        "jobs_running": GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING).count(),
        "conversations": sum(by_status.values()),
        "conversations_by_status": by_status,
    }


def job_progress(job: GenerationJob) -> dict:
    """Counts, progress, elapsed time, ETA, tokens and cost of a job, from its conversations."""
    from django.db.models import Sum
    from django.utils import timezone

    rows = job.conversations.values("status").annotate(n=Count("id")).order_by()
    counts = {s: 0 for s in Conversation.Status.values}
    counts.update({r["status"]: r["n"] for r in rows})
    total = sum(counts.values())
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    totals = job.conversations.aggregate(
        prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"), calls=Sum("llm_calls"),
        cost=Sum("cost_usd"),
    )
    priced = job.conversations.filter(status="done", cost_usd__isnull=False).count()
    now = timezone.now()
    started = job.started_at or job.created_at
    end = job.finished_at or now
    elapsed = max(0.0, (end - started).total_seconds())
    remaining = counts["queued"] + counts["running"]
    eta = None
    if remaining and finished and elapsed > 0 and not job.finished_at:
        # Throughput so far predicts the rest: conversations run in parallel, so use the rate.
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
