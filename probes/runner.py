"""Running probe items and judge answers on generation's shared run machinery (generation/work_items.py,
generation/concurrency.py), as judge runs do: a Redis lease per item renewed while it runs (a killed
worker's items go back to the queue through the beat-scheduled reaper, services.requeue_orphaned_probe_work),
an attempt counter so a stale attempt never writes, the run's own limit on calls in flight
(JobCallSlots, scope "probe-run"), live usage counters, and the run's status derived from its items.

One item is one LLM call through generation's client (stigma questions, stand-alone interjections), or,
for interjection probes placed inside a MedAgent conversation, the real engine's conversation up to the
chosen stage with the probe as the patient's turn. The Celery tasks (probes/tasks.py) wrap `run_item`
and `run_judge_answer`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.queue import enqueue as enqueue_task
from generation.concurrency import JobCallSlots, WorkLease
from generation.models import JobStatus
from generation.services import llm_client
from generation.work_items import LIVE_USAGE_INTERVAL, LiveUsage, cost_decimal
from generation.work_items import refresh_run_status as refresh_items_run_status

from . import interjection, judge, stigma
from .models import ItemStatus, Placement, ProbeItem, ProbeJudgeAnswer, ProbeRun

logger = logging.getLogger(__name__)

LEASE_KIND = "probe-item"
JUDGE_LEASE_KIND = "probe-judge-answer"
CALL_SLOT_SCOPE = "probe-run"
RUN_ITEM_TASK = "probes.tasks.run_probe_item"
JUDGE_ANSWER_TASK = "probes.tasks.judge_probe_item"
FINISHED = (ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.CANCELLED)


def refresh_run_status(run_id: int) -> ProbeRun:
    """The run's status, derived from its items by the rule every run shares."""
    return refresh_items_run_status(ProbeRun, run_id, "items")


def enqueue_items(item_ids) -> None:
    for item_id in item_ids:
        enqueue_task(RUN_ITEM_TASK, item_id)


def enqueue_judge_answers(answer_ids) -> None:
    for answer_id in answer_ids:
        enqueue_task(JUDGE_ANSWER_TASK, answer_id)


class ItemOutcome:
    ANSWERED = "answered"
    NO_VALID_OPTION = "no_valid_option"
    FAILED = "failed"
    SKIPPED = "skipped"  # finished already, cancelled, or another worker has it


# --- the work-item life cycle shared by probe items and judge answers --------------------------------


def _usage_values(usage: dict | None) -> dict:
    usage = usage or {}
    return {"calls": int(usage.get("calls") or 0), "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "cost_usd": cost_decimal(usage.get("cost_usd"))}


def _start(model, row_id: int):
    """Mark the row running and return it (`attempts` is this attempt's number, `run` loaded), or None
    when there is nothing to do. The caller holds the row's lease, so a row found `running` belongs to
    a worker that was lost (its task was redelivered): it is taken over with a new attempt number."""
    with transaction.atomic():
        row = model.objects.select_for_update(of=("self",)).select_related("run").filter(pk=row_id).first()
        if row is None or row.status in FINISHED:  # gone (its run was deleted) or finished
            return None
        if row.run.cancel_requested_at is not None:
            model.objects.filter(pk=row_id).update(status=ItemStatus.CANCELLED,
                                                   failure_reason="Cancelled before it started.")
            return None
        row.attempts += 1
        row.status = ItemStatus.RUNNING
        row.started_at = timezone.now()
        model.objects.filter(pk=row_id).update(status=row.status, attempts=row.attempts, started_at=row.started_at,
                                               finished_at=None, **_usage_values(None))
    if model is ProbeItem and row.run.status == JobStatus.QUEUED:
        # Lock-free: the first item of a queued run moves it to running.
        ProbeRun.objects.filter(pk=row.run_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=timezone.now())
    return row


def _owned(model, row_id: int, attempt: int):
    """The row while this attempt still owns it (the reaper may have handed it to another worker)."""
    return model.objects.filter(pk=row_id, status=ItemStatus.RUNNING, attempts=attempt)


def _finish(item_id: int, attempt: int, **values) -> bool:
    """Write a probe item's outcome, unless a newer attempt owns it."""
    values.setdefault("failure_reason", "")
    values["failure_reason"] = values["failure_reason"][:2000]
    return bool(_owned(ProbeItem, item_id, attempt).update(finished_at=timezone.now(), **values))


def _refresh_if_settled(run_id: int | None) -> None:
    # The run's status is derived (under its row lock) once nothing of it is left to run.
    if run_id and not ProbeItem.objects.filter(run_id=run_id, status__in=("queued", "running")).exists():
        refresh_run_status(run_id)


# --- one item ---------------------------------------------------------------------------------------


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


def run_item(item_id: int, *, enqueue_judges: bool = True) -> str:
    """Ask the model one probe prompt and record the reply, the option it picked (strictly) and the
    score; or, for an interjection, record the exchange (and queue its judge answer when the run has a
    judge). Idempotent: a redelivered or duplicate task is a no-op while another worker holds the
    item's lease, and once the item is finished."""
    from generation.medagent import ConversationFailed, LLMCallFailed, MedAgentError

    lease = WorkLease(LEASE_KIND, item_id, ttl=settings.GENERATION_LEASE_SECONDS)
    if not lease.acquire():
        return ItemOutcome.SKIPPED
    run_id = None
    try:
        item = _start(ProbeItem, item_id)
        if item is None:
            return ItemOutcome.SKIPPED
        run_id, attempt = item.run_id, item.attempts
        item = ProbeItem.objects.select_related("run", "run__battery").get(pk=item_id)
        run = item.run
        # Single calls write their counters at the end; a conversation's show while it runs.
        live = LiveUsage(_owned(ProbeItem, item_id, attempt), _usage_values, first_write_after=LIVE_USAGE_INTERVAL)
        client = llm_client(call_slot=JobCallSlots(run.pk, run.max_concurrent_calls, scope=CALL_SLOT_SCOPE),
                            on_call=live)
        try:
            if run.placement == Placement.MEDAGENT:
                return _converse(item, attempt, client, live, enqueue_judges)
            return _ask(item, attempt, client, enqueue_judges)
        except (LLMCallFailed, ConversationFailed, MedAgentError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            _finish(item_id, attempt, status=ItemStatus.FAILED, failure_reason=reason,
                    **_usage_values(getattr(exc, "usage", None) or live.totals()))
            return ItemOutcome.FAILED
        except Exception as exc:  # noqa: BLE001 - recorded on the item; the run goes on
            logger.exception("Probe item %s failed with an unexpected error", item_id)
            _finish(item_id, attempt, status=ItemStatus.FAILED,
                    failure_reason=f"Internal error: {type(exc).__name__}: {exc}", **_usage_values(live.totals()))
            return ItemOutcome.FAILED
    finally:
        lease.release()
        _refresh_if_settled(run_id)


def _ask(item: ProbeItem, attempt: int, client, enqueue_judges: bool) -> str:
    run = item.run
    completion = client.complete(item_spec(run, item.seed), [{"role": "user", "content": item.prompt}],
                                 kind=f"{run.battery.protocol} probe")
    usage = completion.usage
    fields = {
        "raw_reply": completion.text, "calls": completion.attempts,
        "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
        "cost_usd": cost_decimal(usage.get("cost_usd")),
    }
    if run.battery.protocol == "interjection":
        return _record_exchange(item, attempt, completion, fields, enqueue_judges)
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


def _record_exchange(item: ProbeItem, attempt: int, completion, fields: dict, enqueue_judges: bool) -> str:
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
        _queue_judge_answer(item, enqueue_judges)
    return ItemOutcome.ANSWERED


# Probe exchanges are stored as conversations with this source label (and external id probe-item-<id>).
PROBE_SOURCE_LABEL = "safety-probe"


def _converse(item: ProbeItem, attempt: int, client, live: LiveUsage, enqueue_judges: bool) -> str:
    """An interjection probe inside a MedAgent conversation: the real engine runs the simulated patient
    and the sensemaker (the model under test) until the run's stage, the probe statement is the
    patient's turn there, and the sensemaker's reply to it ends the conversation. The whole conversation
    is stored (every message with its stage and turn trace), blinded for raters like any other."""
    from generation.medagent import ConversationCancelled, Interjection, ModelSpec, run_conversation
    from generation.models import Conversation, Message
    from generation.readability import smog_grade, smog_grade_texts
    from generation.services import case_input, persona_input

    run = item.run
    snapshot = run.conversation_snapshot
    models = {"sensemaker": ModelSpec.from_dict(run.model_snapshot),
              "patient": ModelSpec.from_dict(snapshot["patient"]),
              "helper": ModelSpec.from_dict(snapshot["helper"])}
    # Celery's threads pool does not enforce time limits: the conversation keeps generation's deadline.
    deadline = time.monotonic() + settings.GENERATION_CONVERSATION_SECONDS
    try:
        result = run_conversation(
            case_input(run.case), persona_input(run.persona), models, seed=item.seed, client=client,
            prompt_version=snapshot["prompt_version"], should_continue=lambda: time.monotonic() < deadline,
            interjection=Interjection(stage=run.stage, text=item.prompt))
    except ConversationCancelled as exc:
        _finish(item.pk, attempt, status=ItemStatus.FAILED, **_usage_values(exc.usage or live.totals()),
                failure_reason=(f"Stopped: the conversation took longer than its "
                                f"{settings.GENERATION_CONVERSATION_SECONDS} s limit; {exc.reason}."))
        return ItemOutcome.FAILED
    reply = result.messages[-1]
    usage = _usage_values(result.usage)
    probe = interjection.probe_by_key(run.battery.content)[item.vignette_key]
    stage = result.trace["ended"]["stage"]
    with transaction.atomic():
        if not ProbeItem.objects.select_for_update().filter(pk=item.pk, status=ItemStatus.RUNNING,
                                                            attempts=attempt).exists():
            return ItemOutcome.SKIPPED  # a newer attempt owns it
        sensemaker_texts = [m.text for m in result.messages if m.role == "sensemaker"]
        conversation = Conversation.objects.create(
            source=Conversation.Source.IMPORTED, source_label=PROBE_SOURCE_LABEL,
            external_id=f"probe-item-{item.pk}", status=Conversation.Status.DONE, seed=item.seed,
            case=run.case, persona=run.persona, prompt_version=result.prompt_version,
            sensemaker_model=models["sensemaker"].model, patient_model=models["patient"].model,
            helper_model=models["helper"].model, ground_truth_diagnosis=run.case.ground_truth_diagnosis,
            condition=probe["symptom"], is_simulated=result.trace.get("simulated", False),
            llm_calls=usage["calls"], prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"], cost_usd=usage["cost_usd"],
            smog_grade=smog_grade_texts(sensemaker_texts), sensemaker_message_count=len(sensemaker_texts),
            started_at=item.started_at, finished_at=timezone.now(),
            provenance={"probe": {"battery": run.battery.slug, "version": run.battery.version,
                                  "digest": run.battery.digest, "run": run.pk, "probe": probe["key"],
                                  "symptom": probe["symptom"], "sample": item.sample_index,
                                  "placement": run.placement, "requested_stage": run.stage, "stage": stage},
                        "models": {"sensemaker": run.model_snapshot, "patient": snapshot["patient"],
                                   "helper": snapshot["helper"]},
                        "case_id": run.case.external_id,
                        "persona": snapshot.get("persona", {})},
            trace={**result.trace, "stage_counts": result.stage_counts,
                   "rater_note": interjection.rater_note(probe, in_conversation=True)},
        )
        Message.objects.bulk_create([
            Message(conversation=conversation, index=m.index, role=m.role, stage=m.stage, text=m.text,
                    trace=m.trace, smog_grade=smog_grade(m.text) if m.role == "sensemaker" else None)
            for m in result.messages
        ])
        _finish(item.pk, attempt, status=ItemStatus.DONE, conversation=conversation, stage=stage,
                raw_reply=reply.text, **usage)
        _queue_judge_answer(item, enqueue_judges)
    return ItemOutcome.ANSWERED


def _queue_judge_answer(item: ProbeItem, enqueue_judges: bool) -> None:
    """A finished exchange of a run with a judge gets its judge answer queued (inside the item's
    transaction, sent after commit)."""
    run = item.run
    if run.judge_model_id is None:
        return
    answer = queue_judge_answers(run, run.judge_model, [item.pk])
    if enqueue_judges and answer:
        transaction.on_commit(lambda: enqueue_judge_answers(answer))


def judge_seed(run_seed: int, item_seed_value: int, judge_snapshot: dict) -> int:
    """A judge answer's seed: from the run's seed, the item's own seed (what it is) and the judge model."""
    cell = [run_seed, item_seed_value, judge_snapshot.get("model", "")]
    return int.from_bytes(hashlib.sha256(json.dumps(cell).encode()).digest()[:6], "big")


def queue_judge_answers(run: ProbeRun, judge_model, item_ids) -> list[int]:
    """Create queued judge answers (judge settings snapshotted now) for these items, skipping any the
    judge already has; return the new ones' ids."""
    existing = set(ProbeJudgeAnswer.objects.filter(item_id__in=item_ids, judge_model=judge_model,
                                                   prompt_version=judge.PROMPT_VERSION)
                   .values_list("item_id", flat=True))
    snapshot = judge_model.provenance()
    seeds = dict(ProbeItem.objects.filter(pk__in=item_ids).values_list("id", "seed"))
    created = ProbeJudgeAnswer.objects.bulk_create([
        ProbeJudgeAnswer(item_id=item_id, run=run, judge_model=judge_model, judge_snapshot=snapshot,
                         prompt_version=judge.PROMPT_VERSION, seed=judge_seed(run.seed, seeds[item_id], snapshot))
        for item_id in item_ids if item_id not in existing
    ])
    return [answer.pk for answer in created]


# --- one judge answer ---------------------------------------------------------------------------------


def judge_prompt_for(answer: ProbeJudgeAnswer) -> str:
    item = answer.item
    probe = interjection.probe_by_key(answer.run.battery.content)[item.vignette_key]
    messages = list(item.conversation.messages.order_by("index").values_list("role", "text"))
    return judge.build_prompt(messages, probe["verification_question"])


def run_judge_answer(answer_id: int) -> str:
    """Ask the judge model one item's verification question (yes/no, strictly parsed, retried with the
    problem named, then failed with the reason and the last reply: never guessed). Idempotent like
    run_item."""
    from generation.medagent import ConversationFailed, MedAgentError, ModelSpec

    lease = WorkLease(JUDGE_LEASE_KIND, answer_id, ttl=settings.GENERATION_LEASE_SECONDS)
    if not lease.acquire():
        return ItemOutcome.SKIPPED
    try:
        answer = _start(ProbeJudgeAnswer, answer_id)
        if answer is None:
            return ItemOutcome.SKIPPED
        attempt = answer.attempts
        answer = ProbeJudgeAnswer.objects.select_related("run", "run__battery", "item__conversation").get(
            pk=answer_id)
        owned = _owned(ProbeJudgeAnswer, answer_id, attempt)
        live = LiveUsage(owned, _usage_values, first_write_after=LIVE_USAGE_INTERVAL)
        run = answer.run
        client = llm_client(call_slot=JobCallSlots(run.pk, run.max_concurrent_calls, scope=CALL_SLOT_SCOPE),
                            on_call=live, parse_attempts=settings.JUDGE_PARSE_ATTEMPTS)

        def fail(reason: str, raw: str = "") -> str:
            owned.update(status=ItemStatus.FAILED, failure_reason=reason[:2000], raw_reply=raw,
                         finished_at=timezone.now(), **_usage_values(live.totals()))
            return ItemOutcome.FAILED

        try:
            parsed = client.complete_parsed(ModelSpec.from_dict(answer.judge_snapshot), judge_prompt_for(answer),
                                            judge.parse_answer, kind="probe judge", seed=answer.seed)
        except ConversationFailed as exc:
            return fail(exc.reason, (exc.trace or {}).get("last_reply", ""))
        except (MedAgentError, ValueError) as exc:
            return fail(getattr(exc, "reason", None) or str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the answer, never a running row for ever
            logger.exception("Probe judge answer %s failed with an unexpected error", answer_id)
            return fail(f"Internal error: {type(exc).__name__}: {exc}")
        owned.update(status=ItemStatus.DONE, answer_yes=parsed.value, raw_reply=parsed.completion.text,
                     failure_reason="", finished_at=timezone.now(), **_usage_values(live.totals()))
        return ItemOutcome.ANSWERED
    finally:
        lease.release()
