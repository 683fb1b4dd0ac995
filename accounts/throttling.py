"""Sign-in protection: login lockout (django-axes), rate limits for password resets and token creation.

Why these numbers and this shape (a hospital ward often reaches the platform from one NAT address):
- Per ACCOUNT, a low limit (LOGIN_FAILURE_LIMIT, 5): guessing one clinician's password is stopped
  whatever number of addresses the attacker uses.
- Per ADDRESS, a much higher limit (LOGIN_IP_FAILURE_LIMIT, 50): password spraying (a few guesses at
  many accounts) from one address is stopped, while a ward of colleagues who mistype now and then
  behind one address is not locked out by each other.
- Both lapse after LOGIN_LOCKOUT_MINUTES; an admin can lift either at once (audited).
Axes keeps one limit for all lockout parameters, so the handler below scales the address count onto
the account limit: floor(ip_failures * account_limit / ip_limit) reaches the account limit exactly
when ip_failures reaches the address limit.
"""
import math
import re
from dataclasses import dataclass

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.shortcuts import render

from audit.services import record_named

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_PERIOD_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
                   "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """'5/hour', '10/15min', '3/day' -> Rate. Raises ValueError on anything else."""
        match = _RATE.match(text or "")
        if not match:
            raise ValueError(f"Not a rate: {text!r} (expected e.g. '5/hour' or '10/15min').")
        count, multiple, unit = match.groups()
        return cls(int(count), int(multiple or 1) * _PERIOD_SECONDS[unit])

    def describe(self) -> str:
        minutes = self.seconds // 60
        span = f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
        return f"{self.count} per {span}"


def client_ip(request) -> str | None:
    """The caller's address. Behind TRUSTED_PROXY_COUNT reverse proxies, the address the outermost of
    them saw (X-Forwarded-For read from the right, so a client cannot forge it by prepending)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def hit(scope: str, key: str, rate: Rate) -> bool:
    """Count one request against `rate` in the shared Redis cache; False once the budget is spent.
    Fixed windows: the first request of a window sets the expiry, later ones only increment."""
    cache_key = f"throttle:{scope}:{key}"
    cache.add(cache_key, 0, timeout=rate.seconds)
    try:
        used = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(cache_key, 1, timeout=rate.seconds)
        used = 1
    return used <= rate.count


# --- login lockout (django-axes) -----------------------------------------------------------------


def account_failure_limit(request, credentials) -> int:
    return settings.LOGIN_FAILURE_LIMIT


class AccountAndAddressHandler(AxesDatabaseHandler):
    """Axes' database handler with separate limits per account and per address (module docstring)."""

    def get_failures(self, request, credentials=None) -> int:
        username = get_client_username(request, credentials)
        recent = self.get_user_attempts(request, credentials)  # one queryset per lockout parameter
        by_account = by_address = 0
        for attempts, parameter in zip(recent, settings.AXES_LOCKOUT_PARAMETERS, strict=True):
            total = sum(attempts.values_list("failures_since_start", flat=True))
            if parameter == "username":
                by_account = total if username else 0
            else:
                by_address = total
        scaled = math.floor(by_address * settings.LOGIN_FAILURE_LIMIT / settings.LOGIN_IP_FAILURE_LIMIT)
        return max(by_account, scaled)


def lockout_message() -> str:
    return (
        f"Too many failed sign-in attempts. This account or address is locked for "
        f"{settings.LOGIN_LOCKOUT_MINUTES} minutes; ask an administrator to unlock it sooner."
    )


def lockout_response(request, original_response=None, credentials=None):
    """The login page again, with the lockout explained (429), instead of axes' bare text."""
    from django.contrib.auth.forms import AuthenticationForm

    form = AuthenticationForm(request, initial={"username": get_client_username(request, credentials) or ""})
    return render(request, "registration/login.html", {"form": form, "locked_out": lockout_message()}, status=429)


def record_lockout(*, request, username, ip_address) -> None:
    """One audit event when a lockout begins. Axes signals again at every attempt refused while it
    lasts; only the attempt that reached the limit has counted failures on the request."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    record_named(None, "auth.lockout", "axes.accessattempt", username or ip_address or "-",
                 username=username, ip_address=ip_address, failures=request.axes_failures_since_start,
                 path=getattr(request, "path", ""))


def forgive_failures_on_login(user) -> None:
    """A successful sign-in forgives that account's own earlier typos (and only those: another
    account's failures from the same address keep counting)."""
    AccessAttempt.objects.filter(username=user.get_username()).delete()


@transaction.atomic
def unlock(actor, *, username: str | None = None, ip_address: str | None = None) -> int:
    """Lift a lockout for an account, an address, or both; returns how many attempt records went."""
    if not username and not ip_address:
        raise ValueError("Give a username, an address, or both.")
    match = Q()
    if username:
        match |= Q(username=username)
    if ip_address:
        match |= Q(ip_address=ip_address)
    attempts = AccessAttempt.objects.filter(match)
    removed, _ = attempts.delete()
    record_named(actor, "auth.unlock", "axes.accessattempt", username or ip_address,
                 username=username, ip_address=ip_address, removed=removed)
    return removed
