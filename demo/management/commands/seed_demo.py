from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo import loader as demo


class Command(BaseCommand):
    help = "Load demo users, rubric, personas, offline models, demo cases and conversations (safe to re-run)."

    def add_arguments(self, parser):
        parser.add_argument("--no-generation", action="store_true", help="Skip generating demo conversations.")
        parser.add_argument(
            "--insecure-demo-users", action="store_true",
            help="Allow it on a deployment with its own SECRET_KEY (the demo passwords are published).",
        )

    def handle(self, **options):
        # The demo users' passwords are in the README; on a real deployment they would be open doors.
        deployed = settings.SECRET_KEY != settings.INSECURE_DEV_SECRET_KEY and not settings.DEBUG
        if deployed and not options["insecure_demo_users"]:
            raise CommandError(
                "This looks like a deployment (its own SECRET_KEY, DEBUG off): the demo users have published "
                "passwords. For a local trial only, re-run with --insecure-demo-users."
            )
        summary = demo.seed_foundation() if options["no_generation"] else demo.seed_all()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {summary}"))
        self.stdout.write("Demo logins (username / password):")
        for user in demo.DEMO_USERS:
            self.stdout.write(f"  {user.username:<12} {user.password:<22} {user.role}")
