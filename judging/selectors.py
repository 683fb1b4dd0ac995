"""Read-side queries of judge runs: progress, item rows and the runs of a campaign."""
from generation.work_items import run_progress as _progress_of

from .models import JudgeItem, JudgeRun


def run_progress(run: JudgeRun) -> dict:
    """Counts, progress, elapsed time, ETA, calls, tokens and cost of a judge run, from its items."""
    return _progress_of(run, run.items, calls_field="calls")


def run_items(run: JudgeRun):
    return run.items.select_related("conversation").order_by("conversation_id", "sample_index")


def failure_reasons(run: JudgeRun, limit: int = 50):
    return run.items.filter(status=JudgeItem.Status.FAILED).order_by("pk")[:limit]


def campaign_runs(campaign_id: int):
    return JudgeRun.objects.filter(campaign_id=campaign_id).select_related("judge_model", "rubric")
