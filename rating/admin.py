from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.admin_base import ReadOnlyMixin, ReadOnlyModelAdmin

from .models import (
    Assignment,
    AxisScore,
    Campaign,
    CampaignItem,
    MessageNote,
    PairShare,
    Rating,
    Rubric,
    RubricAxis,
    SafetyFlag,
)

# View only (ReadOnlyMixin): what changes these rows lives in rating/ (services, campaigns, rubric
# files), which validates and audits; the Django admin would bypass both.


class RubricAxisInline(ReadOnlyMixin, admin.StackedInline):
    model = RubricAxis
    extra = 0
    can_delete = False


@admin.register(Rubric)
class RubricAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: a rubric changes only by loading a file (Campaigns > Rubrics or `load_rubric`), which makes
    a new version, so every rating keeps the exact rubric it was given under. An unused one may be deleted."""

    list_display = ("name", "slug", "version", "is_default", "created_at")
    inlines = [RubricAxisInline]

    def has_delete_permission(self, request, obj=None):
        in_use = obj is not None and (obj.ratings.exists() or obj.campaigns.exists())
        return super().has_delete_permission(request, obj) and not in_use


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: campaigns are created, edited, opened and closed on the campaign pages, which check k,
    raters, blinding and gold scores and audit every change. The conversations are listed there too (a
    per-conversation inline would also hit Django's 1,000-field limit on a large campaign)."""

    list_display = ("name", "rubric", "overlap_k", "lease_minutes", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = ("conversations", "campaign_page")

    @admin.display(description="Conversations")
    def conversations(self, obj):
        items = obj.items.count()
        gold = obj.items.filter(is_gold=True).count()
        listing = reverse("admin:rating_campaignitem_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html('<a href="{}">{} ({} gold)</a>', listing, items, gold)

    @admin.display(description="Manage")
    def campaign_page(self, obj):
        return format_html('<a href="{}">Campaign page: progress, edit, gold items, leases</a>',
                           reverse("campaigns:detail", args=[obj.pk]))

    def has_delete_permission(self, request, obj=None):
        return False  # its ratings and audit trail depend on it


@admin.register(CampaignItem)
class CampaignItemAdmin(ReadOnlyModelAdmin):
    """The conversations of each campaign, filterable by campaign (too many for an inline)."""

    list_display = ("campaign", "conversation", "is_gold")
    list_filter = ("campaign", "is_gold")
    search_fields = ("conversation__id",)
    list_select_related = ("campaign", "conversation")


@admin.register(PairShare)
class PairShareAdmin(ReadOnlyModelAdmin):
    """Per-rater counts of conversations shared with each partner, kept by a database trigger (the pair
    budget of rating.assignment reads them). Each row is one rater's share: a pair's total is the sum of
    its two raters' rows, so a row alone may be negative."""

    list_display = ("campaign", "rater", "partner", "shared")
    list_filter = ("campaign",)
    list_select_related = ("campaign", "rater", "partner")


class AxisScoreInline(ReadOnlyMixin, admin.TabularInline):
    model = AxisScore
    extra = 0
    fields = ("axis", "value", "comment")
    can_delete = False


@admin.register(Rating)
class RatingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Ratings are changed only by their rater through the rating page, which audits every change."""

    list_display = ("assignment", "rubric", "status", "revision", "submitted_at")
    list_filter = ("status", "rubric")
    inlines = [AxisScoreInline]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: assignments change only through rating/assignment.py, which keeps the k-raters cap
    (an edited status could put a fourth rater on a k = 3 conversation). Release stuck leases from the
    campaign page."""

    list_display = ("campaign", "item", "rater", "status", "lease_expires_at", "active_seconds")
    list_filter = ("status", "campaign")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MessageNote)
class MessageNoteAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only and never deleted: a rater's note is part of their rating."""

    list_display = ("rating", "message", "problematic")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SafetyFlag)
class SafetyFlagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only and never deleted: flags are handled in the safety queue (/campaigns/safety/), which audits
    each step, and a resolved flag stays on record."""

    list_display = ("conversation", "campaign", "category", "status", "raised_by", "created_at")
    list_filter = ("status", "category")

    def has_delete_permission(self, request, obj=None):
        return False
