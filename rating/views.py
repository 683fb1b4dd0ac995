"""Rater pages. Thin: the work is in assignment.py, services.py and selectors.py.

Every view that takes an assignment id goes through `selectors.own_assignment_or_none`, so another
rater's id is a 404, and every page is built from the blinded selectors only.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import capability_required
from accounts.roles import Capability

from . import assignment as assigning
from . import extensions, selectors, services
from .forms import SafetyFlagForm, SkipForm, blank_form
from .models import Campaign

ERRORS_KEY = "rating-errors-{pk}"


def _own(request, pk):
    assignment = selectors.own_assignment_or_none(request.user, pk)
    if assignment is None:
        raise Http404("No such conversation for you.")
    return assignment


def _own_ref(request, pk):
    """For the writes (save, submit): the assignment by id, unread. The service's hold reads it under its
    locks and refuses another rater's id (NotYourRating, a 404 like _own's), so the request makes no
    separate look-up first."""
    assignment = selectors.own_assignment_ref(request.user, pk)
    if assignment is None:
        raise Http404("No such conversation for you.")
    return assignment


def _member_campaign(request, campaign_pk):
    return get_object_or_404(
        Campaign.objects.exclude(status=Campaign.Status.DRAFT), pk=campaign_pk, raters=request.user
    )


@capability_required(Capability.RATE)
def rater_home(request):
    return render(request, "rating/home.html", {"rows": selectors.rater_home(request.user)})


@capability_required(Capability.RATE)
def campaign(request, campaign_pk):
    c = _member_campaign(request, campaign_pk)
    current = assigning.current_assignment(c, request.user) if c.status == Campaign.Status.OPEN else None
    return render(request, "rating/campaign.html", {
        "campaign_name": c.name, "campaign_id": c.pk, "description": c.description,
        "is_open": c.status == Campaign.Status.OPEN, "status_label": c.get_status_display(),
        "rubric_name": c.rubric.name, "instructions": c.rubric.instructions, "citation": c.rubric.citation,
        "rows": selectors.my_assignments(c, request.user), "current_id": current.pk if current else None,
        "remaining": assigning.remaining_for(c, request.user) if c.status == Campaign.Status.OPEN else 0,
    })


def _go_next(request, c, campaign_pk=None):
    """Open the rater's next conversation, or say why there is none. With `campaign_pk` (and no `c`) the
    campaign is read with the candidates (one round trip), and one the rater may not see is a 404, as
    `_member_campaign` would answer."""
    try:
        if c is None:
            c, nxt = assigning.next_assignment_in(campaign_pk, request.user)
        else:
            nxt = assigning.next_assignment(c, request.user)
    except assigning.AssignmentError as exc:
        if c is None and isinstance(exc, (assigning.NoSuchCampaign, assigning.NotInCampaign)):
            raise Http404("No such campaign.") from None
        messages.error(request, str(exc))
        return redirect("rating:home")
    if nxt is None:
        if assigning.remaining_for(c, request.user):
            messages.info(request, "The conversations still needing a rating are being rated by others right now. "
                                   "Please check back later.")
        else:
            messages.success(request, f"You have rated every conversation available to you in “{c.name}”. "
                                      "Thank you!")
        return redirect("rating:campaign", campaign_pk=c.pk)
    return redirect("rating:rate", pk=nxt.pk)


@capability_required(Capability.RATE)
@require_POST
def next_conversation(request, campaign_pk):
    return _go_next(request, None, campaign_pk)


@capability_required(Capability.RATE)
def rate(request, pk):
    assignment = _own(request, pk)
    elsewhere = extensions.assignment_page(assignment)
    if elsewhere:  # e.g. a judge-validation campaign: its own page, never a rating
        return redirect(elsewhere)
    errors = request.session.pop(ERRORS_KEY.format(pk=pk), None) or {}
    page = selectors.rating_page(assignment, errors=errors)
    if assignment.status == assignment.Status.SKIPPED:
        page.problem = "You skipped this conversation."
    elif page.campaign_open and not page.on_roster:
        page.problem = "You are no longer a rater in this campaign: this rating can no longer be changed."
    elif page.campaign_open and not page.is_submitted and not assigning.lease_is_live(assignment):
        page.problem = ("Your hold on this conversation lapsed while you were away. It will be yours again "
                        "as soon as you make a change, unless it went to another rater meanwhile.")
    return render(request, "rating/rate.html", {
        "page": page, "flag_form": blank_form(SafetyFlagForm), "skip_form": blank_form(SkipForm),
        "heartbeat_seconds": services.HEARTBEAT_SECONDS,
    })


@capability_required(Capability.RATE)
@require_POST
def save(request, pk):
    """htmx: save whichever draft fields were sent; answers with out-of-band status/error fragments."""
    assignment = _own_ref(request, pk)
    changes = services.changes_from_post(request.POST)
    fields = [name for name in request.POST if name != "csrfmiddlewaretoken"]
    try:
        outcome = services.save_rating_draft(assignment, request.user, changes)
    except services.NotYourRating as exc:
        raise Http404("No such conversation for you.") from exc
    except services.RatedElsewhere:
        return render(request, "rating/_save_result.html", {
            "slots": [(name, "") for name in fields], "errors": {},
            "problem": "This conversation is not rated on this page."}, status=409)
    except services.RatingError as exc:
        return render(request, "rating/_save_result.html",
                      {"slots": [(name, "") for name in fields], "errors": {}, "problem": str(exc)}, status=409)
    slots = [(name, outcome.errors.get(name, "")) for name in dict.fromkeys([*fields, *outcome.errors])]
    return render(
        request, "rating/_save_result.html",
        {"slots": slots, "errors": outcome.errors, "saved_at": timezone.localtime(),
         "submitted": outcome.was_submitted},  # a save never changes whether it is submitted
        status=422 if outcome.errors else 200,
    )


@capability_required(Capability.RATE)
@require_POST
def submit(request, pk):
    assignment = _own_ref(request, pk)
    outcome = services.SaveOutcome()
    try:
        services.submit_rating(assignment, request.user, services.changes_from_post(request.POST), outcome=outcome)
    except services.NotYourRating as exc:
        raise Http404("No such conversation for you.") from exc
    except services.RatedElsewhere as exc:
        messages.error(request, str(exc))
        return redirect(exc.url)
    except services.SubmitRejected as exc:
        # Post/redirect/get: the draft is saved; the page shows each error beside its field.
        request.session[ERRORS_KEY.format(pk=pk)] = exc.errors
        messages.error(request, "The rating is not complete yet: see the marked fields.")
        return redirect("rating:rate", pk=pk)
    except services.RatingError as exc:
        messages.error(request, str(exc))
        return redirect("rating:rate", pk=pk)
    if outcome.was_submitted:
        messages.success(request, "Your revision is saved.")
        return redirect("rating:campaign", campaign_pk=assignment.campaign_id)
    messages.success(request, f"{selectors.conversation_label(pk)} submitted.")
    if request.POST.get("then") == "stop":
        return redirect("rating:campaign", campaign_pk=assignment.campaign_id)
    return _go_next(request, assignment.campaign)


@capability_required(Capability.RATE)
@require_POST
def heartbeat(request, pk):
    assignment = _own(request, pk)
    # The page-close beacon (final=1) reports the last active seconds; it must not keep the lease.
    outcome = services.record_heartbeat(assignment, request.POST.get("active_seconds"),
                                        renew=request.POST.get("final") != "1")
    return render(request, "rating/_lease.html", {"outcome": outcome})


@capability_required(Capability.RATE)
@require_POST
def skip(request, pk):
    assignment = _own(request, pk)
    form = SkipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you are skipping this conversation.")
        return redirect("rating:rate", pk=pk)
    try:
        assigning.skip_assignment(assignment, request.user, form.cleaned_data["reason"])
    except assigning.AssignmentError as exc:
        messages.error(request, str(exc))
        return redirect("rating:rate", pk=pk)
    messages.info(request, "Skipped. The conversation goes to another rater.")
    return _go_next(request, assignment.campaign)


@capability_required(Capability.RATE)
@require_POST
def flag(request, pk):
    assignment = _own(request, pk)
    form = SafetyFlagForm(request.POST)
    flagged, errors = None, {}
    if form.is_valid():
        number = form.cleaned_data.get("message")
        try:
            flagged = services.raise_safety_flag(
                assignment, request.user, form.cleaned_data["category"], form.cleaned_data["reason"],
                message_index=number - 1 if number else None,
            )
        except services.SubmitRejected as exc:
            errors = exc.errors
            for name, error in errors.items():
                form.add_error(name if name in form.fields else None, error)
    if request.htmx:
        context = {"flag_form": blank_form(SafetyFlagForm) if flagged else form, "flagged": flagged,
                   "page": {"assignment_id": assignment.pk}}
        return render(request, "rating/rate.html#flag-panel", context, status=200 if flagged else 422)
    if flagged:
        messages.success(request, "Thank you: your safety concern has been sent to the clinical lead.")
    else:
        messages.error(request, "The safety flag was not sent: " + "; ".join(
            str(e) for errs in form.errors.values() for e in errs))
    return redirect("rating:rate", pk=pk)
