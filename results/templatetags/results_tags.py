"""Formatting of stored result tables, and the drift alert other pages (the campaign page) include."""
import math

from django import template

from accounts.roles import Capability, can

register = template.Library()


@register.filter
def cell(value, fmt):
    """Format one table value by its column format (see results.reporting.table)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if fmt == "int":
        return f"{int(value):,}" if isinstance(value, int | float) else value
    if fmt in ("num", "num3", "pct", "p") and isinstance(value, int | float) and not isinstance(value, bool):
        if fmt == "p":
            return "< 0.001" if value < 0.001 else f"{value:.3f}"
        if fmt == "pct":
            return f"{value:.1f}"
        return f"{value:.3f}" if fmt == "num3" else f"{value:.2f}"
    return value


@register.filter
def is_numeric(fmt):
    return fmt in ("int", "num", "num3", "pct", "p")


@register.inclusion_tag("results/_drift_alert.html", takes_context=True)
def drift_alert(context, campaign):
    """`{% load results_tags %}{% drift_alert campaign %}`: raters whose agreement drifted down, from
    the newest results snapshot; nothing for users who may not see results."""
    from results.selectors import drift_alerts

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not can(user, Capability.VIEW_RESULTS):
        return {"alerts": [], "campaign": campaign}
    return {"alerts": drift_alerts(campaign), "campaign": campaign}
