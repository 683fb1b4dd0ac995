"""Load a probe battery file (JSON lines, see probes/battery_files.py): `manage.py load_probes FILE`."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from probes.battery_files import BatteryFileError
from probes.services import import_battery


class Command(BaseCommand):
    help = "Validate and load a probe battery file; any error names its line and field, and nothing is loaded."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        try:
            result = import_battery(None, data, file.name)
        except BatteryFileError as exc:
            for error in exc.errors:
                self.stderr.write(f"{file.name}: {error}")
            raise CommandError(f"{len(exc.errors)} problem(s); nothing was loaded.") from None
        battery = result.battery
        verb = "Loaded" if result.created else "Already loaded (same content)"
        self.stdout.write(f"{verb}: {battery} with {len(battery.content.get('vignettes', []))} vignettes, "
                          f"{len(battery.content.get('variants', []))} variants, "
                          f"{len(battery.content.get('questions', []))} questions.")
