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
    from .work_items import run_progress

    return run_progress(job, job.conversations, calls_field="llm_calls")
