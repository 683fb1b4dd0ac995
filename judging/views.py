"""Judge-run pages (admins only): the panel embedded in the campaign page, launch, run pages.

The campaign page belongs to rating, which may not import judging; it loads `campaign_panel` with
htmx (hx-trigger="load"), so the layering holds and the campaign page stays fast.
"""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.access import capability_required
from accounts.roles import Capability
from rating.models import Campaign

from . import selectors, services
from .forms import JudgeLaunchForm
from .models import JudgeRun

RUN_JUDGES = Capability.RUN_JUDGES


def _runs_context(campaign) -> dict:
    runs = [(run, selectors.run_progress(run)) for run in selectors.campaign_runs(campaign.pk)[:20]]
    return {"campaign": campaign, "runs": runs, "any_unfinished": any(not p["is_finished"] for _, p in runs)}


def _panel(request, campaign, form=None, status=200):
    return render(request, "judging/_campaign_panel.html",
                  {**_runs_context(campaign), "form": form or JudgeLaunchForm()}, status=status)


@capability_required(RUN_JUDGES)
def campaign_panel(request, campaign_pk):
    return _panel(request, get_object_or_404(Campaign, pk=campaign_pk))


@capability_required(RUN_JUDGES)
def campaign_runs(request, campaign_pk):
    """The panel's runs table alone: what the panel polls while a run is unfinished."""
    return render(request, "judging/_campaign_panel.html#runs-table",
                  _runs_context(get_object_or_404(Campaign, pk=campaign_pk)))


@require_POST
@capability_required(RUN_JUDGES)
def launch(request, campaign_pk):
    """Errors come back into the form in place (htmx) or with the whole panel page (no JavaScript)."""
    campaign = get_object_or_404(Campaign, pk=campaign_pk)
    form = JudgeLaunchForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = services.launch_run(request.user, services.JudgeRequest(
                judge_model=data["judge_model"], campaign=campaign, rubric=data["rubric"], name=data["name"],
                samples=data["samples"], seed=data["seed"], max_concurrent_calls=data["max_concurrent_calls"],
            ))
        except services.JudgeRunError as exc:
            form.apply_errors(exc.errors)
        else:
            messages.success(request, f"Judge run launched: {run.items.count()} judge calls queued.")
            if request.htmx:
                return HttpResponseClientRedirect(reverse("judging:run_detail", args=[run.pk]))
            return redirect("judging:run_detail", pk=run.pk)
    if request.htmx:
        return render(request, "judging/_campaign_panel.html#launch-form", {"campaign": campaign, "form": form})
    return render(request, "judging/launch.html", {"campaign": campaign, "form": form}, status=400)


@capability_required(RUN_JUDGES)
def run_list(request):
    runs = JudgeRun.objects.select_related("judge_model", "campaign", "rubric")[:100]
    return render(request, "judging/run_list.html", {"runs": [(run, selectors.run_progress(run)) for run in runs]})


def _run_context(run):
    return {"run": run, "progress": selectors.run_progress(run), "failures": selectors.failure_reasons(run),
            "items": selectors.run_items(run)[:200]}


@capability_required(RUN_JUDGES)
def run_detail(request, pk):
    run = get_object_or_404(JudgeRun.objects.select_related("judge_model", "campaign", "rubric", "created_by"), pk=pk)
    return render(request, "judging/run_detail.html", _run_context(run))


@capability_required(RUN_JUDGES)
def run_progress(request, pk):
    run = get_object_or_404(JudgeRun, pk=pk)
    return render(request, "judging/_run_progress.html", _run_context(run))


@require_POST
@capability_required(RUN_JUDGES)
def run_cancel(request, pk):
    run = get_object_or_404(JudgeRun, pk=pk)
    n = services.cancel_run(run, request.user)
    messages.success(request, f"Cancelled: {n} queued judge calls stopped; running ones will finish.")
    return redirect("judging:run_detail", pk=pk)


@require_POST
@capability_required(RUN_JUDGES)
def run_retry(request, pk):
    run = get_object_or_404(JudgeRun, pk=pk)
    n = services.retry_failed_judge_items(run, request.user)
    messages.success(request, f"Re-queued {n} failed judge calls." if n else "No failed judge calls to retry.")
    return redirect("judging:run_detail", pk=pk)
