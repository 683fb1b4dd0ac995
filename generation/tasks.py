"""Celery tasks: one per conversation, plus the reaper for conversations of lost workers."""
from celery import shared_task

from . import services


@shared_task(name=services.GENERATE_CONVERSATION_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def generate_conversation(conversation_id: int) -> str:
    return services.run_conversation_attempt(conversation_id)


@shared_task(ignore_result=True)
def requeue_orphaned_conversations() -> list[int]:
    return services.requeue_orphaned_conversations()


@shared_task(acks_late=True, ignore_result=True)
def extract_facts_for_case(case_id: int, helper_model_id: int) -> None:
    from .models import CaseStudy, ModelConfig

    services.extract_case_facts(CaseStudy.objects.get(pk=case_id), ModelConfig.objects.get(pk=helper_model_id))
