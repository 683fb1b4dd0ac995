"""Receivers only: each hands the event to accounts.throttling, where the decisions are."""
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from . import throttling


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def audit_lockout(sender, request, username, ip_address, **kwargs):
    throttling.record_lockout(request=request, username=username, ip_address=ip_address)


@receiver(user_logged_in, dispatch_uid="accounts.forgive_own_failures")
def forgive_own_failures(sender, request, user, **kwargs):
    throttling.forgive_failures_on_login(user)
