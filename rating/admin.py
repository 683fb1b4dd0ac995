from django.contrib import admin

from .models import (
    Assignment,
    AxisScore,
    Campaign,
    CampaignItem,
    MessageNote,
    Rating,
    Rubric,
    RubricAxis,
    SafetyFlag,
)


class RubricAxisInline(admin.StackedInline):
    model = RubricAxis
    extra = 0


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    """A rubric with ratings under it is history: load a new version instead of editing it."""

    list_display = ("name", "slug", "version", "is_default", "created_at")
    inlines = [RubricAxisInline]

    def _in_use(self, obj):
        return obj is not None and obj.ratings.exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._in_use(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._in_use(obj)


class CampaignItemInline(admin.TabularInline):
    model = CampaignItem
    extra = 0
    raw_id_fields = ("conversation",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "rubric", "overlap_k", "lease_minutes", "status", "created_at")
    list_filter = ("status",)
    filter_horizontal = ("raters",)
    inlines = [CampaignItemInline]


class AxisScoreInline(admin.TabularInline):
    model = AxisScore
    extra = 0
    fields = ("axis", "value", "comment")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    """Ratings are changed only by their rater through the rating page, which audits every change."""

    list_display = ("assignment", "rubric", "status", "revision", "submitted_at")
    list_filter = ("status", "rubric")
    inlines = [AxisScoreInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    """Read-only: assignments change only through rating/assignment.py, which keeps the k-raters cap
    (an edited status could put a fourth rater on a k = 3 conversation). Release stuck leases from the
    campaign page."""

    list_display = ("campaign", "item", "rater", "status", "lease_expires_at", "active_seconds")
    list_filter = ("status", "campaign")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MessageNote)
class MessageNoteAdmin(admin.ModelAdmin):
    list_display = ("rating", "message", "problematic")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SafetyFlag)
class SafetyFlagAdmin(admin.ModelAdmin):
    """Read-only here: flags are handled in the safety queue (/campaigns/safety/), which audits each step."""

    list_display = ("conversation", "campaign", "category", "status", "raised_by", "created_at")
    list_filter = ("status", "category")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
