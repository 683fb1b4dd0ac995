"""Generation use cases: launch, cancel and retry jobs; run one conversation; extract case facts.

Views, the API and management commands call these; Celery tasks (generation/tasks.py) are thin
wrappers around `run_conversation_attempt`. The tasks import this module, so it enqueues them by name.
"""
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import record
from core import queue

from .models import CaseStudy, Conversation, GenerationJob, Literacy, Message, ModelConfig, Persona, Trait

logger = logging.getLogger(__name__)

# The registered name of generation.tasks.generate_conversation (tasks.py declares it with this name).
GENERATE_CONVERSATION_TASK = "generation.tasks.generate_conversation"

# The paper's persona grid: each Big Five trait High (the other four Low) x Basic/Advanced literacy.
DEFAULT_TRAITS = tuple(Trait.values)
DEFAULT_LITERACIES = (Literacy.BASIC, Literacy.ADVANCED)


class GenerationError(ValueError):
    """A request that cannot be carried out; the message is meant for the admin."""


# --- building engine inputs from rows -------------------------------------------------------------


def case_input(case: CaseStudy):
    from .medagent import CaseInput

    return CaseInput(
        case_id=case.external_id, text=case.text, ground_truth=case.ground_truth_diagnosis,
        facts=list(case.facts), vital_facts=list(case.vital_facts), intent=case.intent, goal=case.goal,
        condition=case.condition,
    )


def persona_input(persona: Persona):
    from .medagent import PersonaInput

    return PersonaInput(trait=persona.trait, literacy=persona.literacy, intent=persona.intent, goal=persona.goal)


def llm_client(*, call_slot=None, on_call=None):
    from .medagent import LLMClient

    return LLMClient(
        timeout=settings.LLM_REQUEST_TIMEOUT,
        max_attempts=settings.LLM_MAX_ATTEMPTS,
        backoff_base=settings.LLM_BACKOFF_BASE,
        call_slot=call_slot,
        on_call=on_call,
    )


# --- jobs ---------------------------------------------------------------------------------------


def personas_for_case(case: CaseStudy, traits, literacies) -> list[Persona]:
    personas = []
    for trait in traits:
        for literacy in literacies:
            persona, _ = Persona.objects.get_or_create(
                trait=trait, literacy=literacy, intent=case.intent, goal=case.goal
            )
            personas.append(persona)
    return personas


@dataclass
class JobRequest:
    name: str
    cases: list
    patient_model: ModelConfig
    sensemaker_model: ModelConfig
    helper_model: ModelConfig
    traits: tuple = DEFAULT_TRAITS
    literacies: tuple = DEFAULT_LITERACIES
    seed: int = 0
    max_concurrent_calls: int = 8
    prompt_version: str = ""


def validate_job_request(req: JobRequest) -> None:
    from .medagent.prompt_set import PROMPT_VERSION, load_prompts

    if not req.cases:
        raise GenerationError("Choose at least one case study.")
    not_ready = [c.external_id for c in req.cases if not c.ready_for_generation]
    if not_ready:
        raise GenerationError(
            "These case studies have no facts, intent or goal yet (extract and review them first): "
            + ", ".join(not_ready)
        )
    bad_traits = set(req.traits) - set(Trait.values)
    bad_lit = set(req.literacies) - set(Literacy.values)
    if not req.traits or not req.literacies or bad_traits or bad_lit:
        raise GenerationError("Choose at least one trait and one literacy level from the persona grid.")
    inactive = [m.name for m in (req.patient_model, req.sensemaker_model, req.helper_model) if not m.is_active]
    if inactive:
        raise GenerationError(f"These model configurations are inactive: {', '.join(inactive)}")
    if not 1 <= req.max_concurrent_calls <= 256:
        raise GenerationError("Concurrent calls must be between 1 and 256.")
    try:
        load_prompts(req.prompt_version or PROMPT_VERSION)
    except Exception as exc:  # noqa: BLE001 - any loader error means the version is unusable
        raise GenerationError(f"Unknown prompt version {req.prompt_version!r}: {exc}") from exc


@transaction.atomic
def launch_job(actor, req: JobRequest, *, enqueue_tasks: bool = True) -> GenerationJob:
    """Create the job and one queued conversation per case x persona; enqueue them after commit
    (or not, when the caller runs them in-process with `run_inline`)."""
    from .medagent.prompt_set import PROMPT_VERSION

    validate_job_request(req)
    job = GenerationJob.objects.create(
        name=req.name,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        patient_model=req.patient_model,
        sensemaker_model=req.sensemaker_model,
        helper_model=req.helper_model,
        prompt_version=req.prompt_version or PROMPT_VERSION,
        seed=req.seed,
        max_concurrent_calls=req.max_concurrent_calls,
        status=GenerationJob.Status.QUEUED,
        settings_snapshot={
            "patient": req.patient_model.provenance(),
            "sensemaker": req.sensemaker_model.provenance(),
            "helper": req.helper_model.provenance(),
            "traits": list(req.traits),
            "literacies": list(req.literacies),
            "case_ids": [c.external_id for c in req.cases],
        },
    )
    conversations = []
    models_used = (req.sensemaker_model, req.patient_model, req.helper_model)
    for case in req.cases:
        for persona in personas_for_case(case, req.traits, req.literacies):
            conversations.append(
                Conversation(
                    job=job, case=case, persona=persona, status=Conversation.Status.QUEUED,
                    # Each conversation's seed is derived from the job seed and its cell, so a
                    # re-run of the same job on a deterministic model reproduces every dialogue,
                    # on this installation or any other.
                    seed=conversation_seed(req.seed, case, persona),
                    prompt_version=job.prompt_version,
                    sensemaker_model=req.sensemaker_model.model,
                    patient_model=req.patient_model.model,
                    helper_model=req.helper_model.model,
                    ground_truth_diagnosis=case.ground_truth_diagnosis,
                    condition=case.condition,
                    is_simulated=any(m.is_simulator for m in models_used),
                    provenance={
                        "models": job.settings_snapshot,
                        "persona": {"trait": persona.trait, "literacy": persona.literacy,
                                    "intent": persona.intent, "goal": persona.goal},
                        "case_id": case.external_id,
                        "prompt_version": job.prompt_version,
                    },
                )
            )
    Conversation.objects.bulk_create(conversations)
    record(actor, "job.launch", job, new={"conversations": len(conversations), "name": job.name})
    if enqueue_tasks:
        ids = list(job.conversations.values_list("id", flat=True))
        transaction.on_commit(lambda: enqueue_conversations(ids))
    return job


def run_inline(job: GenerationJob, threads: int = 8) -> dict:
    """Run a job's queued conversations in this process (no worker needed): the same code path as
    the Celery task, used by `manage.py generate --inline` and the demo seed."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    ids = list(job.conversations.filter(status=Conversation.Status.QUEUED).values_list("id", flat=True))

    def run(cid):
        try:
            return run_conversation_attempt(cid)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        outcomes = list(pool.map(run, ids))
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}


def conversation_seed(job_seed: int, case: CaseStudy, persona: Persona) -> int:
    """From what the cell IS (the case's id as imported, the persona's content), never from database
    keys, which differ between installations."""
    import hashlib
    import json

    cell = [job_seed, case.external_id, persona.trait, persona.literacy, persona.intent, persona.goal]
    digest = hashlib.sha256(json.dumps(cell).encode()).digest()
    return int.from_bytes(digest[:6], "big")


def enqueue_conversations(conversation_ids) -> None:
    for conversation_id in conversation_ids:
        queue.enqueue(GENERATE_CONVERSATION_TASK, conversation_id)


@transaction.atomic
def cancel_job(job: GenerationJob, actor) -> int:
    """Queued conversations stop at once; running ones are allowed to finish cleanly."""
    job = GenerationJob.objects.select_for_update().get(pk=job.pk)
    if job.cancel_requested_at is None:
        job.cancel_requested_at = timezone.now()
        job.save(update_fields=["cancel_requested_at"])
    cancelled = job.conversations.filter(status=Conversation.Status.QUEUED).update(
        status=Conversation.Status.CANCELLED, failure_reason="Cancelled before it started."
    )
    record(actor, "job.cancel", job, new={"cancelled_queued": cancelled})
    refresh_job_status(job.pk)
    return cancelled


@transaction.atomic
def retry_failed_conversations(job: GenerationJob, actor) -> int:
    """Re-run only the failed conversations (with their original seeds). Conversations still queued
    are sent to the queue again too: if the broker lost their messages (a Redis restart without
    persistence), this is how an admin gets them going; a duplicate task is a no-op."""
    job = GenerationJob.objects.select_for_update().get(pk=job.pk)
    failed = list(job.conversations.filter(status=Conversation.Status.FAILED).values_list("id", flat=True))
    if not failed:
        return 0
    still_queued = list(job.conversations.filter(status=Conversation.Status.QUEUED).values_list("id", flat=True))
    Conversation.objects.filter(id__in=failed).update(
        status=Conversation.Status.QUEUED, failure_reason="", started_at=None, finished_at=None
    )
    job.cancel_requested_at = None
    job.finished_at = None
    job.status = GenerationJob.Status.QUEUED
    job.save(update_fields=["cancel_requested_at", "finished_at", "status"])
    record(actor, "job.retry_failed", job, new={"conversations": len(failed)})
    transaction.on_commit(lambda: enqueue_conversations(failed + still_queued))
    return len(failed)


def refresh_job_status(job_id: int) -> GenerationJob:
    """Derive the job's status from its conversations (one place, so it never drifts)."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        counts = {s: 0 for s in Conversation.Status.values}
        for status in job.conversations.values_list("status", flat=True):
            counts[status] += 1
        unfinished = counts["queued"] + counts["running"]
        if unfinished:
            status = GenerationJob.Status.RUNNING if counts["running"] or counts["done"] or counts["failed"] else (
                GenerationJob.Status.QUEUED)
        elif job.cancel_requested_at is not None:
            status = GenerationJob.Status.CANCELLED
        elif counts["failed"]:
            status = GenerationJob.Status.FAILED
        else:
            status = GenerationJob.Status.DONE
        fields = []
        if status != job.status:
            job.status = status
            fields.append("status")
        if status == GenerationJob.Status.RUNNING and job.started_at is None:
            job.started_at = timezone.now()
            fields.append("started_at")
        if not unfinished and job.finished_at is None:
            job.finished_at = timezone.now()
            fields.append("finished_at")
        if fields:
            job.save(update_fields=fields)
        return job


# --- one conversation -----------------------------------------------------------------------------


class AttemptOutcome:
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already finished, cancelled, or another worker holds it


def start_attempt(conversation_id: int) -> int | None:
    """Mark the conversation running and return this attempt's number, or None if nothing to do."""
    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conv.status in (Conversation.Status.DONE, Conversation.Status.FAILED, Conversation.Status.CANCELLED):
            return None
        cancel_requested = GenerationJob.objects.filter(pk=conv.job_id, cancel_requested_at__isnull=False).exists()
        if cancel_requested and conv.status == Conversation.Status.QUEUED:
            conv.status = Conversation.Status.CANCELLED
            conv.failure_reason = "Cancelled before it started."
            conv.save(update_fields=["status", "failure_reason"])
            return None
        conv.status = Conversation.Status.RUNNING
        conv.attempts += 1
        conv.started_at = timezone.now()
        conv.finished_at = None
        # The counters show this attempt's calls, live (LiveUsage), as the final write will.
        _apply_usage(conv, None)
        conv.save(update_fields=["status", "attempts", "started_at", "finished_at", *USAGE_FIELDS])
        return conv.attempts


def run_conversation_attempt(conversation_id: int) -> str:
    """Generate one conversation end to end. Idempotent: a redelivered or duplicate task is a no-op
    while another worker holds the conversation's lease, and once it is finished."""
    from .concurrency import ConversationLease, JobCallSlots
    from .medagent import ConversationCancelled, ConversationFailed, MedAgentError, ModelSpec, run_conversation

    lease = ConversationLease(conversation_id, ttl=settings.GENERATION_LEASE_SECONDS)
    if not lease.acquire():
        return AttemptOutcome.SKIPPED
    try:
        attempt = start_attempt(conversation_id)
        if attempt is None:
            return AttemptOutcome.SKIPPED
        refresh_job_status(Conversation.objects.values_list("job_id", flat=True).get(pk=conversation_id))
        conv = Conversation.objects.select_related("job", "case", "persona").get(pk=conversation_id)
        job = conv.job
        snapshot = job.settings_snapshot
        models = {role: ModelSpec.from_dict(snapshot[role]) for role in ("patient", "sensemaker", "helper")}
        live = LiveUsage(conversation_id, attempt)
        client = llm_client(call_slot=JobCallSlots(job.pk, job.max_concurrent_calls), on_call=live)
        # Celery's threads pool does not enforce task time limits, so the conversation keeps its own
        # deadline, checked between turns (each LLM call has its own timeout).
        limit = settings.GENERATION_CONVERSATION_SECONDS
        deadline = time.monotonic() + limit
        try:
            result = run_conversation(
                case_input(conv.case), persona_input(conv.persona), models, seed=conv.seed, client=client,
                prompt_version=conv.prompt_version, should_continue=lambda: time.monotonic() < deadline,
            )
        except ConversationCancelled as exc:
            reason = (f"Stopped: the conversation took longer than its {limit} s limit "
                      f"(GENERATION_CONVERSATION_SECONDS); {exc}.")
            _finish_failed(conversation_id, attempt, reason, getattr(exc, "usage", None), getattr(exc, "trace", None))
            return AttemptOutcome.FAILED
        except (ConversationFailed, MedAgentError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            _finish_failed(conversation_id, attempt, reason, getattr(exc, "usage", None), getattr(exc, "trace", None))
            return AttemptOutcome.FAILED
        except Exception as exc:
            # A bug or an outage must end as a failed conversation with its reason, not as a
            # "running" row that the reaper re-queues for ever.
            logger.exception("Conversation %s failed with an unexpected error", conversation_id)
            _finish_failed(conversation_id, attempt, f"Internal error: {type(exc).__name__}: {exc}"[:2000],
                           live.totals(), None)
            return AttemptOutcome.FAILED
        _finish_done(conversation_id, attempt, result)
        return AttemptOutcome.DONE
    finally:
        lease.release()
        job_id = Conversation.objects.filter(pk=conversation_id).values_list("job_id", flat=True).first()
        if job_id:
            refresh_job_status(job_id)


USAGE_FIELDS = ("llm_calls", "prompt_tokens", "completion_tokens", "cost_usd")
# At most one counter write per running conversation in this many seconds (LLM calls can be quick).
LIVE_USAGE_INTERVAL = 0.5


class LiveUsage:
    """The LLM client's on_call hook: keeps the running conversation's calls, tokens and cost up to date
    in its row, so the job page (which sums the rows) shows them while the conversation runs. Writes
    are throttled, and the totals are written again, in full, when the conversation ends. Only the
    attempt that owns the row writes (a lost worker's stray thread cannot)."""

    def __init__(self, conversation_id: int, attempt: int):
        import threading

        from .medagent import Usage

        self.conversation_id = conversation_id
        self.attempt = attempt
        self._usage = Usage()
        self._lock = threading.Lock()
        self._last_write = float("-inf")

    def __call__(self, delta: dict) -> None:
        with self._lock:
            self._usage.add(delta)
            now = time.monotonic()
            if now - self._last_write < LIVE_USAGE_INTERVAL:
                return
            self._last_write = now
            totals = self._usage.as_dict()
        row = Conversation(pk=self.conversation_id)
        _apply_usage(row, totals)
        Conversation.objects.filter(
            pk=self.conversation_id, attempts=self.attempt, status=Conversation.Status.RUNNING
        ).update(**{name: getattr(row, name) for name in USAGE_FIELDS})

    def totals(self) -> dict:
        with self._lock:
            return self._usage.as_dict()


def _apply_usage(conv: Conversation, usage: dict | None) -> None:
    usage = usage or {}
    conv.llm_calls = int(usage.get("calls") or 0)
    conv.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    conv.completion_tokens = int(usage.get("completion_tokens") or 0)
    cost = usage.get("cost_usd")
    conv.cost_usd = None if cost is None else Decimal(str(round(float(cost), 6)))


def _finish_done(conversation_id: int, attempt: int, result) -> bool:
    """Write all messages and mark done in ONE transaction: a conversation is never half-written."""
    from .readability import smog_grade, smog_grade_texts

    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conv.status != Conversation.Status.RUNNING or conv.attempts != attempt:
            return False  # a newer attempt owns it (the reaper re-queued it meanwhile)
        conv.messages.all().delete()
        messages = [
            Message(
                conversation=conv, index=m.index, role=m.role, stage=m.stage, text=m.text, trace=m.trace,
                smog_grade=smog_grade(m.text) if m.role == "sensemaker" else None,
            )
            for m in result.messages
        ]
        Message.objects.bulk_create(messages)
        sensemaker_texts = [m.text for m in result.messages if m.role == "sensemaker"]
        conv.smog_grade = smog_grade_texts(sensemaker_texts)
        conv.sensemaker_message_count = len(sensemaker_texts)
        conv.trace = {**result.trace, "stage_counts": result.stage_counts, "seed": result.seed}
        _apply_usage(conv, result.usage)
        conv.status = Conversation.Status.DONE
        conv.failure_reason = ""
        conv.finished_at = timezone.now()
        conv.save()
        return True


def _finish_failed(conversation_id: int, attempt: int, reason: str, usage, trace) -> bool:
    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conv.status != Conversation.Status.RUNNING or conv.attempts != attempt:
            return False
        conv.messages.all().delete()
        conv.status = Conversation.Status.FAILED
        conv.failure_reason = reason[:2000]
        conv.trace = {"partial": trace or {}}
        _apply_usage(conv, usage)
        conv.finished_at = timezone.now()
        conv.save()
        return True


def orphaned_conversation_ids() -> list[int]:
    """Running conversations whose worker lease has lapsed (the worker died)."""
    from .concurrency import ConversationLease

    running = Conversation.objects.filter(status=Conversation.Status.RUNNING).values_list("id", flat=True)
    return [cid for cid in running if not ConversationLease.is_held(cid)]


def requeue_orphaned_conversations() -> list[int]:
    """Hand conversations of dead workers to live ones. Nothing of theirs was written (messages are
    written only on completion), so they restart from the beginning with the same seed. One that has
    already lost GENERATION_MAX_ATTEMPTS workers is failed instead: it is probably what kills them."""
    requeued, given_up = [], []
    max_attempts = settings.GENERATION_MAX_ATTEMPTS
    for cid in orphaned_conversation_ids():
        with transaction.atomic():
            running = Conversation.objects.filter(pk=cid, status=Conversation.Status.RUNNING)
            if running.filter(attempts__gte=max_attempts).update(
                status=Conversation.Status.FAILED, finished_at=timezone.now(),
                failure_reason=f"Gave up: the worker running it was lost on each of {max_attempts} attempts.",
            ):
                given_up.append(cid)
                continue
            updated = running.update(status=Conversation.Status.QUEUED, failure_reason="")
        if updated:
            requeued.append(cid)
    for job_id in set(Conversation.objects.filter(pk__in=given_up).values_list("job_id", flat=True)):
        refresh_job_status(job_id)
    if given_up:
        logger.error("Conversations failed after losing %s workers: %s", max_attempts, given_up)
    if requeued:
        logger.warning("Re-queued conversations of a lost worker: %s", requeued)
        enqueue_conversations(requeued)
    return requeued


# --- case facts -----------------------------------------------------------------------------------


def extract_case_facts(case: CaseStudy, helper: ModelConfig) -> CaseStudy:
    """The LLM step that splits a case into facts and vital-sign facts and assigns intent and goal."""
    from .medagent import MedAgentError, extract_case

    try:
        extraction = extract_case(case.text, helper.to_spec(), llm_client())
    except (MedAgentError, ValueError) as exc:
        CaseStudy.objects.filter(pk=case.pk).update(
            facts_status=CaseStudy.FactsStatus.FAILED, facts_error=getattr(exc, "reason", None) or str(exc)
        )
        case.refresh_from_db()
        return case
    with transaction.atomic():
        current = CaseStudy.objects.select_for_update().get(pk=case.pk)
        if current.facts_status == CaseStudy.FactsStatus.REVIEWED:
            # An admin reviewed the facts while the LLM was working: their edit wins.
            return current
        return _store_extraction(current, extraction)


def _store_extraction(case: CaseStudy, extraction) -> CaseStudy:
    case.facts = extraction.facts
    case.vital_facts = extraction.vital_facts
    case.intent = extraction.intent
    case.goal = extraction.goal
    case.facts_status = CaseStudy.FactsStatus.EXTRACTED
    case.facts_error = ""
    case.save()
    return case


def cases_needing_facts():
    return CaseStudy.objects.filter(Q(facts=[]) | Q(intent="") | Q(goal="")).exclude(
        facts_status=CaseStudy.FactsStatus.REVIEWED
    )


# --- audited edits of the study's inputs ----------------------------------------------------------
# Ground truth and model settings decide the study data, so every edit leaves an audit event with
# the old and new values of the fields that changed.

CASE_REVIEW_FIELDS = ("ground_truth_diagnosis", "condition", "intent", "goal", "facts", "vital_facts")
MODEL_CONFIG_FIELDS = ("name", "model", "temperature", "max_tokens", "api_base", "api_key_env", "extra_params",
                       "is_active")


def _changed_fields(obj, values: dict, fields) -> tuple[dict, dict]:
    old, new = {}, {}
    for field in fields:
        if field in values and getattr(obj, field) != values[field]:
            old[field], new[field] = getattr(obj, field), values[field]
    return old, new


@transaction.atomic
def review_case(actor, case: CaseStudy, values: dict) -> CaseStudy:
    """Save a clinician's review of a case: its ground truth, intent, goal and the patient's facts."""
    # Re-read under a lock: a bound ModelForm has already written its values onto the instance.
    case = CaseStudy.objects.select_for_update().get(pk=case.pk)
    old, new = _changed_fields(case, values, CASE_REVIEW_FIELDS)
    for field, value in new.items():
        setattr(case, field, value)
    previous_status = case.facts_status
    case.facts_status = CaseStudy.FactsStatus.REVIEWED
    case.facts_error = ""
    case.save()
    record(actor, "case.review", case, old={**old, "facts_status": previous_status},
           new={**new, "facts_status": case.facts_status})
    return case


@transaction.atomic
def save_model_config(actor, config: ModelConfig | None, values: dict) -> ModelConfig:
    """Create a model configuration (config None) or edit one. Validation is ModelConfig.clean()'s,
    so the admin site, the pages and this service apply the same rules."""
    creating = config is None or config.pk is None
    # Re-read under a lock: a bound ModelForm has already written its values onto the instance.
    config = ModelConfig() if creating else ModelConfig.objects.select_for_update().get(pk=config.pk)
    old, new = _changed_fields(config, values, MODEL_CONFIG_FIELDS)
    for field, value in new.items():
        setattr(config, field, value)
    config.full_clean()
    config.save()
    if creating:
        record(actor, "model_config.create", config, new={f: getattr(config, f) for f in MODEL_CONFIG_FIELDS})
    elif new:
        record(actor, "model_config.edit", config, old=old, new=new)
    return config
