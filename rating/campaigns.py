"""Admin operations on campaigns: create, add conversations, open/close, raters, gold items.

Every operation is audited. Conversations are chosen by filters (job, model under test, condition,
persona trait, literacy, intent and goal) or listed by id (the API), among finished ones only; how they
were chosen is stored on the campaign for provenance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import CharField, Value
from django.db.models.functions import MD5, Cast, Concat
from django.utils import timezone

from accounts.roles import Role
from audit.services import record
from generation.models import Conversation, GenerationJob, Persona

from . import assignment as assigning
from .models import Assignment, Campaign, CampaignItem, Rubric

MAX_K = 20


class CampaignError(Exception):
    """Invalid campaign input; `errors` maps form field names (or "__all__") to messages."""

    def __init__(self, errors: dict[str, str] | str):
        self.errors = errors if isinstance(errors, dict) else {"__all__": errors}
        super().__init__("; ".join(self.errors.values()))


@dataclass
class Selection:
    """Which finished conversations go into a campaign. Empty lists mean "any"."""

    jobs: list[int] = field(default_factory=list)
    sensemaker_models: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    traits: list[str] = field(default_factory=list)
    literacies: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    # Optional cap: a reproducible random sample of this many (ordered by md5(seed, id)).
    limit: int | None = None
    seed: int = 0

    def as_json(self) -> dict:
        return {"jobs": self.jobs, "sensemaker_models": self.sensemaker_models, "conditions": self.conditions,
                "traits": self.traits, "literacies": self.literacies, "intents": self.intents, "goals": self.goals,
                "limit": self.limit, "seed": self.seed, "status": "done"}


def select_conversations(selection: Selection):
    # Safety-probe exchanges (provenance.probe) are rated in their own verification campaigns, never mixed
    # into a MultiSenseEval campaign by a filter that happens to match them.
    qs = Conversation.objects.filter(status=Conversation.Status.DONE).exclude(provenance__has_key="probe")
    if selection.jobs:
        qs = qs.filter(job_id__in=selection.jobs)
    if selection.sensemaker_models:
        qs = qs.filter(sensemaker_model__in=selection.sensemaker_models)
    if selection.conditions:
        qs = qs.filter(condition__in=selection.conditions)
    if selection.traits:
        qs = qs.filter(persona__trait__in=selection.traits)
    if selection.literacies:
        qs = qs.filter(persona__literacy__in=selection.literacies)
    if selection.intents:
        qs = qs.filter(persona__intent__in=selection.intents)
    if selection.goals:
        qs = qs.filter(persona__goal__in=selection.goals)
    if selection.limit:
        qs = qs.annotate(
            sample=MD5(Concat(Value(f"{selection.seed}:"), Cast("pk", CharField()), output_field=CharField()))
        ).order_by("sample")[: selection.limit]
    return qs


def _check_raters(raters) -> list[str]:
    errors = []
    wrong = [u.username for u in raters if u.role != Role.RATER or not u.is_active]
    if wrong:
        errors.append(f"Only active clinician raters can rate: {', '.join(sorted(wrong))}.")
    return errors


# --- blinding of the free text raters see ------------------------------------------------------------


def _add_model_terms(terms: dict, model: str, what: str) -> None:
    """A LiteLLM model string, and its parts: "openai/gpt-4o" gives away "gpt-4o" and "openai" too."""
    if not model:
        return
    terms.setdefault(model.lower(), what)
    provider, _, rest = model.rpartition("/")
    if provider:
        terms.setdefault(rest.lower(), what)
        terms.setdefault(provider.split("/")[0].lower(), "the provider of " + what)


def identity_terms(conversations) -> dict[str, str]:
    """What identifies the models, providers, jobs and personas behind `conversations` (a Conversation
    queryset), lowercased, each with a description for the error message."""
    terms: dict[str, str] = {}
    for column, what in (("sensemaker_model", "a model under test"), ("patient_model", "the patient model"),
                         ("helper_model", "the helper model")):
        for value in conversations.exclude(**{column: ""}).order_by().values_list(column, flat=True).distinct():
            _add_model_terms(terms, value, what)
    for label in conversations.exclude(source_label="").order_by().values_list("source_label", flat=True).distinct():
        terms.setdefault(label.lower(), "the label the conversations were imported under")
    jobs = GenerationJob.objects.filter(pk__in=conversations.exclude(job=None).values("job_id")).select_related(
        "sensemaker_model", "patient_model", "helper_model")
    for job in jobs:
        terms.setdefault(job.name.lower(), "a generation job")
        for config in (job.sensemaker_model, job.patient_model, job.helper_model):
            terms.setdefault(config.name.lower(), "a model configuration")
            _add_model_terms(terms, config.model, "a model of the job")
            host = urlsplit(config.api_base).hostname if config.api_base else None
            if host:
                terms.setdefault(host.lower(), "a provider's address")
    personas = Persona.objects.filter(pk__in=conversations.exclude(persona=None).values("persona_id"))
    for persona in personas:
        for attr in ("trait", "literacy", "intent", "goal"):
            terms.setdefault(getattr(persona, attr).lower(), "a persona label")
            terms.setdefault(getattr(persona, f"get_{attr}_display")().lower(), "a persona label")
    # Very short terms ("a", "v1") would match ordinary words: not identifying on their own.
    return {term: what for term, what in terms.items() if len(term) >= 3}


def _mentions(text: str, terms: dict[str, str]) -> list[tuple[str, str]]:
    lowered = text.lower()
    found = []
    for term, what in terms.items():
        if term in lowered and re.search(rf"(?<!\w){re.escape(term)}(?!\w)", lowered):
            found.append((term, what))
    return sorted(found)


def blinding_errors(conversations, *, name: str, description: str) -> dict[str, str]:
    """Raters read the campaign's name and description: refuse either if it names a model, provider, job
    or persona label of the campaign's conversations, as a whole word in any case. (Rubric texts serve
    many campaigns and are loaded from reviewed files; they are not checked against one selection.)"""
    terms = identity_terms(conversations)
    errors = {}
    for form_field, text in (("name", name), ("description", description)):
        found = _mentions(text or "", terms)
        if found:
            listed = "; ".join(f"“{term}” ({what})" for term, what in found[:5])
            errors[form_field] = (f"Raters see the campaign's {form_field}, so it must not reveal which models, "
                                  f"providers, jobs or personas produced the conversations. Remove: {listed}.")
    return errors


def settings_errors(*, name: str, raters: list, overlap_k: int, lease_minutes: int, description: str = "",
                    conversations=None) -> dict[str, str]:
    """What is wrong with a campaign's settings, by form field (shared by the pages and the API). Given
    the campaign's conversations (a queryset), the free text raters see is checked for blinding too."""
    errors = {}
    if conversations is not None:
        errors.update(blinding_errors(conversations, name=name, description=description))
    if not name.strip():
        errors["name"] = "Give the campaign a name."
    if not 1 <= overlap_k <= MAX_K:
        errors["overlap_k"] = f"Overlap k must be between 1 and {MAX_K}."
    elif len(raters) < overlap_k:
        errors["raters"] = (f"With overlap k = {overlap_k} every conversation needs {overlap_k} different "
                            f"raters; choose at least {overlap_k}.")
    rater_errors = _check_raters(raters)
    if rater_errors:
        errors["raters"] = " ".join(rater_errors)
    if not 1 <= lease_minutes <= 24 * 60:
        errors["lease_minutes"] = "The lease must be between 1 minute and 24 hours."
    return errors


def _insert_campaign(actor, *, name: str, description: str, rubric: Rubric, raters: list, overlap_k: int,
                     lease_minutes: int, selection: dict, conversation_ids: list[int]) -> Campaign:
    campaign = Campaign.objects.create(
        name=name.strip(), description=description.strip(), rubric=rubric, overlap_k=overlap_k,
        lease_minutes=lease_minutes, selection=selection, created_by=actor,
    )
    campaign.raters.set(raters)
    CampaignItem.objects.bulk_create(
        [CampaignItem(campaign=campaign, conversation_id=pk) for pk in conversation_ids], batch_size=2000
    )
    record(actor, "campaign.create", campaign, new={
        "name": campaign.name, "rubric": f"{rubric.slug} v{rubric.version}", "overlap_k": overlap_k,
        "lease_minutes": lease_minutes, "raters": sorted(u.pseudonym for u in raters),
        "conversations": len(conversation_ids), "selection": campaign.selection,
    })
    return campaign


def conversation_id_errors(conversation_ids: list[int]) -> dict[str, str]:
    """Conversations given by id must exist and be finished."""
    found = dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "status"))
    missing = [pk for pk in conversation_ids if pk not in found]
    if missing:
        return {"conversations": f"No conversations with ids {missing[:20]}."}
    unfinished = [pk for pk in conversation_ids if found[pk] != Conversation.Status.DONE]
    if unfinished:
        return {"conversations": f"Conversations {unfinished[:20]} are not finished and cannot be rated."}
    return {}


def _chosen_conversations(selection: Selection | None, conversation_ids: list[int] | None):
    """(ids, how they were chosen for the campaign's provenance, errors) for exactly one of the two."""
    if (selection is None) == (conversation_ids is None):
        raise TypeError("Give either a selection or conversation ids.")
    if selection is not None:
        ids = list(select_conversations(selection).values_list("pk", flat=True))
        errors = {} if ids else {"__all__": "No finished conversation matches these filters."}
        return ids, selection.as_json(), errors
    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        return ids, {}, {"conversations": "Give at least one id."}
    # The items table says exactly which conversations; the selection records how they were chosen.
    chosen = {"by": "conversation ids (API)", "conversations": len(ids), "first_id": min(ids), "last_id": max(ids),
              "status": "done"}
    return ids, chosen, conversation_id_errors(ids)


@transaction.atomic
def create_campaign(actor, *, name: str, description: str, rubric: Rubric, raters, overlap_k: int,
                    lease_minutes: int, selection: Selection | None = None,
                    conversation_ids: list[int] | None = None) -> Campaign:
    """A draft campaign over the finished conversations that match `selection` (the campaign pages) or
    the ones listed in `conversation_ids` (the API). Same rules and audit event either way."""
    raters = list(raters)
    ids, chosen, errors = _chosen_conversations(selection, conversation_ids)
    errors = {**settings_errors(name=name, raters=raters, overlap_k=overlap_k, lease_minutes=lease_minutes,
                                description=description, conversations=Conversation.objects.filter(pk__in=ids)),
              **errors}
    if errors:
        raise CampaignError(errors)
    return _insert_campaign(actor, name=name, description=description, rubric=rubric, raters=raters,
                            overlap_k=overlap_k, lease_minutes=lease_minutes, selection=chosen,
                            conversation_ids=ids)


@transaction.atomic
def update_campaign(actor, campaign: Campaign, *, name: str, description: str, raters, lease_minutes: int,
                    overlap_k: int | None = None) -> Campaign:
    """Edit a campaign. k can change only while it is a draft (ratings depend on it afterwards); raters
    can be added or removed at any time (removing one keeps their ratings)."""
    campaign = Campaign.objects.select_for_update(of=("self",), no_key=True).get(pk=campaign.pk)
    raters = list(raters)
    errors = blinding_errors(Conversation.objects.filter(campaign_items__campaign=campaign), name=name,
                             description=description)
    if not name.strip():
        errors["name"] = "Give the campaign a name."
    k = campaign.overlap_k
    if overlap_k is not None and overlap_k != campaign.overlap_k:
        if campaign.status != Campaign.Status.DRAFT:
            errors["overlap_k"] = "Overlap k cannot change once the campaign has been opened."
        elif not 1 <= overlap_k <= MAX_K:
            errors["overlap_k"] = f"Overlap k must be between 1 and {MAX_K}."
        else:
            k = overlap_k
    if len(raters) < k:
        errors["raters"] = f"Choose at least {k} raters (overlap k = {k})."
    rater_errors = _check_raters(raters)
    if rater_errors:
        errors["raters"] = " ".join(rater_errors)
    if not 1 <= lease_minutes <= 24 * 60:
        errors["lease_minutes"] = "The lease must be between 1 minute and 24 hours."
    if errors:
        raise CampaignError(errors)
    old = {"name": campaign.name, "description": campaign.description, "overlap_k": campaign.overlap_k,
           "lease_minutes": campaign.lease_minutes,
           "raters": sorted(campaign.raters.values_list("pseudonym", flat=True))}
    campaign.name, campaign.description = name.strip(), description.strip()
    campaign.lease_minutes, campaign.overlap_k = lease_minutes, k
    campaign.save()
    campaign.raters.set(raters)
    new = {"name": campaign.name, "description": campaign.description, "overlap_k": k,
           "lease_minutes": lease_minutes, "raters": sorted(u.pseudonym for u in raters)}
    record(actor, "campaign.update", campaign, old=old, new=new)
    return campaign


@transaction.atomic
def open_campaign(actor, campaign: Campaign) -> Campaign:
    campaign = Campaign.objects.select_for_update(of=("self",), no_key=True).get(pk=campaign.pk)
    if campaign.status == Campaign.Status.OPEN:
        return campaign
    if not campaign.items.exists():
        raise CampaignError("The campaign has no conversations.")
    if campaign.raters.count() < campaign.overlap_k:
        raise CampaignError(f"The campaign needs at least {campaign.overlap_k} raters before it can open.")
    old = campaign.status
    campaign.status = Campaign.Status.OPEN
    campaign.opened_at = campaign.opened_at or timezone.now()
    campaign.closed_at = None
    campaign.save()
    record(actor, "campaign.open", campaign, old={"status": old}, new={"status": campaign.status})
    return campaign


@transaction.atomic
def close_campaign(actor, campaign: Campaign) -> Campaign:
    """Close: no more assignments, submissions or revisions. Leases in progress are released (their
    drafts stay), so a reopened campaign hands those conversations out again."""
    campaign = Campaign.objects.select_for_update(of=("self",), no_key=True).get(pk=campaign.pk)
    if campaign.status == Campaign.Status.CLOSED:
        return campaign
    old = campaign.status
    campaign.status = Campaign.Status.CLOSED
    campaign.closed_at = timezone.now()
    campaign.save()
    # Releasing changes the items' occupant counts (a trigger writes them): lock those items first, in id
    # order, as every other path locks an item before its assignments.
    active = campaign.assignments.filter(status=Assignment.Status.ACTIVE)
    list(CampaignItem.objects.select_for_update(of=("self",), no_key=True)
         .filter(pk__in=active.values("item_id")).order_by("pk").values_list("pk", flat=True))
    released = active.update(
        status=Assignment.Status.RELEASED, updated_at=timezone.now()
    )
    record(actor, "campaign.close", campaign, old={"status": old},
           new={"status": campaign.status, "leases_released": released})
    return campaign


@transaction.atomic
def add_conversations(actor, campaign: Campaign, conversation_ids: list[int]) -> int:
    """Add finished conversations to a campaign that is not closed; ids already in it are ignored."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == Campaign.Status.CLOSED:
        raise CampaignError({"conversations": "The campaign is closed."})
    conversation_ids = list(dict.fromkeys(conversation_ids))
    errors = conversation_id_errors(conversation_ids)
    if errors:
        raise CampaignError(errors)
    present = set(CampaignItem.objects.filter(campaign=campaign, conversation_id__in=conversation_ids)
                  .values_list("conversation_id", flat=True))
    new = [pk for pk in conversation_ids if pk not in present]
    CampaignItem.objects.bulk_create([CampaignItem(campaign=campaign, conversation_id=pk) for pk in new],
                                     batch_size=2000)
    if new:
        record(actor, "campaign.add_conversations", campaign, new={"conversations": len(new),
                                                                   "first_id": min(new), "last_id": max(new)})
    return len(new)


@transaction.atomic
def change_campaign(actor, campaign: Campaign, *, settings: dict | None = None, add_conversation_ids=(),
                    status: str | None = None) -> Campaign:
    """Several changes at once (the API's PATCH), all or none: new settings (any of name, description,
    raters, lease_minutes, overlap_k; the rest stay), then added conversations, then the status. Each
    step is its own audited service; a CampaignError in any step rolls back the steps before it."""
    if settings:
        update_campaign(
            actor, campaign, name=settings.get("name", campaign.name),
            description=settings.get("description", campaign.description),
            raters=settings["raters"] if "raters" in settings else list(campaign.raters.all()),
            lease_minutes=settings.get("lease_minutes", campaign.lease_minutes),
            overlap_k=settings.get("overlap_k"),
        )
    if add_conversation_ids:
        add_conversations(actor, campaign, add_conversation_ids)
    if status == Campaign.Status.OPEN:
        campaign = open_campaign(actor, campaign)
    elif status == Campaign.Status.CLOSED:
        campaign = close_campaign(actor, campaign)
    return campaign


def reclaim_expired_leases(actor, campaign: Campaign) -> int:
    return assigning.reclaim_expired_assignments(campaign, actor=actor)


def _validate_gold_scores(rubric: Rubric, scores: dict) -> tuple[dict, dict]:
    axes = {a.key: a for a in rubric.axes.all() if a.is_rated}
    clean, errors = {}, {}
    for key, raw in scores.items():
        if raw in (None, ""):
            continue
        axis = axes.get(key)
        if axis is None:
            errors[f"gold__{key}"] = f"“{key}” is not a rated axis of {rubric}."
            continue
        if axis.is_nominal:
            errors[f"gold__{key}"] = f"{axis.name} is categorical: gold answers are scores (use a reference label)."
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            errors[f"gold__{key}"] = f"{axis.name}: “{raw}” is not a score."
            continue
        if value not in axis.allowed_values():
            errors[f"gold__{key}"] = f"{axis.name} takes {axis.scale_min} to {axis.scale_max}; got {value}."
            continue
        clean[key] = value
    if not clean and not errors:
        errors["__all__"] = "Give the expected score of at least one axis."
    return clean, errors


@transaction.atomic
def add_gold(actor, campaign: Campaign, conversation_id, scores: dict) -> CampaignItem:
    """Add a finished conversation as a gold item with expected scores (or mark an item of the campaign
    as gold). Raters cannot tell gold items from the others."""
    if campaign.status == Campaign.Status.CLOSED:
        raise CampaignError("The campaign is closed.")
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise CampaignError({"conversation": "Give a conversation number."}) from None
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise CampaignError({"conversation": f"There is no conversation {conversation_id}."})
    if conversation.status != Conversation.Status.DONE:
        raise CampaignError({"conversation": f"Conversation {conversation_id} is not finished."})
    clean, errors = _validate_gold_scores(campaign.rubric, scores)
    if errors:
        raise CampaignError(errors)
    item, created = CampaignItem.objects.get_or_create(campaign=campaign, conversation=conversation)
    old = {"is_gold": item.is_gold, "gold_scores": item.gold_scores} if not created else None
    item.is_gold, item.gold_scores = True, clean
    item.save()
    record(actor, "campaign.gold", item, old=old, new={"is_gold": True, "gold_scores": clean,
                                                       "conversation": conversation.pk, "added": created})
    return item
