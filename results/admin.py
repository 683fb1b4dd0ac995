"""Agreement snapshots in the Django admin: read-only, they are computed results, never edited."""
from django.contrib import admin

from core.admin_base import ReadOnlyModelAdmin, ReadOnlyTabularInline

from .models import AgreementSnapshot, AxisAgreement, JudgeAgreement


class AxisAgreementInline(ReadOnlyTabularInline):
    model = AxisAgreement
    fields = ("axis_key", "level", "n_pairable", "n_raters", "alpha", "alpha_ci_low", "alpha_ci_high")
    readonly_fields = fields


@admin.register(AgreementSnapshot)
class AgreementSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = ("campaign", "computed_at", "trigger", "n_conversations", "n_raters", "n_ratings", "n_boot",
                    "duration_seconds")
    list_filter = ("trigger",)
    inlines = [AxisAgreementInline]


@admin.register(AxisAgreement)
class AxisAgreementAdmin(ReadOnlyModelAdmin):
    list_display = ("snapshot", "axis_key", "level", "n_pairable", "n_raters", "alpha", "alpha_ci_low",
                    "alpha_ci_high")
    list_filter = ("level",)


@admin.register(JudgeAgreement)
class JudgeAgreementAdmin(ReadOnlyModelAdmin):
    list_display = ("snapshot", "judge_run", "n_conversations", "input_hash")
    list_select_related = ("snapshot", "judge_run")
