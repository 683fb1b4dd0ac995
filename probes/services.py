"""Probe use cases: load a battery file, launch a run against a model configuration, cancel and retry.
Views, the API, management commands and the demo call these; running one item is probes.runner.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from audit.services import record
from generation.models import CaseStudy, ModelConfig
from generation.work_items import (
    cancel_queued_items,
    reap_lost_items,
    requeue_failed_items,
    run_in_threads,
    stalled_queued_item_ids,
)

from . import interjection, stigma
from .battery_files import BatteryFileError, FileError, content_digest, parse_battery
from .models import ItemStatus, Placement, ProbeBattery, ProbeItem, ProbeJudgeAnswer, ProbeRun
from .runner import (
    JUDGE_LEASE_KIND,
    LEASE_KIND,
    enqueue_items,
    enqueue_judge_answers,
    queue_judge_answers,
    refresh_run_status,
    run_item,
    run_judge_answer,
)

logger = logging.getLogger(__name__)

MAX_SAMPLES = 20
MAX_ITEMS_PER_RUN = 50_000


class ProbeError(ValueError):
    """A request that cannot be carried out; the message is meant for the admin."""


# --- batteries ------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    battery: ProbeBattery
    created: bool


@transaction.atomic
def import_battery(actor, data: bytes | str, source_name: str = "", *, is_demo: bool = False) -> ImportResult:
    """Validate and store one battery file. Any error: BatteryFileError (line + field), nothing stored.
    The same slug and version loaded again with the same content is a no-op; with other content it is
    refused (a changed battery is a new version, so earlier runs keep meaning what they meant)."""
    content = parse_battery(data)
    digest = content_digest(content)
    existing = ProbeBattery.objects.select_for_update().filter(slug=content["slug"], version=content["version"]).first()
    if existing is not None:
        if existing.digest == digest:
            return ImportResult(existing, False)
        raise BatteryFileError([FileError(1, "version", (
            f"{content['slug']} version {content['version']} is already loaded with different content; "
            "give the changed battery a new version number"))])
    battery = ProbeBattery.objects.create(
        protocol=content["protocol"], slug=content["slug"], version=content["version"], name=content["name"],
        description=content.get("description", ""), citation=content.get("citation", ""), content=content,
        digest=digest, source_name=source_name[:255], is_demo=is_demo,
        loaded_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record(actor, "probes.battery_load", battery, new={"slug": battery.slug, "version": battery.version,
                                                      "digest": digest, "source": source_name})
    return ImportResult(battery, True)


# --- runs -----------------------------------------------------------------------------------------


@dataclass
class RunRequest:
    battery: ProbeBattery
    model: ModelConfig
    name: str = ""
    samples: int = 1
    seed: int = 0
    max_concurrent_calls: int = 8
    # Interjection probes: stand-alone, or inside a MedAgent conversation at `stage` (1-5) with this case,
    # persona cell and simulated patient and helper models.
    placement: str = Placement.STANDALONE
    stage: int | None = None
    case: CaseStudy | None = None
    trait: str = "neuroticism"
    literacy: str = "basic"
    patient_model: ModelConfig | None = None
    helper_model: ModelConfig | None = None
    # Optional LLM judge of the verification questions (interjection probes only).
    judge_model: ModelConfig | None = None


PROTOCOL_PROMPTS = {
    "stigma": (stigma.battery_prompts, stigma.PROMPT_VERSION),
    "interjection": (interjection.battery_prompts, interjection.PROMPT_VERSION),
}


def item_seed(run_seed: int, prompt: stigma.ProbePrompt, sample_index: int) -> int:
    """From what the item IS, never from database keys, so a run reproduces on any installation."""
    cell = [run_seed, prompt.vignette_key, prompt.variant_key, prompt.question_key, sample_index]
    return int.from_bytes(hashlib.sha256(json.dumps(cell).encode()).digest()[:6], "big")


def _validate_placement(req: RunRequest) -> None:
    from generation.medagent import STAGE_NAMES
    from generation.models import Literacy, Trait

    if req.placement not in Placement.values:
        raise ProbeError(f"Unknown placement {req.placement!r}.")
    interjecting = req.battery.protocol == "interjection"
    if req.judge_model is not None:
        if not interjecting:
            raise ProbeError("Only interjection replies have a verification question for a judge to answer.")
        if not req.judge_model.is_active:
            raise ProbeError(f"The judge model configuration {req.judge_model.name} is inactive.")
    if req.placement == Placement.STANDALONE:
        return
    if not interjecting:
        raise ProbeError("Only interjection probes can be placed inside a MedAgent conversation.")
    if not isinstance(req.stage, int) or not 1 <= req.stage <= 5:
        raise ProbeError("Choose the stage (1-5) at which the probe is the patient's turn; stage 6 is the Exit, "
                         f"after which nobody speaks. Stages: {', '.join(f'{n} {t}' for n, t in STAGE_NAMES.items())}.")
    if req.case is None or not req.case.ready_for_generation:
        raise ProbeError("Choose a case study whose facts, intent and goal are ready (reviewed or extracted).")
    if req.patient_model is None or req.helper_model is None:
        raise ProbeError("A MedAgent conversation needs a patient model and a helper model.")
    inactive = [m.name for m in (req.patient_model, req.helper_model) if not m.is_active]
    if inactive:
        raise ProbeError(f"These model configurations are inactive: {', '.join(inactive)}.")
    if req.trait not in Trait.values or req.literacy not in Literacy.values:
        raise ProbeError("Choose the persona's trait and literacy from the persona grid.")


def validate_run_request(req: RunRequest) -> list[stigma.ProbePrompt]:
    if not req.model.is_active:
        raise ProbeError(f"The model configuration {req.model.name} is inactive.")
    _validate_placement(req)
    if not 1 <= req.samples <= MAX_SAMPLES:
        raise ProbeError(f"Samples per prompt must be between 1 and {MAX_SAMPLES}.")
    if not 1 <= req.max_concurrent_calls <= 256:
        raise ProbeError("Concurrent calls must be between 1 and 256.")
    prompts = PROTOCOL_PROMPTS[req.battery.protocol][0](req.battery.content)
    if len(prompts) * req.samples > MAX_ITEMS_PER_RUN:
        raise ProbeError(f"{len(prompts) * req.samples} items is more than the {MAX_ITEMS_PER_RUN} one run may hold.")
    return prompts


@transaction.atomic
def launch_run(actor, req: RunRequest, *, enqueue_tasks: bool = True) -> ProbeRun:
    """Create the run and one queued item per vignette variant x question x sample; enqueue them after
    commit (or not, when the caller runs them in this process with `run_inline`)."""
    prompts = validate_run_request(req)
    conversation = {}
    if req.placement == Placement.MEDAGENT:
        from generation.medagent.prompt_set import PROMPT_VERSION as MEDAGENT_PROMPTS
        from generation.services import personas_for_case

        persona = personas_for_case(req.case, [req.trait], [req.literacy])[0]
        conversation = {"persona": persona, "case": req.case, "stage": req.stage, "patient_model": req.patient_model,
                        "helper_model": req.helper_model, "conversation_snapshot": {
                            "patient": req.patient_model.provenance(), "helper": req.helper_model.provenance(),
                            "prompt_version": MEDAGENT_PROMPTS, "case_id": req.case.external_id,
                            "persona": {"trait": persona.trait, "literacy": persona.literacy,
                                        "intent": persona.intent, "goal": persona.goal}}}
    run = ProbeRun.objects.create(
        name=req.name or f"{req.battery.name} · {req.model.name}",
        battery=req.battery, model=req.model, model_snapshot=req.model.provenance(),
        prompt_version=PROTOCOL_PROMPTS[req.battery.protocol][1], samples=req.samples, seed=req.seed,
        max_concurrent_calls=req.max_concurrent_calls, placement=req.placement, judge_model=req.judge_model,
        created_by=actor if getattr(actor, "is_authenticated", False) else None, **conversation,
    )
    ProbeItem.objects.bulk_create([
        ProbeItem(run=run, vignette_key=p.vignette_key, condition=p.condition, variant_key=p.variant_key,
                  question_key=p.question_key, sample_index=sample, seed=item_seed(req.seed, p, sample),
                  prompt=p.text)
        for p in prompts for sample in range(req.samples)
    ])
    record(actor, "probes.run_launch", run, new={
        "battery": str(req.battery), "model": req.model.name, "items": len(prompts) * req.samples, "seed": req.seed,
        "placement": run.placement, "stage": run.stage, "judge": req.judge_model.name if req.judge_model else None})
    if enqueue_tasks:
        ids = list(run.items.values_list("id", flat=True))
        transaction.on_commit(lambda: enqueue_items(ids))
    return run


def run_inline(run: ProbeRun, threads: int = 8) -> dict:
    """Run a run's queued items, then their judge answers, in this process (no worker): the tasks' code
    path, for the demo and tests."""
    ids = list(run.items.filter(status=ItemStatus.QUEUED).values_list("id", flat=True))
    outcomes = run_in_threads(ids, lambda item_id: run_item(item_id, enqueue_judges=False), threads)
    judged = run_judge_answers_inline(run, threads)
    return {**outcomes, **{f"judge_{k}": v for k, v in judged.items()}}


def run_judge_answers_inline(run: ProbeRun, threads: int = 8) -> dict:
    ids = list(run.judge_answers.filter(status=ItemStatus.QUEUED).values_list("id", flat=True))
    return run_in_threads(ids, run_judge_answer, threads)


@transaction.atomic
def cancel_run(run: ProbeRun, actor) -> int:
    """Queued items (and queued judge answers) stop at once; running ones finish."""
    cancelled = cancel_queued_items(ProbeRun, run, "items")
    judges = run.judge_answers.filter(status=ItemStatus.QUEUED).update(
        status=ItemStatus.CANCELLED, failure_reason="Cancelled before it started.")
    record(actor, "probes.run_cancel", run, new={"cancelled_queued": cancelled, "cancelled_judge_answers": judges})
    refresh_run_status(run.pk)
    return cancelled


@transaction.atomic
def retry_failed_items(run: ProbeRun, actor) -> int:
    """Re-run the failed items (same seeds) and the failed judge answers; items still queued are sent
    again too (a duplicate task is a no-op). Items of lost workers are the reaper's
    (requeue_orphaned_probe_work), not this button's. Returns how many items and answers were re-queued."""
    failed, still_queued = requeue_failed_items(ProbeRun, run, "items")
    answers = list(run.judge_answers.filter(status__in=(ItemStatus.FAILED, ItemStatus.CANCELLED),
                                            item__status=ItemStatus.DONE).values_list("id", flat=True))
    ProbeJudgeAnswer.objects.filter(id__in=answers).update(status=ItemStatus.QUEUED, failure_reason="",
                                                           started_at=None, finished_at=None)
    if not failed and not answers:
        return 0
    if answers and not failed:
        ProbeRun.objects.filter(pk=run.pk).update(cancel_requested_at=None)
    record(actor, "probes.run_retry_failed", run, new={"items": len(failed), "judge_answers": len(answers)})
    transaction.on_commit(lambda: (enqueue_items(failed + still_queued), enqueue_judge_answers(answers)))
    return len(failed) + len(answers)


@transaction.atomic
def add_judge(run: ProbeRun, judge_model: ModelConfig, actor, *, enqueue_tasks: bool = True) -> int:
    """Have `judge_model` answer the verification question of every finished exchange of an
    interjection run (those it has not answered yet); later exchanges of the run get it too when it is
    the run's judge. Returns how many answers were queued."""
    if run.battery.protocol != "interjection":
        raise ProbeError("Only interjection replies have a verification question for a judge to answer.")
    if not judge_model.is_active:
        raise ProbeError(f"The judge model configuration {judge_model.name} is inactive.")
    run = ProbeRun.objects.select_for_update().get(pk=run.pk)
    if run.judge_model_id is None:
        run.judge_model = judge_model
        run.save(update_fields=["judge_model"])
    done = list(run.items.filter(status=ItemStatus.DONE, conversation__isnull=False).values_list("id", flat=True))
    created = queue_judge_answers(run, judge_model, done)
    record(actor, "probes.judge_add", run, new={"judge": judge_model.name, "answers": len(created)})
    if enqueue_tasks and created:
        transaction.on_commit(lambda: enqueue_judge_answers(created))
    return len(created)


def requeue_orphaned_probe_work() -> dict:
    """The beat schedule's reaper: items and judge answers whose worker was lost (their lease lapsed)
    go back to the queue with their seeds (nothing of theirs was written: outcomes are written only on
    completion); one that lost GENERATION_MAX_ATTEMPTS workers is failed. Queued items of runs that
    have gone quiet (their messages died with a worker's prefetch) are sent again too."""
    attempts = settings.GENERATION_MAX_ATTEMPTS
    requeued, given_up = reap_lost_items(ProbeItem, LEASE_KIND, max_attempts=attempts)
    for run_id in set(ProbeItem.objects.filter(pk__in=given_up).values_list("run_id", flat=True)):
        refresh_run_status(run_id)
    stalled = stalled_queued_item_ids(ProbeRun, "items", quiet_seconds=settings.GENERATION_LEASE_SECONDS)
    if stalled:
        logger.warning("Re-sent queued probe items of stalled runs: %s", stalled)
    judge_requeued, _ = reap_lost_items(ProbeJudgeAnswer, JUDGE_LEASE_KIND, max_attempts=attempts)
    judge_stalled = stalled_queued_item_ids(ProbeRun, "judge_answers",
                                            quiet_seconds=settings.GENERATION_LEASE_SECONDS)
    if requeued or stalled:
        enqueue_items(requeued + stalled)
    if judge_requeued or judge_stalled:
        enqueue_judge_answers(judge_requeued + judge_stalled)
    return {"items": requeued, "judge_answers": judge_requeued}


# --- clinician verification of interjection probes --------------------------------------------------

VERIFICATION_RUBRIC_FILE = "interjection-v1.json"


def verification_rubric():
    from rating.rubric_files import RUBRIC_DIR, load_rubric_file

    rubric, _ = load_rubric_file(RUBRIC_DIR / VERIFICATION_RUBRIC_FILE)
    return rubric


@transaction.atomic
def create_verification_campaign(actor, runs, *, name: str, raters, overlap_k: int = 2,
                                 lease_minutes: int = 60, description: str = "", judge_model=None):
    """A draft campaign over the recorded exchanges of one or more interjection runs, rated with the
    binary verification rubric. Its name and description are checked for blinding like any campaign's
    (raters see them), the model configurations' names included. With `judge_model`, that LLM judge also
    answers every exchange's verification question (add_judge on each run), for the report's comparison."""
    from rating import campaigns

    runs = [runs] if isinstance(runs, ProbeRun) else list(runs)
    if not runs or any(run.battery.protocol != "interjection" for run in runs):
        raise ProbeError("Only interjection runs are verified by clinicians; stigma answers are scored by rule.")
    conversation_ids = list(ProbeItem.objects.filter(run__in=runs, status=ItemStatus.DONE, conversation__isnull=False)
                            .order_by("id").values_list("conversation_id", flat=True))
    raters = list(raters)
    # Exchanges are stored without a job, so the campaign's own blinding check (model strings, source
    # label) does not know the configurations' names: check those here.
    errors = {}
    for config_name in {run.model_snapshot.get("name") or "" for run in runs} - {""}:
        for field, text in (("name", name), ("description", description)):
            if config_name.lower() in text.lower() and field not in errors:
                errors[field] = (f"Raters see the campaign's {field}: it must not name the model configuration "
                                 f"({config_name}).")
    if not conversation_ids:
        errors["__all__"] = "The run has no finished exchange to rate yet."
    if errors:
        raise campaigns.CampaignError(errors)
    campaign = campaigns.create_campaign(
        actor, name=name, description=description, rubric=verification_rubric(), raters=raters,
        overlap_k=overlap_k, lease_minutes=lease_minutes, conversation_ids=conversation_ids)
    if judge_model is not None:
        for run in runs:
            add_judge(run, judge_model, actor)
    return campaign


UNSAFE_AXIS = "safe"


def flag_unsafe_replies(campaign_id: int) -> int:
    """Raise the platform's safety flag for every submitted rating that marked a probe reply unsafe
    (the verification rubric's 'safe' axis at 0). Idempotent: one flag per rating's verdict."""
    from rating.models import AxisScore, SafetyFlag

    scores = (AxisScore.objects
              .filter(axis__key=UNSAFE_AXIS, axis__rubric__slug="interjection-probe", value=0,
                      rating__status="submitted", rating__assignment__campaign_id=campaign_id,
                      rating__assignment__item__conversation__probe_item__isnull=False)
              .select_related("rating__assignment__item__conversation", "rating__assignment__rater"))
    raised = 0
    for score in scores:
        assignment = score.rating.assignment
        conversation = assignment.item.conversation
        reason = ("Marked unsafe on the interjection-probe rubric"
                  + (f": {score.comment.strip()}" if score.comment.strip() else "."))
        exists = SafetyFlag.objects.filter(conversation=conversation, campaign_id=campaign_id,
                                           raised_by=assignment.rater,
                                           category=SafetyFlag.Category.HARMFUL_ADVICE).exists()
        if not exists:
            SafetyFlag.objects.create(
                conversation=conversation, campaign_id=campaign_id, raised_by=assignment.rater,
                message=conversation.messages.filter(role="sensemaker").first(),
                category=SafetyFlag.Category.HARMFUL_ADVICE, reason=reason)
            record(assignment.rater, "probes.unsafe_reply_flagged", conversation, new={"campaign": campaign_id})
            raised += 1
    return raised
