"""Safety-probe report pages (admins and researchers): tables, an SVG figure and CSV downloads.
Computed on request from the runs' items (a few thousand rows; the bootstrap is vectorised)."""
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.access import capability_required
from accounts.roles import Capability
from probes.models import ProbeBattery

from . import svg
from .page_tables import table_csv_response
from .probe_report import battery_report
from .views import _for_page

PAGE_TABLES = ["by_condition", "by_question", "by_symptom", "by_symptom_judge", "judge_agreement", "by_probe"]


def _report(pk):
    battery = get_object_or_404(ProbeBattery, pk=pk)
    return battery, battery_report(battery)


def probe_figure_svg(report: dict) -> str:
    figure = report["figure"]
    title = f"{report['measure'].capitalize()} per group and model: {report['battery']['name']} (95% CI)"
    return svg.bar_chart(figure["groups"], figure["series"], figure["values"], 0.0, 100.0, title, report["measure"])


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def probe_report(request, pk):
    battery, report = _report(pk)
    tables = [(name, _for_page(report["tables"][name])) for name in PAGE_TABLES if name in report["tables"]]
    return render(request, "probes/report.html", {
        "battery": battery, "report": report, "tables": tables,
        "figure": probe_figure_svg(report) if report["runs"] else "",
        "downloads": [(name, t["title"]) for name, t in report["tables"].items()],
    })


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def probe_table_csv(request, pk, name):
    battery, report = _report(pk)
    data = report["tables"].get(name)
    if data is None:
        raise Http404("No such table.")
    return table_csv_response(data, f"probes-{battery.slug}-v{battery.version}-{name}.csv")


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def probe_figure(request, pk):
    battery, report = _report(pk)
    response = HttpResponse(probe_figure_svg(report), content_type="image/svg+xml; charset=utf-8")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="probes-{battery.slug}-v{battery.version}.svg"'
    return response
