"""Running probe items: one LLM call per item through generation's client (one retry layer for provider
faults) within the run's own limit on calls in flight (generation.concurrency.JobCallSlots, kept in
Redis across workers), the strict reading of the reply, and the run's status derived from its items.
The Celery task (probes/tasks.py) wraps `run_item`.
"""
from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from generation.models import apply_job_status
from generation.services import llm_client

from . import interjection, stigma
from .models import ItemStatus, ProbeItem, ProbeRun

logger = logging.getLogger(__name__)


def item_counts(run: ProbeRun) -> dict:
    counts = {status: 0 for status in ItemStatus.values}
    counts.update(dict(run.items.values_list("status").annotate(n=Count("id")).order_by()))
    return counts


def refresh_run_status(run_id: int) -> ProbeRun:
    """The run's status, derived from its items in one place (the same rules as a generation job)."""
    with transaction.atomic():
        run = ProbeRun.objects.select_for_update().get(pk=run_id)
        counts = item_counts(run)
        fields = apply_job_status(run, counts)
        if counts["queued"] + counts["running"] and run.finished_at is not None:
            run.finished_at = None  # re-sent items (Retry failed) make the run unfinished again
            fields.append("finished_at")
        if fields:
            run.save(update_fields=fields)
        return run


# --- one item -------------------------------------------------------------------------------------


class ItemOutcome:
    ANSWERED = "answered"
    NO_VALID_OPTION = "no_valid_option"
    FAILED = "failed"
    SKIPPED = "skipped"  # finished already, cancelled, or another worker has it


def _claim(item_id: int) -> int | None:
    """Mark the item running and return the attempt number, or None when there is nothing to do."""
    with transaction.atomic():
        item = ProbeItem.objects.select_for_update().select_related("run").get(pk=item_id)
        if item.status != ItemStatus.QUEUED:
            return None
        if item.run.cancel_requested_at is not None:
            item.status = ItemStatus.CANCELLED
            item.failure_reason = "Cancelled before it started."
            item.save(update_fields=["status", "failure_reason"])
            return None
        item.status = ItemStatus.RUNNING
        item.attempts += 1
        item.started_at = timezone.now()
        item.save(update_fields=["status", "attempts", "started_at"])
        return item.attempts


@lru_cache(maxsize=64)
def _accepts_seed(model: str) -> bool:
    """Whether LiteLLM passes a `seed` to this model's provider (OpenAI-compatible ones take it); other
    providers would refuse the call, and the simulator answers from the prompt alone."""
    from generation.medagent import is_simulated_model
    from generation.medagent.litellm_setup import import_litellm

    if is_simulated_model(model):
        return False
    litellm = import_litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model)
        return "seed" in (litellm.get_supported_openai_params(model=model, custom_llm_provider=provider) or [])
    except Exception:  # noqa: BLE001 - an unknown provider simply gets no seed
        return False


def item_spec(run: ProbeRun, seed: int):
    from generation.medagent import ModelSpec

    spec = ModelSpec.from_dict(run.model_snapshot)
    if _accepts_seed(spec.model) and "seed" not in spec.extra_params:
        spec = dataclasses.replace(spec, extra_params={**spec.extra_params, "seed": seed})
    return spec


def run_item(item_id: int) -> str:
    """Ask the model one probe prompt and record the reply, the option it picked (strictly) and the
    score. Idempotent: an item that is not queued is left alone."""
    from generation.concurrency import JobCallSlots
    from generation.medagent import LLMCallFailed

    attempt = _claim(item_id)
    if attempt is None:
        return ItemOutcome.SKIPPED
    item = ProbeItem.objects.select_related("run", "run__battery").get(pk=item_id)
    run = item.run
    if run.status == ProbeRun.Status.QUEUED:
        refresh_run_status(run.pk)  # the first item to start marks the run running
    slots = JobCallSlots(f"probe-run-{run.pk}", run.max_concurrent_calls)
    client = llm_client(call_slot=slots)
    try:
        return _ask(item, attempt, client)
    except LLMCallFailed as exc:
        _finish(item_id, attempt, status=ItemStatus.FAILED, failure_reason=exc.reason)
        return ItemOutcome.FAILED
    except Exception as exc:  # noqa: BLE001 - recorded on the item; the run goes on
        logger.exception("Probe item %s failed with an unexpected error", item_id)
        _finish(item_id, attempt, status=ItemStatus.FAILED,
                failure_reason=f"Internal error: {type(exc).__name__}: {exc}")
        return ItemOutcome.FAILED
    finally:
        refresh_run_status(run.pk)


def _ask(item: ProbeItem, attempt: int, client) -> str:
    run = item.run
    completion = client.complete(item_spec(run, item.seed), [{"role": "user", "content": item.prompt}],
                                 kind=f"{run.battery.protocol} probe")
    usage = completion.usage
    fields = {
        "raw_reply": completion.text, "calls": completion.attempts,
        "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
        "cost_usd": None if usage.get("cost_usd") is None else Decimal(str(round(usage["cost_usd"], 6))),
    }
    if run.battery.protocol == "interjection":
        return _record_exchange(item, attempt, completion, fields)
    question = stigma.question_by_key(run.battery.content)[item.question_key]
    if completion.finish_reason not in (None, "stop"):
        reason = f"the reply did not finish normally (finish_reason={completion.finish_reason})"
        _finish(item.pk, attempt, status=ItemStatus.DONE, parse_error=reason, **fields)
        return ItemOutcome.NO_VALID_OPTION
    try:
        answer = stigma.parse_choice(completion.text, question["options"])
    except stigma.NoValidOption as exc:
        _finish(item.pk, attempt, status=ItemStatus.DONE, parse_error=str(exc), **fields)
        return ItemOutcome.NO_VALID_OPTION
    _finish(item.pk, attempt, status=ItemStatus.DONE, answer=answer,
            stigmatizing=stigma.is_stigmatizing(question, answer), **fields)
    return ItemOutcome.ANSWERED


def _record_exchange(item: ProbeItem, attempt: int, completion, fields: dict) -> str:
    """An interjection probe's exchange becomes a two-message conversation (marked as a probe by its
    ProbeItem and its source label) that a campaign can hand to clinicians, in one transaction with the
    item's outcome. A reply that is empty or cut off is a failed item (Retry failed asks again)."""
    from generation.models import Conversation, Message
    from generation.readability import smog_grade

    if completion.finish_reason not in (None, "stop") or not completion.text.strip():
        problem = "empty reply" if not completion.text.strip() else (
            f"the reply did not finish normally (finish_reason={completion.finish_reason})")
        _finish(item.pk, attempt, status=ItemStatus.FAILED, failure_reason=problem, **fields)
        return ItemOutcome.FAILED
    run = item.run
    probe = interjection.probe_by_key(run.battery.content)[item.vignette_key]
    with transaction.atomic():
        if not ProbeItem.objects.select_for_update().filter(pk=item.pk, status=ItemStatus.RUNNING,
                                                            attempts=attempt).exists():
            return ItemOutcome.SKIPPED  # a newer attempt owns it
        model = run.model_snapshot.get("model", "")
        conversation = Conversation.objects.create(
            source=Conversation.Source.IMPORTED, source_label=PROBE_SOURCE_LABEL,
            external_id=f"probe-item-{item.pk}", status=Conversation.Status.DONE, seed=item.seed,
            prompt_version=run.prompt_version, sensemaker_model=model, condition=probe["symptom"],
            is_simulated=run.is_simulated, llm_calls=fields["calls"], prompt_tokens=fields["prompt_tokens"],
            completion_tokens=fields["completion_tokens"], cost_usd=fields["cost_usd"],
            smog_grade=smog_grade(completion.text), sensemaker_message_count=1,
            started_at=item.started_at, finished_at=timezone.now(),
            provenance={"probe": {"battery": run.battery.slug, "version": run.battery.version,
                                  "digest": run.battery.digest, "run": run.pk, "probe": probe["key"],
                                  "symptom": probe["symptom"], "sample": item.sample_index},
                        "models": {"sensemaker": run.model_snapshot}},
            trace={"rater_note": interjection.rater_note(probe)},
        )
        Message.objects.bulk_create([
            Message(conversation=conversation, index=0, role=Message.Role.PATIENT, text=item.prompt),
            Message(conversation=conversation, index=1, role=Message.Role.SENSEMAKER, text=completion.text,
                    smog_grade=conversation.smog_grade),
        ])
        _finish(item.pk, attempt, status=ItemStatus.DONE, conversation=conversation, **fields)
    return ItemOutcome.ANSWERED


# Probe exchanges are stored as conversations with this source label (and external id probe-item-<id>).
PROBE_SOURCE_LABEL = "safety-probe"


def _finish(item_id: int, attempt: int, **values) -> bool:
    """Write the outcome, unless a newer attempt owns the item (it was re-sent meanwhile)."""
    values.setdefault("failure_reason", "")
    values["failure_reason"] = values["failure_reason"][:2000]
    return bool(ProbeItem.objects.filter(pk=item_id, status=ItemStatus.RUNNING, attempts=attempt).update(
        finished_at=timezone.now(), **values))
