import sys

from django.core.management.base import BaseCommand, CommandError

from generation.management.follow import follow
from generation.models import ModelConfig
from judging import services
from judging.models import JudgeRun
from judging.selectors import run_progress
from rating.models import Campaign, Rubric


class Command(BaseCommand):
    help = (
        "Launch a judge run over a campaign's conversations: one judge call per conversation x sample. With "
        "--wait (or --inline), print progress until it ends and exit non-zero if any judge call failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, required=True, help="Campaign id.")
        parser.add_argument("--judge", required=True, help='Model configuration name, e.g. "Simulator judge".')
        parser.add_argument("--rubric", default="", help="Rubric as slug:version (default: the campaign's).")
        parser.add_argument("--samples", type=int, default=1, help="Judge replies per conversation (n >= 1).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-concurrent-calls", type=int, default=8)
        parser.add_argument("--name", default="")
        parser.add_argument("--wait", action="store_true", help="Follow progress until the run ends.")
        parser.add_argument("--inline", action="store_true", help="Run in this process instead of on workers.")
        parser.add_argument("--threads", type=int, default=8, help="With --inline: judge calls in parallel.")
        parser.add_argument("--poll", type=float, default=2.0)

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(pk=opts["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {opts['campaign']}.")
        judge = ModelConfig.objects.filter(name=opts["judge"]).first()
        if judge is None:
            names = ", ".join(ModelConfig.objects.values_list("name", flat=True))
            raise CommandError(f"No model configuration named {opts['judge']!r}. Known: {names}")
        rubric = None
        if opts["rubric"]:
            slug, _, version = opts["rubric"].partition(":")
            rubric = Rubric.objects.filter(slug=slug, version=int(version) if version.isdigit() else -1).first()
            if rubric is None:
                raise CommandError(f"No rubric {opts['rubric']!r} (give slug:version, e.g. multisenseeval:1).")
        request = services.JudgeRequest(
            judge_model=judge, campaign=campaign, rubric=rubric, name=opts["name"], samples=opts["samples"],
            seed=opts["seed"], max_concurrent_calls=opts["max_concurrent_calls"],
        )
        try:
            run = services.launch_run(None, request, enqueue_tasks=not opts["inline"])
        except services.JudgeRunError as exc:
            raise CommandError(str(exc)) from exc
        simulated = " [simulated judge: rule-based, not a clinical judge]" if run.is_simulated else ""
        self.stdout.write(f"Judge run {run.pk} '{run.name}': {run.items.count()} judge calls queued.{simulated}")
        if opts["inline"]:
            services.run_inline(run, threads=opts["threads"])
        elif not opts["wait"]:
            return
        progress = follow(self.stdout.write, lambda: run_progress(JudgeRun.objects.get(pk=run.pk)), opts["poll"])
        run = services.refresh_status(run.pk)
        for item in run.items.filter(status="failed"):
            self.stderr.write(f"conversation {item.conversation_id} sample {item.sample_index} failed: "
                              f"{item.failure_reason}")
        self.stdout.write(f"Judge run {run.pk} finished: {run.get_status_display()}.")
        if progress["counts"]["failed"]:
            sys.exit(1)
