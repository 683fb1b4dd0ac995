from django.core.management.base import BaseCommand

from mhsd_platform import demo


class Command(BaseCommand):
    help = "Load demo users, rubric, personas, offline models, demo cases and conversations (safe to re-run)."

    def add_arguments(self, parser):
        parser.add_argument("--no-generation", action="store_true", help="Skip generating demo conversations.")

    def handle(self, **options):
        summary = demo.seed_foundation() if options["no_generation"] else demo.seed_all()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {summary}"))
        self.stdout.write("Demo logins (username / password):")
        for user in demo.DEMO_USERS:
            self.stdout.write(f"  {user.username:<12} {user.password:<22} {user.role}")
