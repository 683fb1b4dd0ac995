"""Write use cases of the API that the other apps' services do not cover.

Campaigns are created and changed through rating.campaigns (validation, audit) wherever it fits. The
API adds one thing the campaign pages do not need: a campaign built from an explicit list of
conversation ids (e.g. the ids an import returned), and adding conversations to an existing campaign.
"""
from __future__ import annotations

from django.db import transaction

from audit.services import record
from generation.models import Conversation
from rating import campaigns as campaign_ops
from rating.models import Campaign, CampaignItem, Rubric


def _check_ids(conversation_ids: list[int]) -> dict[str, str]:
    found = dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "status"))
    missing = [pk for pk in conversation_ids if pk not in found]
    if missing:
        return {"conversations": f"No conversations with ids {missing[:20]}."}
    unfinished = [pk for pk in conversation_ids if found[pk] != Conversation.Status.DONE]
    if unfinished:
        return {"conversations": f"Conversations {unfinished[:20]} are not finished and cannot be rated."}
    return {}


@transaction.atomic
def create_campaign_from_ids(actor, *, name: str, description: str, rubric: Rubric, raters, overlap_k: int,
                             lease_minutes: int, conversation_ids: list[int]) -> Campaign:
    """As rating.campaigns.create_campaign (same rules, same audit event), with the conversations given
    by id instead of by filters."""
    raters = list(raters)
    conversation_ids = list(dict.fromkeys(conversation_ids))
    errors = campaign_ops.settings_errors(name=name, raters=raters, overlap_k=overlap_k, lease_minutes=lease_minutes)
    errors.update(_check_ids(conversation_ids) if conversation_ids else {"conversations": "Give at least one id."})
    if errors:
        raise campaign_ops.CampaignError(errors)
    # The items table says exactly which conversations; the selection records how they were chosen.
    selection = {"by": "conversation ids (API)", "conversations": len(conversation_ids),
                 "first_id": min(conversation_ids), "last_id": max(conversation_ids), "status": "done"}
    return campaign_ops.insert_campaign(actor, name=name, description=description, rubric=rubric, raters=raters,
                                        overlap_k=overlap_k, lease_minutes=lease_minutes, selection=selection,
                                        conversation_ids=conversation_ids)


@transaction.atomic
def add_conversations(actor, campaign: Campaign, conversation_ids: list[int]) -> int:
    """Add finished conversations to a campaign that is not closed; ids already in it are ignored."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == Campaign.Status.CLOSED:
        raise campaign_ops.CampaignError({"conversations": "The campaign is closed."})
    conversation_ids = list(dict.fromkeys(conversation_ids))
    errors = _check_ids(conversation_ids)
    if errors:
        raise campaign_ops.CampaignError(errors)
    present = set(CampaignItem.objects.filter(campaign=campaign, conversation_id__in=conversation_ids)
                  .values_list("conversation_id", flat=True))
    new = [pk for pk in conversation_ids if pk not in present]
    CampaignItem.objects.bulk_create([CampaignItem(campaign=campaign, conversation_id=pk) for pk in new],
                                     batch_size=2000)
    if new:
        record(actor, "campaign.add_conversations", campaign, new={"conversations": len(new),
                                                                   "first_id": min(new), "last_id": max(new)})
    return len(new)
