from django.core.management.base import BaseCommand, CommandError

from rating.rubric_files import RubricFileError, load_rubric_file


class Command(BaseCommand):
    help = ("Load a rubric JSON file as a new rubric version (no-op if the same content is loaded). "
            "Audited like an upload on the Rubrics page.")

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--default", action="store_true", help="Make it the default rubric.")

    def handle(self, path, default, **options):
        try:
            rubric, created = load_rubric_file(path, origin=f"manage.py load_rubric {path}", make_default=default)
        except (RubricFileError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        verb = "Loaded" if created else "Already loaded"
        self.stdout.write(f"{verb}: {rubric} ({rubric.axes.count()} axes){' [default]' if rubric.is_default else ''}")
