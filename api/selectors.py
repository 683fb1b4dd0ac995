"""Read-side queries of the API: aggregates are computed by PostgreSQL, not in Python loops."""
from collections import defaultdict

from django.db.models import Avg, Count, F, Min, Prefetch, StdDev

from generation.models import Conversation, GenerationJob, Message
from rating.models import Assignment, AxisScore, Campaign, CampaignItem, MessageNote, Rating


def conversations():
    return Conversation.objects.select_related("case", "persona")


def conversation_detail():
    return conversations().prefetch_related(Prefetch("messages", queryset=Message.objects.order_by("index")))


def ratings_of_campaign(campaign: Campaign):
    return (
        Rating.objects.filter(assignment__campaign=campaign)
        .select_related("assignment__rater", "assignment__item", "rubric")
        .prefetch_related(
            Prefetch("scores", queryset=AxisScore.objects.select_related("axis")),
            Prefetch("message_notes", queryset=MessageNote.objects.select_related("message")),
        )
    )


def jobs():
    return GenerationJob.objects.select_related("patient_model", "sensemaker_model", "helper_model")


def attach_job_counts(page):
    """One GROUP BY for the conversations-by-status counts of every job on the page."""
    ids = [job.pk for job in page]
    counts = defaultdict(list)
    rows = (
        Conversation.objects.filter(job_id__in=ids).values_list("job_id", "status").annotate(n=Count("id")).order_by()
    )
    for job_id, status, n in rows:
        counts[job_id].append((status, n))
    for job in page:
        job.status_counts = counts[job.pk]
    return page


def own_assignments(rater):
    return Assignment.objects.filter(rater=rater).select_related("campaign", "item")


# --- aggregated scores ---------------------------------------------------------------------------


def _axis_rows(score_filter: dict):
    """Mean, SD and number of raters per (campaign, conversation, axis) over submitted ratings.

    One SQL GROUP BY; only values that were given count (a skipped optional axis is not a zero).
    """
    return (
        AxisScore.objects.filter(rating__status=Rating.Status.SUBMITTED, value__isnull=False, **score_filter)
        .values(
            campaign_id=F("rating__assignment__campaign_id"),
            conversation_id=F("rating__assignment__item__conversation_id"),
            axis_key=F("axis__key"),
        )
        .annotate(
            mean=Avg("value"),
            sd=StdDev("value", sample=True),
            n=Count("rating__assignment__rater", distinct=True),
            axis_order=Min("axis__order"),
        )
        .order_by("campaign_id", "conversation_id", "axis_order", "axis_key")
    )


def _rater_counts(rating_filter: dict) -> dict:
    rows = (
        Rating.objects.filter(status=Rating.Status.SUBMITTED, **rating_filter)
        .values_list("assignment__campaign_id", "assignment__item__conversation_id")
        .annotate(n=Count("assignment__rater", distinct=True))
        .order_by()
    )
    return {(campaign, conv): n for campaign, conv, n in rows}


def _axes_payload(rows) -> list[dict]:
    return [{"axis": r["axis_key"], "mean": r["mean"], "sd": r["sd"], "n": r["n"]} for r in rows]


def conversation_scores(conversation: Conversation, campaign_id: int | None = None) -> dict:
    """Per campaign the conversation is in: submitted raters and per-axis mean/SD/n."""
    items = CampaignItem.objects.filter(conversation=conversation).select_related("campaign__rubric")
    if campaign_id is not None:
        items = items.filter(campaign_id=campaign_id)
    score_filter = {"rating__assignment__item__conversation": conversation}
    rating_filter = {"assignment__item__conversation": conversation}
    if campaign_id is not None:
        score_filter["rating__assignment__campaign_id"] = campaign_id
        rating_filter["assignment__campaign_id"] = campaign_id
    by_campaign = defaultdict(list)
    for row in _axis_rows(score_filter):
        by_campaign[row["campaign_id"]].append(row)
    raters = _rater_counts(rating_filter)
    campaigns = []
    for item in items.order_by("campaign_id"):
        rubric = item.campaign.rubric
        campaigns.append({
            "campaign": item.campaign_id,
            "rubric": {"id": rubric.pk, "slug": rubric.slug, "version": rubric.version, "name": rubric.name},
            "n_raters": raters.get((item.campaign_id, conversation.pk), 0),
            "axes": _axes_payload(by_campaign[item.campaign_id]),
        })
    return {"conversation": conversation.pk, "smog_grade": conversation.smog_grade, "campaigns": campaigns}


def campaign_items(campaign: Campaign):
    return CampaignItem.objects.filter(campaign=campaign).select_related("conversation")


def campaign_scores_for_page(campaign: Campaign, items) -> list[dict]:
    """Aggregates for one page of a campaign's conversations (one GROUP BY for the whole page)."""
    conv_ids = [item.conversation_id for item in items]
    by_conv = defaultdict(list)
    rows = _axis_rows(
        {"rating__assignment__campaign": campaign, "rating__assignment__item__conversation_id__in": conv_ids}
    )
    for row in rows:
        by_conv[row["conversation_id"]].append(row)
    raters = _rater_counts({"assignment__campaign": campaign, "assignment__item__conversation_id__in": conv_ids})
    return [
        {
            "conversation": item.conversation_id,
            "smog_grade": item.conversation.smog_grade,
            "n_raters": raters.get((campaign.pk, item.conversation_id), 0),
            "axes": _axes_payload(by_conv[item.conversation_id]),
        }
        for item in items
    ]
