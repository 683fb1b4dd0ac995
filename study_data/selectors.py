"""Read queries of the study_data app: the campaigns the exports page and the API list."""
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from rating.models import Campaign, CampaignItem, Rating


def campaign_queryset():
    """Campaigns with their conversation and submitted-rating counts. Counted in correlated subqueries:
    two Counts over joins would multiply items by assignments (10^10 rows for a 100,000-item campaign)."""
    items = (CampaignItem.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign")
             .annotate(n=Count("id")).values("n"))
    submitted = (Rating.objects.filter(assignment__campaign=OuterRef("pk"), status=Rating.Status.SUBMITTED)
                 .order_by().values("assignment__campaign").annotate(n=Count("id")).values("n"))
    return (
        Campaign.objects.select_related("rubric")
        .prefetch_related("raters")
        .annotate(
            item_count=Coalesce(Subquery(items, output_field=IntegerField()), 0),
            submitted_count=Coalesce(Subquery(submitted, output_field=IntegerField()), 0),
        )
    )
