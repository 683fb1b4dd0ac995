"""The judge-vs-clinician part of the results pages (admins and researchers; raters never): the section of
the campaign page, each judge table as CSV and each figure as SVG. Everything is read from the newest
snapshot's JudgeAgreement rows; nothing is computed on request but the SVG drawing."""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.access import capability_required
from accounts.roles import Capability
from rating.models import Campaign

from . import judge_figures, selectors
from .judge_reporting import JUDGE_TABLES, PER_MODEL_TABLES
from .models import JudgeAgreement
from .page_tables import for_page, svg_response, table_csv_response
from .stats.judge import JUDGE_DEFINITIONS

HUMANS = "humans"


def snapshot_judges(snapshot) -> list[JudgeAgreement]:
    if snapshot is None:
        return []
    return list(snapshot.judge_agreements.select_related("judge_run").order_by("judge_run_id"))


def _csv_url(campaign_pk: int, run_pk: int, name: str) -> str:
    return reverse("results:judge_table_csv", args=[campaign_pk, run_pk, name])


def _page_table(table: dict, url: str, html_id: str) -> dict:
    return {**for_page(table), "csv_url": url, "html_id": html_id}


def source_choices(judges: list[JudgeAgreement]) -> list[tuple[str, str]]:
    """The per-model results' sources offered on the page: the clinicians, each judge run, or both."""
    choices = [(HUMANS, "Clinicians")]
    for j in judges:
        label = f"{j.provenance.get('judge_model')} (run {j.judge_run_id}, prompt {j.provenance.get('prompt_version')})"
        if j.provenance.get("simulated"):
            label += " [simulated]"
        choices += [(f"judge-{j.judge_run_id}", f"Judge: {label}"),
                    (f"both-{j.judge_run_id}", f"Clinicians and judge side by side: {label}")]
    return choices


def add_judge_context(request, context: dict, campaign, snapshot) -> None:
    """Adds the judge section to the campaign page's context and, when the `source` parameter asks for a
    judge run, shows the per-model tables (the paper's Table 1 and 2 layouts) from that run."""
    judges = snapshot_judges(snapshot)
    context["judges"] = [
        {
            "agreement": j,
            "provenance": j.provenance,
            "tables": [(name, _page_table(j.tables["tables"][name], _csv_url(campaign.pk, j.judge_run_id, name),
                                          f"{name}-{j.judge_run_id}"))
                       for name in JUDGE_TABLES[:3] if name in (j.tables.get("tables") or {})],
            "figures": judge_figures.draw_all(j),
        }
        for j in judges
    ]
    context["judge_definitions"] = JUDGE_DEFINITIONS
    choices = source_choices(judges)
    source = request.GET.get("source", HUMANS)
    if source not in dict(choices):
        source = HUMANS
    context["result_sources"] = choices
    context["result_source"] = source
    if source == HUMANS or "result_tables" not in context:
        return
    kind, run_pk = source.split("-", 1)
    chosen = next(j for j in judges if str(j.judge_run_id) == run_pk)
    stored = chosen.tables.get("tables") or {}

    def judge_table(name: str) -> dict:
        return _page_table(stored[name], _csv_url(campaign.pk, chosen.judge_run_id, name), f"{name}-{run_pk}")

    # Entries keep the clinicians' table names, so each appears where the page shows that table.
    tables = []
    for name, table in context["result_tables"]:
        if kind == "both" and name == "summary" and "judge_side_by_side" in stored:
            tables.append((name, judge_table("judge_side_by_side")))
        if kind == "both" or f"judge_{name}" not in stored:
            tables.append((name, table))
        if name in PER_MODEL_TABLES and f"judge_{name}" in stored:
            tables.append((name, judge_table(f"judge_{name}")))
    context["result_tables"] = tables


def _agreement(campaign_pk: int, run_pk: int) -> JudgeAgreement:
    campaign = get_object_or_404(Campaign, pk=campaign_pk)
    snapshot = selectors.latest_snapshot(campaign)
    found = next((j for j in snapshot_judges(snapshot) if j.judge_run_id == run_pk), None)
    if found is None:
        raise Http404("No results of this judge run for this campaign (not finished, or not computed yet).")
    return found


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def judge_table_csv(request, pk, run_pk, name):
    agreement = _agreement(pk, run_pk)
    table = (agreement.tables.get("tables") or {}).get(name)
    if table is None:
        raise Http404("No such judge table.")
    return table_csv_response(table, f"campaign-{pk}-judge-run-{run_pk}-{name}.csv")


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def judge_figure_svg(request, pk, run_pk, name):
    figure = judge_figures.draw(_agreement(pk, run_pk), name)
    if figure is None:
        raise Http404("No such judge figure.")
    return svg_response(figure.svg, f"campaign-{pk}-judge-run-{run_pk}-{name}.svg", bool(request.GET.get("download")))
