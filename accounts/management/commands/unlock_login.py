"""Lift a sign-in lockout: `manage.py unlock_login --username alice` or `--ip 10.0.0.7` (audited)."""
from django.core.management.base import BaseCommand, CommandError

from accounts import throttling


class Command(BaseCommand):
    help = "Unlock an account and/or an address locked after failed sign-ins; the audit trail records it."

    def add_arguments(self, parser):
        parser.add_argument("--username", help="the locked account's username")
        parser.add_argument("--ip", dest="ip_address", help="the locked client address")

    def handle(self, *args, username=None, ip_address=None, **options):
        try:
            removed = throttling.unlock(None, username=username, ip_address=ip_address)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Unlocked ({removed} failure record(s) removed).")
