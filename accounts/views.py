from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .access import capability_required
from .forms import ApiTokenCreateForm, UserCreateForm
from .models import User
from .roles import Capability


@capability_required(Capability.MANAGE_USERS)
def user_list(request):
    users = User.objects.order_by("role", "username")
    return render(request, "accounts/user_list.html", {"users": users})


@capability_required(Capability.MANAGE_USERS)
def user_create(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, password = services.create_user(request.user, **form.cleaned_data)
        return render(request, "accounts/user_created.html", {"new_user": user, "password": password})
    return render(request, "accounts/user_form.html", {"form": form})


@require_POST
@capability_required(Capability.MANAGE_USERS)
def user_set_active(request, pk):
    user = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        services.set_user_active(request.user, user, active)
        messages.success(request, f"{user.username} is now {'active' if active else 'deactivated'}.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("accounts:user_list")


@capability_required(Capability.USE_API)
def token_list(request):
    form = ApiTokenCreateForm(request.POST or None, user=request.user)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _, new_token = services.issue_token(request.user, form.cleaned_data["name"])
        form = ApiTokenCreateForm(user=request.user)
    tokens = request.user.api_tokens.all()
    response = render(
        request, "accounts/token_list.html", {"tokens": tokens, "form": form, "new_token": new_token}
    )
    # The raw token is on this page once: never let a cache keep it.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@capability_required(Capability.USE_API)
def token_revoke(request, pk):
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    services.revoke_token(request.user, token)
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("accounts:token_list")
