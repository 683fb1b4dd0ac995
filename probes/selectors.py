"""Read-side queries of the probe pages."""
from django.db.models import Count

from generation.work_items import run_progress as items_progress

from .models import ItemStatus, ProbeRun


def run_progress(run: ProbeRun) -> dict:
    """Counts, answered/refused split, elapsed time, ETA, tokens and cost of a run, from its items (the
    progress every run shares), and the progress of its judge answers."""
    progress = items_progress(run, run.items, calls_field="calls")
    no_option = run.items.filter(status=ItemStatus.DONE, answer="", conversation__isnull=True).count()
    judge_counts = dict.fromkeys(ItemStatus.values, 0)
    judge_counts.update(dict(run.judge_answers.values_list("status").annotate(n=Count("id")).order_by()))
    judge_unfinished = judge_counts["queued"] + judge_counts["running"]
    return {
        **progress, "calls": progress["llm_calls"],
        "answered": progress["counts"]["done"] - no_option, "no_valid_option": no_option,
        "judge": judge_counts, "judge_total": sum(judge_counts.values()),
        "is_finished": progress["is_finished"] and not judge_unfinished,
    }


def attention_items(run: ProbeRun, limit: int = 200):
    """Failed items and replies that picked no option: what a person should look at."""
    return (run.items.filter(status__in=[ItemStatus.FAILED, ItemStatus.DONE], answer="", conversation__isnull=True)
            .order_by("id")[:limit])


def judge_attention(run: ProbeRun, limit: int = 200):
    """Judge answers that failed (no YES or NO after the retries), with their reasons and last replies."""
    return run.judge_answers.filter(status=ItemStatus.FAILED).select_related("item").order_by("id")[:limit]


def exchanges(run: ProbeRun, limit: int = 500):
    """An interjection run's recorded exchanges (empty for a stigma run), with their judge answers."""
    if run.battery.protocol != "interjection":
        return []
    return run.items.filter(conversation__isnull=False).prefetch_related("judge_answers").order_by("id")[:limit]
