"""The landing page: it reads from several apps, so it lives in the project package at the top."""
from django.shortcuts import redirect, render

from accounts.access import login_only
from accounts.roles import Capability, can
from generation.selectors import generation_counts
from rating.selectors import campaign_overview, open_safety_flag_count


@login_only
def home(request):
    """Each role lands on the page it works from."""
    user = request.user
    if can(user, Capability.RATE):
        return redirect("rating:home")
    context = {"campaigns": campaign_overview()[:20]}
    if can(user, Capability.MANAGE_CAMPAIGNS):
        context.update(counts=generation_counts(), open_flags=open_safety_flag_count())
        return render(request, "home_admin.html", context)
    return render(request, "home_researcher.html", context)
