"""Validation mode results (admins and researchers): agreement with the judge per axis, page and CSV."""
import csv

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.access import capability_required
from accounts.roles import Capability
from judging.models import ValidationCampaign

from .validation_reporting import report_table, validation_report


def _validation(pk) -> ValidationCampaign:
    return get_object_or_404(ValidationCampaign.objects.select_related("campaign", "judge_run"), campaign_id=pk)


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def campaign(request, pk):
    validation = _validation(pk)
    report = validation_report(validation)
    data = report_table(report)
    fmts = [c["fmt"] for c in data["columns"]]
    data["cells"] = [list(zip(row, fmts, strict=False)) for row in data["rows"]]
    return render(request, "results/validation.html",
                  {"validation": validation, "campaign": validation.campaign, "report": report, "table": data})


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def agreement_csv(request, pk):
    validation = _validation(pk)
    data = report_table(validation_report(validation))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{pk}-judge-validation.csv"'
    writer = csv.writer(response)
    writer.writerow([c["label"] for c in data["columns"]])
    writer.writerows(data["rows"])
    return response
