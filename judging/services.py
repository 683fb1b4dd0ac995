"""Judge-run use cases: launch, cancel and retry runs; run one judge item.

Views, the API and the `judge` command call these; Celery tasks (judging/tasks.py) are thin wrappers
around `run_item_attempt`. The run/item machinery (leases, call slots, live usage, the reaper, status
derivation) is generation's, shared through generation/work_items.py and generation/concurrency.py.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from core.queue import enqueue as queue_task
from generation.concurrency import JobCallSlots, WorkLease
from generation.models import Conversation, ModelConfig
from generation.services import llm_client
from generation.work_items import (
    LIVE_USAGE_INTERVAL,
    LiveUsage,
    cancel_queued_items,
    cost_decimal,
    lost_item_ids,
    reap_lost_items,
    refresh_run_status,
    requeue_failed_items,
    run_in_threads,
    stalled_queued_item_ids,
)
from rating.campaigns import Selection, select_conversations
from rating.models import Campaign, Rubric

from . import events
from .models import JudgeItem, JudgeRun, JudgeScore
from .parsing import parse_judge_reply
from .prompts import PROMPT_VERSION, build_judge_prompt, judged_axes

logger = logging.getLogger(__name__)

LEASE_KIND = "judge-item"
CALL_SLOT_SCOPE = "judge-run"
MAX_SAMPLES = 20
MAX_CONCURRENT_CALLS = 256


class JudgeRunError(ValueError):
    """A launch request that cannot be carried out; `errors` maps form fields (or "__all__") to messages."""

    def __init__(self, errors: dict[str, str] | str):
        self.errors = errors if isinstance(errors, dict) else {"__all__": errors}
        super().__init__("; ".join(self.errors.values()))


class ItemOutcome:
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already finished, cancelled, or another worker holds it


# --- launching -----------------------------------------------------------------------------------


@dataclass
class JudgeRequest:
    """What to judge (a campaign's conversations, or finished conversations chosen by a filter), with
    which judge model, on which rubric (default: the campaign's), and how many samples each."""

    judge_model: ModelConfig
    campaign: Campaign | None = None
    selection: Selection | None = None
    rubric: Rubric | None = None
    name: str = ""
    samples: int = 1
    seed: int = 0
    max_concurrent_calls: int = 8


def item_seed(run_seed: int, conversation: Conversation, sample_index: int) -> int:
    """From the run's seed, what the conversation IS (its own generation seed, or its external id when
    imported) and the sample index: never from database keys, which differ between installations."""
    case_id = conversation.case.external_id if conversation.case_id else ""
    identity = [conversation.seed, conversation.external_id, case_id]
    if identity == [None, "", ""]:
        identity = [conversation.pk]  # nothing else tells it apart
    digest = hashlib.sha256(json.dumps([run_seed, *identity, sample_index]).encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _conversations(req: JudgeRequest):
    if req.campaign is not None:
        return Conversation.objects.filter(campaign_items__campaign=req.campaign, status=Conversation.Status.DONE)
    return select_conversations(req.selection)


def validate_request(req: JudgeRequest) -> tuple[Rubric, list[Conversation]]:
    """Every problem at once, by field, so a form can show them where they belong."""
    from generation.medagent.types import ModelSpecError

    errors: dict[str, str] = {}
    judge = req.judge_model
    if judge is None:
        errors["judge_model"] = "Choose a judge model configuration."
    elif not judge.is_active:
        errors["judge_model"] = f"The model configuration {judge.name!r} is inactive."
    else:
        try:
            judge.to_spec()
        except ModelSpecError as exc:
            errors["judge_model"] = f"The model configuration {judge.name!r} is unusable: {exc}"
    if (req.campaign is None) == (req.selection is None):
        errors["__all__"] = "Judge either a campaign's conversations or a filter's, not both and not neither."
    rubric = req.rubric or (req.campaign.rubric if req.campaign is not None else None)
    if rubric is None:
        errors["rubric"] = "Choose a rubric (a filter of conversations has no campaign rubric to default to)."
    elif not judged_axes(rubric):
        errors["rubric"] = f"The rubric {rubric} has no axis a judge can score (all are computed)."
    if not isinstance(req.samples, int) or not 1 <= req.samples <= MAX_SAMPLES:
        errors["samples"] = f"Samples per conversation must be between 1 and {MAX_SAMPLES}."
    if not isinstance(req.max_concurrent_calls, int) or not 1 <= req.max_concurrent_calls <= MAX_CONCURRENT_CALLS:
        errors["max_concurrent_calls"] = f"Calls in flight must be between 1 and {MAX_CONCURRENT_CALLS}."
    if not isinstance(req.seed, int) or not 0 <= req.seed < 2**63:
        errors["seed"] = "The seed must be a whole number from 0 to 2^63 - 1."
    conversations = []
    if "__all__" not in errors:
        conversations = list(_conversations(req).filter(messages__isnull=False).distinct()
                             .select_related("case").order_by("pk"))
        if not conversations:
            where = "This campaign has" if req.campaign is not None else "The filter matches"
            errors["__all__"] = f"{where} no finished conversation with messages to judge."
    if errors:
        raise JudgeRunError(errors)
    return rubric, conversations


@transaction.atomic
def launch_run(actor, req: JudgeRequest, *, enqueue_tasks: bool = True) -> JudgeRun:
    """Create the run and one queued item per conversation x sample; enqueue them after commit (or
    not, when the caller runs them in-process with `run_inline`)."""
    rubric, conversations = validate_request(req)
    judge = req.judge_model
    run = JudgeRun.objects.create(
        name=req.name.strip() or f"{judge.name} on {req.campaign or 'filtered conversations'}",
        campaign=req.campaign, rubric=rubric, judge_model=judge,
        # The settings at launch: later edits of the configuration do not rewrite what was run.
        model_snapshot=judge.provenance(),
        prompt_version=PROMPT_VERSION, samples=req.samples, seed=req.seed,
        max_concurrent_calls=req.max_concurrent_calls, status=JudgeRun.Status.QUEUED,
        selection={"campaign": req.campaign.pk} if req.campaign is not None else req.selection.as_json(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    JudgeItem.objects.bulk_create([
        JudgeItem(run=run, conversation=conversation, sample_index=sample,
                  seed=item_seed(req.seed, conversation, sample))
        for conversation in conversations for sample in range(req.samples)
    ])
    record(actor, "judge_run.launch", run, new={
        "name": run.name, "judge": run.model_snapshot, "rubric": str(rubric), "samples": run.samples,
        "conversations": len(conversations), "items": len(conversations) * run.samples,
    })
    if enqueue_tasks:
        ids = list(run.items.values_list("id", flat=True))
        if len(ids) <= ENQUEUE_IN_CALLER_MAX:
            transaction.on_commit(lambda: enqueue(ids))
        else:
            transaction.on_commit(lambda: queue_task(JUDGE_DISPATCH_TASK, run.pk))
    return run


JUDGE_ITEM_TASK = "judging.tasks.judge_item"
JUDGE_DISPATCH_TASK = "judging.tasks.dispatch_judge_run"
# Sending a task costs about half a millisecond, and a run over a large campaign has tens of thousands
# of items: above this many, a worker sends them, so launching from a page returns at once.
ENQUEUE_IN_CALLER_MAX = 500


def dispatch_judge_run(run_id: int) -> int:
    """Send the tasks of a run's queued items (the launch's hand-off to a worker). Safe to repeat: a
    duplicate task of an item is a no-op. Returns how many were sent."""
    ids = list(JudgeItem.objects.filter(run_id=run_id, status=JudgeItem.Status.QUEUED)
               .order_by("id").values_list("id", flat=True))
    enqueue(ids)
    return len(ids)


def enqueue(item_ids) -> None:
    """One task per item, sent by name: the tasks module imports this one, never the reverse."""
    for item_id in item_ids:
        queue_task(JUDGE_ITEM_TASK, item_id)


def run_inline(run: JudgeRun, threads: int = 8) -> dict:
    """Run a run's queued items in this process (no worker needed): the task's own code path, used by
    `manage.py judge --inline` and the tests of single items."""
    ids = list(run.items.filter(status=JudgeItem.Status.QUEUED).values_list("id", flat=True))
    return run_in_threads(ids, run_item_attempt, threads)


@transaction.atomic
def cancel_run(run: JudgeRun, actor) -> int:
    """Queued items stop at once; running ones finish (their one call is already under way)."""
    cancelled = cancel_queued_items(JudgeRun, run, "items")
    record(actor, "judge_run.cancel", run, new={"cancelled_queued": cancelled})
    refresh_status(run.pk)
    return cancelled


@transaction.atomic
def retry_failed_judge_items(run: JudgeRun, actor) -> int:
    """Re-run the failed items with their original seeds (and re-send items still queued)."""
    failed, still_queued = requeue_failed_items(JudgeRun, run, "items")
    if not failed:
        return 0
    record(actor, "judge_run.retry_failed", run, new={"items": len(failed)})
    transaction.on_commit(lambda: enqueue(failed + still_queued))
    return len(failed)


def refresh_status(run_id: int) -> JudgeRun:
    """Derive the run's status from its items; when this call finishes the run (first time, or again after
    Retry failed), tell the apps that read judge scores (results recomputes the campaigns it scored)."""
    was_finished = JudgeRun.objects.filter(pk=run_id, finished_at__isnull=False).exists()
    run = refresh_run_status(JudgeRun, run_id, "items")
    if run.finished_at is not None and not was_finished:
        events.judge_run_finished(run_id)
    return run


# --- one item --------------------------------------------------------------------------------------


def _usage_values(usage: dict | None) -> dict:
    usage = usage or {}
    return {"calls": int(usage.get("calls") or 0), "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "cost_usd": cost_decimal(usage.get("cost_usd"))}


# One judge call's round trips to PostgreSQL are few on purpose: with many calls in flight, each round
# trip is a wait for the worker's GIL and the database's CPU, and those waits (not the provider)
# bound a run's calls per second (benchmarks/judge_throughput.py). An attempt makes three: claim and
# read, finish, and the "anything left?" check.

@dataclass(frozen=True)
class ClaimedItem:
    """What one attempt needs of its item, its run and its conversation (read in one query)."""
    id: int
    attempt: int
    seed: int
    run_id: int
    run_status: str
    rubric_id: int
    max_concurrent_calls: int
    prompt_version: str
    model_snapshot: dict
    ground_truth: str
    messages: list


# Claim and read in one statement: the item goes to running (a new attempt) unless it is finished or its
# run is being cancelled, and the row returned holds what the call needs of the item, its run and its
# conversation, messages included. Raw SQL because this runs once per judge call: the ORM cannot claim
# and read at once, and compiling the equivalent query costs more CPU than the statement itself.
_CLAIM = """
UPDATE {item} AS i SET status = 'running', attempts = i.attempts + 1, started_at = %(now)s, finished_at = NULL,
    calls = 0, prompt_tokens = 0, completion_tokens = 0, cost_usd = NULL
FROM {run} AS r, {conversation} AS c
WHERE i.id = %(item_id)s AND i.status IN ('queued', 'running') AND r.id = i.run_id
    AND r.cancel_requested_at IS NULL AND c.id = i.conversation_id
RETURNING i.attempts, i.seed, i.run_id, r.status, r.rubric_id, r.max_concurrent_calls, r.prompt_version,
    r.model_snapshot, c.ground_truth_diagnosis,
    ARRAY(SELECT json_build_object('role', m.role, 'text', m.text) FROM {message} AS m
          WHERE m.conversation_id = i.conversation_id ORDER BY m.index)
"""


def _start(item_id: int) -> ClaimedItem | None:
    """Mark the item running (this attempt's number is `attempts`) and read what the call needs, or
    return None if there is nothing to do. The caller holds the item's lease, so no other worker
    claims it; the conditional UPDATE is atomic against a concurrent cancel."""
    from django.db import connection

    from generation.models import Message

    sql = _CLAIM.format(**{name: connection.ops.quote_name(model._meta.db_table) for name, model in (
        ("item", JudgeItem), ("run", JudgeRun), ("conversation", Conversation), ("message", Message))})
    with connection.cursor() as cursor:
        cursor.execute(sql, {"item_id": item_id, "now": timezone.now()})
        row = cursor.fetchone()
    if row is None:
        # Finished already, or its run is being cancelled: an unfinished item then stops here.
        JudgeItem.objects.filter(pk=item_id, status__in=(JudgeItem.Status.QUEUED, JudgeItem.Status.RUNNING)).update(
            status=JudgeItem.Status.CANCELLED, failure_reason="Cancelled before it started.")
        return None
    *fields, model_snapshot, ground_truth, messages = row
    # Django has psycopg2 hand jsonb over as text (JSONField decodes it); the json[] of messages is decoded.
    item = ClaimedItem(item_id, *fields, model_snapshot=json.loads(model_snapshot), ground_truth=ground_truth,
                       messages=list(messages or []))
    if item.run_status == JudgeRun.Status.QUEUED:
        # Lock-free: the first item of a queued run moves it to running.
        JudgeRun.objects.filter(pk=item.run_id, status=JudgeRun.Status.QUEUED).update(
            status=JudgeRun.Status.RUNNING, started_at=timezone.now())
    return item


@dataclass(frozen=True)
class RubricForJudge:
    name: str
    instructions: str
    axes: list
    axis_ids: dict


@functools.lru_cache(maxsize=64)
def rubric_for_judge(rubric_id: int) -> RubricForJudge:
    """What the judge needs of a rubric. A rubric version never changes (new content is a new
    version), so each worker reads it once instead of once per judge call."""
    rubric = Rubric.objects.get(pk=rubric_id)
    return RubricForJudge(rubric.name, rubric.instructions, judged_axes(rubric),
                          dict(rubric.axes.values_list("key", "id")))


def _owned(item_id: int, attempt: int):
    """The item's row while this attempt still owns it (the reaper may have handed it on)."""
    return JudgeItem.objects.filter(pk=item_id, attempts=attempt, status=JudgeItem.Status.RUNNING)


def _final_fields(usage: dict, raw_reply: str, reason: str) -> dict:
    return {"status": JudgeItem.Status.FAILED if reason else JudgeItem.Status.DONE,
            "failure_reason": reason[:2000], "raw_reply": raw_reply or "", "finished_at": timezone.now(),
            **_usage_values(usage)}


# The item's final state and its scores in ONE statement, so an item never has half its scores and a
# finished call costs one round trip: the UPDATE both checks that this attempt still owns the row and
# locks it; the scores are inserted only for a row it updated. A score row left by an earlier attempt
# (none is expected: only a finisher writes scores) is overwritten.
_FINISH_WITH_SCORES = """
WITH owned AS (
    UPDATE {item} SET status = %(status)s, failure_reason = %(failure_reason)s, raw_reply = %(raw_reply)s,
        finished_at = %(finished_at)s, calls = %(calls)s, prompt_tokens = %(prompt_tokens)s,
        completion_tokens = %(completion_tokens)s, cost_usd = %(cost_usd)s
    WHERE id = %(item_id)s AND attempts = %(attempt)s AND status = 'running'
    RETURNING id
)
INSERT INTO {score} (item_id, axis_id, value, rationale, cited_messages)
SELECT owned.id, s.axis_id, s.value, s.rationale, s.cited_messages
FROM owned, unnest(%(axis_ids)s::bigint[], %(values)s::double precision[], %(rationales)s::text[],
                   %(cited)s::jsonb[]) AS s(axis_id, value, rationale, cited_messages)
ON CONFLICT (item_id, axis_id) DO UPDATE SET value = EXCLUDED.value, rationale = EXCLUDED.rationale,
    cited_messages = EXCLUDED.cited_messages
RETURNING item_id
"""


def _finish(item_id: int, attempt: int, *, rubric_id: int, usage: dict, raw_reply: str, scores=(),
            reason: str = "") -> bool:
    """Record the attempt's end (scores, or the failure's reason); False if this attempt no longer
    owns the item."""
    fields = _final_fields(usage, raw_reply, reason)
    if not scores:
        return bool(_owned(item_id, attempt).update(**fields))
    from django.db import connection

    axis_ids = rubric_for_judge(rubric_id).axis_ids
    sql = _FINISH_WITH_SCORES.format(item=connection.ops.quote_name(JudgeItem._meta.db_table),
                                     score=connection.ops.quote_name(JudgeScore._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, {
            **fields, "item_id": item_id, "attempt": attempt,
            "axis_ids": [axis_ids[s.axis_key] for s in scores], "values": [float(s.value) for s in scores],
            "rationales": [s.rationale for s in scores],
            "cited": [json.dumps(list(s.cited_messages)) for s in scores],
        })
        return cursor.fetchone() is not None


def judge_prompt(item: ClaimedItem) -> tuple[str, list, int]:
    """(prompt, judged axes, message count) for one item: the conversation as raters see it."""
    rubric = rubric_for_judge(item.rubric_id)
    messages = item.messages or []
    prompt = build_judge_prompt(rubric_name=rubric.name, instructions=rubric.instructions, axes=rubric.axes,
                                messages=messages, ground_truth=item.ground_truth or None,
                                version=item.prompt_version)
    return prompt, rubric.axes, len(messages)


def run_item_attempt(item_id: int) -> str:
    """Judge one conversation once (one sample). Idempotent: a redelivered or duplicate task is a no-op
    while another worker holds the item's lease, and once the item is finished."""
    from generation.medagent import ConversationFailed, MedAgentError, ModelSpec

    lease = WorkLease(LEASE_KIND, item_id, ttl=settings.GENERATION_LEASE_SECONDS)
    if not lease.acquire():
        return ItemOutcome.SKIPPED
    run_id = None
    try:
        item = _start(item_id)
        if item is None:
            return ItemOutcome.SKIPPED
        run_id, attempt = item.run_id, item.attempt
        finish = functools.partial(_finish, item_id, attempt, rubric_id=item.rubric_id)
        # Most items are one call, whose counters the final write records: live writes begin only
        # once an item has been retrying for a while.
        live = LiveUsage(_owned(item_id, attempt), _usage_values, first_write_after=LIVE_USAGE_INTERVAL)
        client = llm_client(call_slot=JobCallSlots(run_id, item.max_concurrent_calls, scope=CALL_SLOT_SCOPE),
                            on_call=live, parse_attempts=settings.JUDGE_PARSE_ATTEMPTS)
        try:
            prompt, axes, count = judge_prompt(item)
            parsed = client.complete_parsed(
                ModelSpec.from_dict(item.model_snapshot), prompt, lambda text: parse_judge_reply(text, axes, count),
                kind="judge", seed=item.seed,
            )
        except ConversationFailed as exc:
            # No usable reply after the bounded retries: failed with the reason and the last reply as
            # received; never a default score.
            trace = exc.trace or {}
            finish(usage=live.totals(), raw_reply=trace.get("last_reply", ""), reason=exc.reason)
            return ItemOutcome.FAILED
        except (MedAgentError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            finish(usage=live.totals(), raw_reply="", reason=reason)
            return ItemOutcome.FAILED
        except Exception as exc:
            # A bug or an outage must end as a failed item with its reason, not as a "running" row
            # that the reaper re-queues for ever.
            logger.exception("Judge item %s failed with an unexpected error", item_id)
            finish(usage=live.totals(), raw_reply="", reason=f"Internal error: {type(exc).__name__}: {exc}")
            return ItemOutcome.FAILED
        finish(usage=live.totals(), raw_reply=parsed.completion.text, scores=parsed.value)
        return ItemOutcome.DONE
    finally:
        lease.release()
        run_id = run_id or JudgeItem.objects.filter(pk=item_id).values_list("run_id", flat=True).first()
        # The run's status is derived (under its row lock) only once nothing is left to run.
        if run_id and not JudgeItem.objects.filter(run_id=run_id, status__in=("queued", "running")).exists():
            refresh_status(run_id)


def orphaned_item_ids() -> list[int]:
    return lost_item_ids(JudgeItem, LEASE_KIND)


def requeue_orphaned_judge_items() -> list[int]:
    """Hand items of dead workers to live ones (with their seeds); nothing of theirs was written, as
    scores are written only on completion. One that lost GENERATION_MAX_ATTEMPTS workers is failed.
    Queued items of runs that have stalled (their messages died with a worker's prefetch) are sent
    again too. Returns the ids of the running items put back in the queue."""
    requeued, given_up = reap_lost_items(JudgeItem, LEASE_KIND, max_attempts=settings.GENERATION_MAX_ATTEMPTS)
    for run_id in set(JudgeItem.objects.filter(pk__in=given_up).values_list("run_id", flat=True)):
        refresh_status(run_id)
    stalled = stalled_queued_item_ids(JudgeRun, "items", quiet_seconds=settings.GENERATION_LEASE_SECONDS)
    if stalled:
        logger.warning("Re-sent queued judge items of stalled runs: %s", stalled)
    if requeued or stalled:
        enqueue(requeued + stalled)
    return requeued
