from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from core.admin_base import ReadOnlyModelAdmin

from . import throttling
from .models import ApiToken, User
from .services import revoke_token


@admin.register(User)
class PlatformUserAdmin(UserAdmin):
    list_display = ("username", "email", "role", "pseudonym", "is_active", "last_login")
    list_filter = ("role", "is_active")
    readonly_fields = ("pseudonym", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("first_name", "last_name", "email", "role", "pseudonym")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "role", "password1", "password2")}),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by their owner on the account page; here an admin can only revoke them, through
    the audited service. Nothing is editable: clearing `revoked_at` would bring a revoked token back."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    exclude = ("key_hash",)
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["view"])
    def revoke_selected(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_token(request.user, token)


@admin.register(AccessAttempt)
class LoginFailureAdmin(ReadOnlyModelAdmin):
    """Failed sign-ins recorded by django-axes. Unlocking goes through the audited service; the rows
    cannot be edited or deleted here (a silent delete would be an unaudited unlock)."""

    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "path_info")
    search_fields = ("username", "ip_address")
    readonly_fields = ("username", "ip_address", "user_agent", "attempt_time", "failures_since_start", "path_info")
    exclude = ("get_data", "post_data", "http_accept")
    actions = ["unlock_accounts", "unlock_addresses"]

    @admin.action(description="Unlock the selected accounts (usernames)", permissions=["view"])
    def unlock_accounts(self, request, queryset):
        for username in sorted(set(queryset.values_list("username", flat=True)) - {None, ""}):
            throttling.unlock(request.user, username=username)
        self.message_user(request, "Unlocked; the audit trail records it.")

    @admin.action(description="Unlock the selected addresses", permissions=["view"])
    def unlock_addresses(self, request, queryset):
        for ip_address in sorted(set(queryset.values_list("ip_address", flat=True)) - {None, ""}):
            throttling.unlock(request.user, ip_address=ip_address)
        self.message_user(request, "Unlocked; the audit trail records it.")
