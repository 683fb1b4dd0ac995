"""Validation mode pages: the clinicians' agree/disagree page and the admins' campaign creation.

Thin: the work is in validation.py and validation_selectors.py. Heartbeats, skips and safety flags go to
rating's own URLs (the assignment is rating's); rating routes its pages for these assignments here.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import capability_required
from accounts.roles import Capability, can
from rating import assignment as assigning
from rating import selectors as rating_selectors
from rating.forms import SafetyFlagForm, SkipForm, blank_form
from rating.services import HEARTBEAT_SECONDS

from . import validation
from .models import ValidationCampaign
from .validation_forms import ValidationCampaignForm
from .validation_selectors import validation_page

ERRORS_KEY = "validation-errors-{pk}"


def _own(request, pk):
    assignment = rating_selectors.own_assignment_or_none(request.user, pk)
    if assignment is None or not validation.is_validation_campaign(assignment.campaign):
        raise Http404("No such conversation for you.")
    return assignment


@capability_required(Capability.RATE)
def validate(request, pk):
    assignment = _own(request, pk)
    errors = request.session.pop(ERRORS_KEY.format(pk=pk), None) or {}
    try:
        page = validation_page(assignment, errors=errors)
    except validation.ValidationModeError as exc:
        # Nothing to validate here: say so, and offer rating's skip so the conversation is not stuck.
        return render(request, "judging/validate_unavailable.html", {
            "problem": "; ".join(exc.errors.values()), "skip_form": blank_form(SkipForm),
            "page": {"assignment_id": assignment.pk, "editable": assignment.status == assignment.Status.ACTIVE},
        })
    if assignment.status == assignment.Status.SKIPPED:
        page.problem = "You skipped this conversation."
    elif page.campaign_open and not page.on_roster:
        page.problem = "You are no longer a rater in this campaign: this review can no longer be changed."
    elif page.campaign_open and not page.is_submitted and not assigning.lease_is_live(assignment):
        page.problem = ("Your hold on this conversation lapsed while you were away. It will be yours again "
                        "as soon as you make a change, unless it went to another rater meanwhile.")
    return render(request, "judging/validate.html", {
        "page": page, "flag_form": blank_form(SafetyFlagForm), "skip_form": blank_form(SkipForm),
        "heartbeat_seconds": HEARTBEAT_SECONDS,
    })


@capability_required(Capability.RATE)
@require_POST
def save(request, pk):
    """htmx: save the sent verdict fields; answers with rating's out-of-band status/error fragment."""
    assignment = _own(request, pk)
    changes, verdicts = validation.verdict_changes_from_post(request.POST)
    fields = [name for name in request.POST if name != "csrfmiddlewaretoken"]
    try:
        outcome = validation.save_verdicts(assignment, request.user, changes, verdicts)
    except validation.ValidationModeError as exc:
        return render(request, "rating/_save_result.html",
                      {"slots": [(name, "") for name in fields], "errors": {}, "problem": str(exc)}, status=409)
    slots = [(name, outcome.errors.get(name, "")) for name in dict.fromkeys([*fields, *outcome.errors])]
    submitted = validation.review_for(assignment).status == "submitted"
    return render(request, "rating/_save_result.html",
                  {"slots": slots, "errors": outcome.errors, "saved_at": timezone.localtime(), "submitted": submitted},
                  status=422 if outcome.errors else 200)


def _go_next(request, campaign):
    try:
        nxt = assigning.next_assignment(campaign, request.user)
    except assigning.AssignmentError as exc:
        messages.error(request, str(exc))
        return redirect("rating:home")
    if nxt is None:
        messages.success(request, "Nothing more is waiting for you in this campaign right now. Thank you!")
        return redirect("rating:campaign", campaign_pk=campaign.pk)
    return redirect("judge_validation:validate", pk=nxt.pk)


@capability_required(Capability.RATE)
@require_POST
def submit(request, pk):
    assignment = _own(request, pk)
    was_submitted = validation.review_for(assignment).status == "submitted"
    changes, verdicts = validation.verdict_changes_from_post(request.POST)
    try:
        validation.submit_review(assignment, request.user, changes, verdicts)
    except validation.ReviewRejected as exc:
        request.session[ERRORS_KEY.format(pk=pk)] = exc.errors
        messages.error(request, "The review is not complete yet: see the marked axes.")
        return redirect("judge_validation:validate", pk=pk)
    except validation.ValidationModeError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
        return redirect("judge_validation:validate", pk=pk)
    if was_submitted:
        messages.success(request, "Your revision is saved.")
        return redirect("rating:campaign", campaign_pk=assignment.campaign_id)
    messages.success(request, f"{rating_selectors.conversation_label(pk)} submitted.")
    if request.POST.get("then") == "stop":
        return redirect("rating:campaign", campaign_pk=assignment.campaign_id)
    return _go_next(request, assignment.campaign)


# --- admins ----------------------------------------------------------------------------------------


@capability_required(Capability.MANAGE_CAMPAIGNS)
def create(request):
    form = ValidationCampaignForm(request.POST or None, initial={"judge_run": request.GET.get("run")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            v = validation.create_validation_campaign(
                request.user, judge_run=data["judge_run"], name=data["name"], description=data["description"],
                raters=data["raters"], overlap_k=data["overlap_k"], lease_minutes=data["lease_minutes"],
                sample_index=data["sample_index"], open_now=data["open_now"])
        except validation.ValidationModeError as exc:
            for name, error in exc.errors.items():
                form.add_error(name if name in form.fields else None, error)
        else:
            messages.success(request, f"Validation campaign created with {v.campaign.items.count()} conversations"
                                      f"{' and opened' if data['open_now'] else '; open it when ready'}.")
            return redirect("campaigns:detail", pk=v.campaign_id)
    return render(request, "judging/validation_create.html", {"form": form})


@capability_required(Capability.VIEW_RESULTS)
def campaign_list(request):
    rows = ValidationCampaign.objects.select_related("campaign", "judge_run").order_by("-created_at")
    return render(request, "judging/validation_list.html", {
        "rows": rows, "can_manage": can(request.user, Capability.MANAGE_CAMPAIGNS)})
