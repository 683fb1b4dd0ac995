"""Results pages for admins and researchers. Everything shown is read from the newest snapshot; the
only computation on request is drawing SVG and, for the staleness notice, one small aggregate query."""
from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import capability_required
from accounts.models import User
from accounts.roles import Capability, can
from audit.services import record
from rating.models import Campaign
from rating.selectors import campaign_overview

from . import figures, judge_views, selectors, services
from .page_tables import for_page as _for_page
from .page_tables import svg_response, table_csv_response
from .reporting import bootstrap_note
from .reporting import table as make_table
from .stats import DEFINITIONS, DRIFT_RULE
from .stats.judge import JUDGE_DEFINITIONS

# Where each stored table appears on the page; all of them (and alpha_history) download as CSV.
AGREEMENT_TABLES = ["agreement", "raters"]
RESULT_TABLES = ["summary", "by_model", "comparisons", "trait_literacy", "condition", "length", "stages"]
# Only snapshots of rubrics with categorical (nominal) axes have these.
NOMINAL_TABLES = ["nominal_agreement", "high_risk_recall", "confusion"]
DOWNLOAD_ONLY = ["alpha_over_time", "rater_axes", "rater_drift", "kappa", "distribution", "score_length"]


@capability_required(Capability.VIEW_RESULTS)
def index(request):
    campaigns = list(campaign_overview().order_by("-created_at"))
    latest = selectors.snapshot_summary(c.pk for c in campaigns)
    for c in campaigns:
        c.snapshot = latest.get(c.pk)
    return render(request, "results/index.html", {"campaigns": campaigns})


def _snapshot_or_none(campaign):
    return selectors.latest_snapshot(campaign)


def _history_table(campaign) -> dict:
    rows = [
        [r["computed_at"].isoformat(), r["snapshot"], r["axis_name"], r["n"], r["n_ratings"], r["alpha"],
         r["ci_low"], r["ci_high"]]
        for r in selectors.alpha_history(campaign, limit=10_000)
    ]
    return make_table(
        "Krippendorff's alpha per recomputation",
        [("Computed at", "text"), ("Snapshot", "int"), ("Axis", "text"), ("Conversations with >= 2 ratings", "int"),
         ("Ratings in the campaign", "int"), ("alpha", "num3"), ("alpha 95% CI low", "num3"),
         ("alpha 95% CI high", "num3")],
        rows,
        "One row per axis and recomputation of the campaign (when the platform recomputed, not when the ratings "
        "were submitted: for that, see 'Krippendorff's alpha as the ratings came in').",
    )


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def campaign_results(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
    snapshot = _snapshot_or_none(campaign)
    context = {
        "campaign": campaign,
        "snapshot": snapshot,
        "can_recompute": can(request.user, Capability.MANAGE_CAMPAIGNS),
        "pending": services.is_pending(campaign.pk),
        "drift_rule": DRIFT_RULE,
        "definitions": DEFINITIONS,
    }
    if snapshot is not None:
        stored = snapshot.tables.get("tables", {})
        drawn = figures.draw_all(snapshot)
        context.update(
            stale=selectors.is_stale(snapshot),
            agreement_tables=[(name, _for_page(stored[name])) for name in AGREEMENT_TABLES if name in stored],
            result_tables=[(name, _for_page(stored[name])) for name in RESULT_TABLES if name in stored],
            nominal_tables=[(name, _for_page(stored[name])) for name in NOMINAL_TABLES if name in stored],
            rater_axes=_for_page(stored["rater_axes"]) if "rater_axes" in stored else None,
            figures=drawn,
            models=snapshot.tables.get("models", []),
            downloads=[(name, stored[name]["title"]) for name in DOWNLOAD_ONLY if name in stored]
            + [("alpha_history", "Krippendorff's alpha per recomputation")],
            rater_names=_rater_names(request.user, snapshot),
            bootstrap_note=bootstrap_note(snapshot.n_boot, snapshot.seed),
        )
        judge_views.add_judge_context(request, context, campaign, snapshot)
    return render(request, "results/campaign.html", context)


def _rater_names(user, snapshot) -> dict:
    """Pseudonym -> name, for admins only: researchers see pseudonyms, as in every export."""
    if not can(user, Capability.MANAGE_USERS):
        return {}
    ids = [r["id"] for r in snapshot.rater_stats]
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=ids)}
    return {r["pseudonym"]: names.get(r["id"], "") for r in snapshot.rater_stats}


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def table_csv(request, pk, name):
    campaign = get_object_or_404(Campaign, pk=pk)
    if name == "alpha_history":
        data = _history_table(campaign)
    else:
        snapshot = _snapshot_or_none(campaign)
        data = (snapshot.tables.get("tables", {}) if snapshot else {}).get(name)
    if data is None:
        raise Http404("No such table for this campaign (or results not computed yet).")
    return table_csv_response(data, f"campaign-{campaign.pk}-{name}.csv")


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def figure_svg(request, pk, name):
    campaign = get_object_or_404(Campaign, pk=pk)
    snapshot = _snapshot_or_none(campaign)
    figure = figures.draw(snapshot, name) if snapshot else None
    if figure is None:
        raise Http404("No such figure for this campaign (or results not computed yet).")
    return svg_response(figure.svg, f"campaign-{campaign.pk}-{name}.svg", bool(request.GET.get("download")))


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def snapshot_json(request, pk):
    """The whole newest snapshot: every statistic with its definitions, for reproduction elsewhere."""
    campaign = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
    snapshot = _snapshot_or_none(campaign)
    if snapshot is None:
        raise Http404("Results not computed yet.")
    payload = {
        "campaign": {"id": campaign.pk, "name": campaign.name},
        "rubric": {"slug": campaign.rubric.slug, "version": campaign.rubric.version},
        "snapshot": {
            "id": snapshot.pk, "computed_at": snapshot.computed_at, "trigger": snapshot.trigger,
            "input_hash": snapshot.input_hash, "n_conversations": snapshot.n_conversations,
            "n_raters": snapshot.n_raters, "n_ratings": snapshot.n_ratings, "n_boot": snapshot.n_boot,
            "seed": snapshot.seed, "stale": selectors.is_stale(snapshot),
        },
        "axes": [
            {"axis": row.axis_key, "name": row.axis.name, "level": row.level, "statistics": row.statistics}
            for row in snapshot.axes.select_related("axis")
        ],
        "raters": snapshot.rater_stats,
        "drift_flagged": snapshot.drift_flagged,
        "results": snapshot.tables,
        # LLM judge runs against the clinicians (never counted among the raters above).
        "judges": [
            {"run": j.provenance, "n_conversations": j.n_conversations, "input_hash": j.input_hash,
             "statistics": j.statistics, "tables": j.tables.get("tables", {})}
            for j in judge_views.snapshot_judges(snapshot)
        ],
        "judge_definitions": JUDGE_DEFINITIONS,
        "definitions": DEFINITIONS,
        "drift_rule": DRIFT_RULE,
    }
    response = JsonResponse(payload, encoder=DjangoJSONEncoder, json_dumps_params={"allow_nan": False})
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-agreement.json"'
    return response


@require_POST
@capability_required(Capability.MANAGE_CAMPAIGNS)
def recompute(request, pk):
    """Queue a recomputation now (the worker does it; a big campaign takes a few seconds)."""
    campaign = get_object_or_404(Campaign, pk=pk)
    queued = services.schedule_recompute(campaign.pk, delay=0)
    record(request.user, "results.recompute", campaign, new={"queued": queued})
    if queued:
        messages.success(request, "Recomputation queued: the results below update in a few seconds.")
    else:
        messages.info(request, "A recomputation is already queued or running.")
    return redirect("results:campaign", pk=campaign.pk)


@require_GET
@capability_required(Capability.VIEW_RESULTS)
def status(request, pk):
    """Polled by the page while a recomputation is pending: is there a newer snapshot?"""
    campaign = get_object_or_404(Campaign, pk=pk)
    snapshot = _snapshot_or_none(campaign)
    shown = request.GET.get("shown", "")
    return render(request, "results/_status.html", {
        "campaign": campaign, "snapshot": snapshot, "pending": services.is_pending(campaign.pk),
        "newer": snapshot is not None and str(snapshot.pk) != shown, "shown": shown,
        "stale": snapshot is not None and selectors.is_stale(snapshot),
    })

