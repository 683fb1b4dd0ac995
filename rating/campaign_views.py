"""Admin campaign pages (create, monitor, gold items, leases), the safety queue and rubric upload.

Researchers may look at campaign progress (read-only, raters shown by pseudonym); everything that
changes something needs MANAGE_CAMPAIGNS, and the safety queue needs VIEW_SAFETY_QUEUE.
"""
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.access import capability_required
from accounts.roles import Capability, can

from . import campaigns, selectors, services
from .assignment import release_assignment
from .forms import CampaignCreateForm, CampaignEditForm, FlagHandleForm, GoldForm, RubricUploadForm
from .models import Assignment, Campaign, Rubric, SafetyFlag
from .rubric_files import RubricFileError, load_rubric

MANAGE = Capability.MANAGE_CAMPAIGNS
FLAG_DONE = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "reopened"}


def view_progress(view):
    """Admins, and researchers (read-only: the templates show no action to them)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (can(request.user, MANAGE) or can(request.user, Capability.VIEW_RESULTS)):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _apply_errors(form, exc: campaigns.CampaignError):
    for name, error in exc.errors.items():
        form.add_error(name if name in form.fields else None, error)


@view_progress
def campaign_list(request):
    return render(request, "campaigns/list.html", {
        "campaigns": selectors.campaign_overview().order_by("-created_at"),
        "can_manage": can(request.user, MANAGE),
    })


def _selection(data) -> campaigns.Selection:
    return campaigns.Selection(
        jobs=[j.pk for j in data.get("jobs") or []], sensemaker_models=list(data.get("sensemaker_models") or []),
        conditions=list(data.get("conditions") or []), traits=list(data.get("traits") or []),
        literacies=list(data.get("literacies") or []), intents=list(data.get("intents") or []),
        goals=list(data.get("goals") or []), limit=data.get("limit"), seed=data.get("seed") or 0,
    )


@capability_required(MANAGE)
def campaign_create(request):
    form = CampaignCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            c = campaigns.create_campaign(
                request.user, name=data["name"], description=data["description"], rubric=data["rubric"],
                raters=data["raters"], overlap_k=data["overlap_k"], lease_minutes=data["lease_minutes"],
                selection=_selection(data),
            )
        except campaigns.CampaignError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Campaign created with {c.items.count()} conversations. Open it when ready.")
            return redirect("campaigns:detail", pk=c.pk)
    count = campaigns.select_conversations(_selection(form.cleaned_data if form.is_bound else {})).count()
    return render(request, "campaigns/create.html", {"form": form, "count": count})


@capability_required(MANAGE)
def selection_preview(request):
    """htmx: how many finished conversations the filters currently match."""
    form = CampaignCreateForm(request.GET)
    form.is_valid()  # partial data is fine: only the filter fields are read
    data = {k: form.cleaned_data.get(k) for k in CampaignCreateForm.FILTER_FIELDS}
    count = campaigns.select_conversations(_selection(data)).count()
    return render(request, "campaigns/create.html#preview", {"count": count})


@view_progress
def campaign_detail(request, pk):
    c = get_object_or_404(Campaign.objects.select_related("rubric", "created_by"), pk=pk)
    page_obj, items = selectors.item_progress(c, request.GET.get("page") or 1)
    return render(request, "campaigns/detail.html", {
        "campaign": c, "can_manage": can(request.user, MANAGE),
        "can_run_judges": can(request.user, Capability.RUN_JUDGES),
        "totals": selectors.campaign_totals(c), "raters": selectors.rater_progress(c),
        "overlap": selectors.pair_overlap(c), "stuck": selectors.stuck_leases(c),
        "flags": selectors.campaign_flags(c), "items": items, "page_obj": page_obj,
    })


@capability_required(MANAGE)
def campaign_edit(request, pk):
    c = get_object_or_404(Campaign, pk=pk)
    form = CampaignEditForm(request.POST or None, campaign=c)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaigns.update_campaign(request.user, c, name=data["name"], description=data["description"],
                                      raters=data["raters"], lease_minutes=data["lease_minutes"],
                                      overlap_k=data.get("overlap_k"))
        except campaigns.CampaignError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Campaign updated.")
            return redirect("campaigns:detail", pk=c.pk)
    return render(request, "campaigns/edit.html", {"form": form, "campaign": c})


def _transition(request, pk, action, done):
    c = get_object_or_404(Campaign, pk=pk)
    try:
        action(request.user, c)
    except campaigns.CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("campaigns:detail", pk=pk)


@capability_required(MANAGE)
@require_POST
def campaign_open(request, pk):
    return _transition(request, pk, campaigns.open_campaign, "The campaign is open: raters can start.")


@capability_required(MANAGE)
@require_POST
def campaign_close(request, pk):
    return _transition(request, pk, campaigns.close_campaign,
                       "The campaign is closed: no more ratings or revisions are accepted.")


@capability_required(MANAGE)
@require_POST
def campaign_reclaim(request, pk):
    c = get_object_or_404(Campaign, pk=pk)
    n = campaigns.reclaim_expired_leases(request.user, c)
    messages.success(request, f"{n} expired lease(s) reclaimed." if n else "No expired leases to reclaim.")
    return redirect("campaigns:detail", pk=pk)


@capability_required(MANAGE)
@require_POST
def assignment_release(request, pk):
    a = get_object_or_404(Assignment, pk=pk)
    if release_assignment(a, request.user):
        messages.success(request, f"Released: the conversation goes to the next rater ({a.rater.pseudonym}'s "
                                  "draft is kept).")
    else:
        messages.info(request, "That assignment was no longer in progress.")
    return redirect("campaigns:detail", pk=a.campaign_id)


@capability_required(MANAGE)
def campaign_gold(request, pk):
    c = get_object_or_404(Campaign.objects.select_related("rubric"), pk=pk)
    form = GoldForm(request.POST or None, rubric=c.rubric)
    if request.method == "POST" and form.is_valid():
        try:
            item = campaigns.add_gold(request.user, c, form.cleaned_data["conversation"], form.scores())
        except campaigns.CampaignError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Conversation {item.conversation_id} is a gold item of this campaign.")
            return redirect("campaigns:gold", pk=c.pk)
    gold = c.items.filter(is_gold=True).select_related("conversation").order_by("pk")
    return render(request, "campaigns/gold.html", {"campaign": c, "form": form, "gold": gold})


@capability_required(Capability.VIEW_SAFETY_QUEUE)
def safety_queue(request):
    status = request.GET.get("status") or ""
    return render(request, "campaigns/safety_queue.html", {
        "flags": selectors.safety_queue(status)[:500], "status": status,
        "statuses": SafetyFlag.Status.choices, "open_count": selectors.open_safety_flag_count(),
    })


@capability_required(Capability.VIEW_SAFETY_QUEUE)
@require_POST
def flag_handle(request, pk):
    f = get_object_or_404(SafetyFlag, pk=pk)
    form = FlagHandleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose acknowledge, resolve or reopen.")
    else:
        try:
            services.handle_safety_flag(f, request.user, form.cleaned_data["action"], form.cleaned_data["note"])
        except services.RatingError as exc:
            messages.error(request, f"Flag {f.pk}: {exc}")
        else:
            messages.success(request, f"Flag {f.pk} {FLAG_DONE[form.cleaned_data['action']]}.")
    back = request.POST.get("next", "")
    # A path on this site only: redirect() would read any other text as a view name (a 500 for "x").
    if back.startswith("/") and back.isprintable() and url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("campaigns:safety_queue")


@capability_required(MANAGE)
def rubrics(request):
    form = RubricUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            rubric, created = load_rubric(form.cleaned_data["file"], actor=request.user,
                                          origin=f"upload {request.FILES['file'].name}",
                                          make_default=form.cleaned_data["make_default"])
        except RubricFileError as exc:
            form.add_error("file", f"{request.FILES['file'].name}: {exc}")
        else:
            if created:
                messages.success(request, f"Loaded {rubric} with {rubric.axes.count()} axes.")
            else:
                messages.info(request, f"{rubric} already has exactly this content; nothing new was loaded.")
            return redirect("campaigns:rubrics")
    listing = Rubric.objects.prefetch_related("axes").order_by("slug", "-version")
    return render(request, "campaigns/rubrics.html", {"form": form, "rubrics": listing})
