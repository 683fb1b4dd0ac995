"""Probe use cases: load a battery file, launch a run against a model configuration, cancel and retry.
Views, the API, management commands and the demo call these; running one item is probes.runner.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import record
from generation.models import ModelConfig

from . import interjection, stigma
from .battery_files import BatteryFileError, FileError, content_digest, parse_battery
from .models import ItemStatus, ProbeBattery, ProbeItem, ProbeRun
from .runner import refresh_run_status, run_item

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


PROTOCOL_PROMPTS = {
    "stigma": (stigma.battery_prompts, stigma.PROMPT_VERSION),
    "interjection": (interjection.battery_prompts, interjection.PROMPT_VERSION),
}


def item_seed(run_seed: int, prompt: stigma.ProbePrompt, sample_index: int) -> int:
    """From what the item IS, never from database keys, so a run reproduces on any installation."""
    cell = [run_seed, prompt.vignette_key, prompt.variant_key, prompt.question_key, sample_index]
    return int.from_bytes(hashlib.sha256(json.dumps(cell).encode()).digest()[:6], "big")


def validate_run_request(req: RunRequest) -> list[stigma.ProbePrompt]:
    if not req.model.is_active:
        raise ProbeError(f"The model configuration {req.model.name} is inactive.")
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
    run = ProbeRun.objects.create(
        name=req.name or f"{req.battery.name} · {req.model.name}",
        battery=req.battery, model=req.model, model_snapshot=req.model.provenance(),
        prompt_version=PROTOCOL_PROMPTS[req.battery.protocol][1], samples=req.samples, seed=req.seed,
        max_concurrent_calls=req.max_concurrent_calls,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    ProbeItem.objects.bulk_create([
        ProbeItem(run=run, vignette_key=p.vignette_key, condition=p.condition, variant_key=p.variant_key,
                  question_key=p.question_key, sample_index=sample, seed=item_seed(req.seed, p, sample),
                  prompt=p.text)
        for p in prompts for sample in range(req.samples)
    ])
    record(actor, "probes.run_launch", run, new={"battery": str(req.battery), "model": req.model.name,
                                                "items": len(prompts) * req.samples, "seed": req.seed})
    if enqueue_tasks:
        ids = list(run.items.values_list("id", flat=True))
        transaction.on_commit(lambda: enqueue_items(ids))
    return run


RUN_ITEM_TASK = "probes.tasks.run_probe_item"


def enqueue_items(item_ids) -> None:
    from core.queue import enqueue as enqueue_task

    for item_id in item_ids:
        enqueue_task(RUN_ITEM_TASK, item_id)


def run_inline(run: ProbeRun, threads: int = 8) -> dict:
    """Run a run's queued items in this process (no worker): the task's code path, for the demo and
    `manage.py run_probes --inline`."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    ids = list(run.items.filter(status=ItemStatus.QUEUED).values_list("id", flat=True))

    def one(item_id):
        try:
            return run_item(item_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        outcomes = list(pool.map(one, ids))
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}


@transaction.atomic
def cancel_run(run: ProbeRun, actor) -> int:
    """Queued items stop at once; running ones finish (each is one LLM call)."""
    run = ProbeRun.objects.select_for_update().get(pk=run.pk)
    if run.cancel_requested_at is None:
        run.cancel_requested_at = timezone.now()
        run.save(update_fields=["cancel_requested_at"])
    cancelled = run.items.filter(status=ItemStatus.QUEUED).update(
        status=ItemStatus.CANCELLED, failure_reason="Cancelled before it started.")
    record(actor, "probes.run_cancel", run, new={"cancelled_queued": cancelled})
    refresh_run_status(run.pk)
    return cancelled


def stale_running_before():
    """A running item older than this lost its worker: one call cannot take longer than all its retries."""
    budget = settings.LLM_REQUEST_TIMEOUT * settings.LLM_MAX_ATTEMPTS + 60
    return timezone.now() - timedelta(seconds=budget)


@transaction.atomic
def retry_failed_items(run: ProbeRun, actor) -> int:
    """Re-run the failed items (same seeds). Items still queued, and running ones whose worker was lost
    (older than any call could take), are sent again too; a duplicate task is a no-op."""
    run = ProbeRun.objects.select_for_update().get(pk=run.pk)
    stale = Q(status=ItemStatus.RUNNING, started_at__lt=stale_running_before())
    retry = list(run.items.filter(Q(status=ItemStatus.FAILED) | stale).values_list("id", flat=True))
    queued = list(run.items.filter(status=ItemStatus.QUEUED).values_list("id", flat=True))
    if not retry and not queued:
        return 0
    ProbeItem.objects.filter(id__in=retry).update(status=ItemStatus.QUEUED, failure_reason="", started_at=None,
                                                  finished_at=None)
    run.cancel_requested_at = None
    run.finished_at = None
    run.status = ProbeRun.Status.QUEUED
    run.save(update_fields=["cancel_requested_at", "finished_at", "status"])
    record(actor, "probes.run_retry_failed", run, new={"items": len(retry), "resent_queued": len(queued)})
    transaction.on_commit(lambda: enqueue_items(retry + queued))
    return len(retry)


# --- clinician verification of interjection probes --------------------------------------------------

VERIFICATION_RUBRIC_FILE = "interjection-v1.json"


def verification_rubric():
    from rating.rubric_files import RUBRIC_DIR, load_rubric_file

    rubric, _ = load_rubric_file(RUBRIC_DIR / VERIFICATION_RUBRIC_FILE)
    return rubric


@transaction.atomic
def create_verification_campaign(actor, runs, *, name: str, raters, overlap_k: int = 2,
                                 lease_minutes: int = 60, description: str = ""):
    """A draft campaign over the recorded exchanges of one or more interjection runs, rated with the
    binary verification rubric. Its name and description are checked for blinding like any campaign's
    (raters see them), the model configurations' names included."""
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
    return campaigns.create_campaign(
        actor, name=name, description=description, rubric=verification_rubric(), raters=raters,
        overlap_k=overlap_k, lease_minutes=lease_minutes, conversation_ids=conversation_ids)


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
