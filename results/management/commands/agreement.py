"""`python manage.py agreement FILE.csv --level ordinal [--categories 1,2,3,4]`: agreement from any CSV.

Reads `item,rater,value` rows (optional `time` column for the drift check) and prints one JSON object
with every agreement statistic the platform computes, so researchers can check it against their tools.
With `--judge-rater NAME` (repeatable: one per judge sample), the named rater columns are an LLM judge
and the object holds the judge-vs-clinician statistics (results.stats.judge) and the clinicians' own
agreement without the judge. Needs no database.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from results.stats import DEFAULT_N_BOOT, DEFAULT_SEED, agreement_from_csv, to_jsonable
from results.stats._matrix import LEVELS
from results.stats.judge import judge_agreement_from_csv


def parse_categories(raw: str | None, level: str):
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if not parts or any(p == "" for p in parts):
        raise CommandError(f"--categories {raw!r}: give a comma-separated list without empty entries, e.g. 1,2,3,4")
    try:
        return [float(p) for p in parts]
    except ValueError:
        if level != "nominal":
            raise CommandError(f"--categories {raw!r}: level {level} needs numeric categories") from None
        return parts  # nominal text labels


class Command(BaseCommand):
    help = "Compute inter-rater agreement from a CSV of item,rater,value and print one JSON object."
    # Pure computation on a file: no system checks or migrations, so it runs without a database.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("csv_file", help="CSV with header item,rater,value (optional column time)")
        parser.add_argument("--level", required=True, choices=LEVELS, help="level of measurement of the ratings")
        parser.add_argument("--categories", help="possible values, comma-separated (e.g. 1,2,3,4)")
        parser.add_argument("--bootstrap", type=int, default=DEFAULT_N_BOOT,
                            help=f"bootstrap resamples for alpha's CI (default {DEFAULT_N_BOOT}, as on the platform)")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                            help=f"seed of the bootstrap (default {DEFAULT_SEED}, the platform's)")
        parser.add_argument("--judge-rater", action="append", default=[], metavar="NAME",
                            help="the rater column that is an LLM judge (repeat for each of its samples, first "
                            "sample first); prints judge-vs-clinician statistics instead")

    def handle(self, *args, **options):
        if options["bootstrap"] < 0:
            raise CommandError("--bootstrap must be 0 or more")
        level = options["level"]
        categories = parse_categories(options["categories"], level)
        try:
            if options["judge_rater"]:
                result = to_jsonable(judge_agreement_from_csv(
                    options["csv_file"], options["judge_rater"], level, categories, n_boot=options["bootstrap"],
                    seed=options["seed"],
                ))
            else:
                result = agreement_from_csv(
                    options["csv_file"], level, categories, n_boot=options["bootstrap"], seed=options["seed"]
                )
        except (OSError, ValueError) as exc:
            raise CommandError(f"{options['csv_file']}: {exc}") from exc
        self.stdout.write(json.dumps(result, allow_nan=False))
