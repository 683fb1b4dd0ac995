"""Read-only Django admin classes for records that are history: audit events, computed results,
transcripts, ratings. Editing them in place would silently change what a study reported, and would
bypass the services that validate and audit every change."""
from django.contrib import admin


class ReadOnlyMixin:
    """View only: nothing is added or changed through the Django admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyModelAdmin(ReadOnlyMixin, admin.ModelAdmin):
    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
