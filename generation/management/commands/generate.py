import sys

from django.core.management.base import BaseCommand, CommandError

from generation import services
from generation.management.follow import follow
from generation.models import CaseStudy, GenerationJob, Literacy, ModelConfig, Trait
from generation.selectors import job_progress


class Command(BaseCommand):
    help = (
        "Launch a MedAgent generation job: cases x personas x the model under test. With --wait, print "
        "progress until it ends and exit non-zero if any conversation failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="", help="Job name (default: derived from the model).")
        parser.add_argument("--cases", default="", help="Comma-separated case ids; default: every ready case.")
        parser.add_argument("--sensemaker", required=True, help="Model configuration name of the model under test.")
        parser.add_argument("--patient", default="Simulator patient", help="Model configuration name.")
        parser.add_argument("--helper", default="Simulator helper", help="Model configuration name.")
        parser.add_argument("--traits", default=",".join(services.DEFAULT_TRAITS))
        parser.add_argument("--literacies", default=",".join(services.DEFAULT_LITERACIES))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-concurrent-calls", type=int, default=8)
        parser.add_argument("--wait", action="store_true", help="Follow progress until the job ends.")
        parser.add_argument("--inline", action="store_true", help="Run in this process instead of on workers.")
        parser.add_argument("--threads", type=int, default=8, help="With --inline: conversations in parallel.")
        parser.add_argument("--poll", type=float, default=2.0)

    def _model(self, name):
        try:
            return ModelConfig.objects.get(name=name)
        except ModelConfig.DoesNotExist:
            names = ", ".join(ModelConfig.objects.values_list("name", flat=True))
            raise CommandError(f"No model configuration named {name!r}. Known: {names}") from None

    def handle(self, *args, **opts):
        traits = [t for t in opts["traits"].split(",") if t]
        literacies = [lit for lit in opts["literacies"].split(",") if lit]
        bad = [t for t in traits if t not in Trait.values] + [lit for lit in literacies if lit not in Literacy.values]
        if bad:
            raise CommandError(f"Unknown trait or literacy: {', '.join(bad)}")
        if opts["cases"]:
            ids = [c.strip() for c in opts["cases"].split(",") if c.strip()]
            cases = list(CaseStudy.objects.filter(external_id__in=ids))
            missing = sorted(set(ids) - {c.external_id for c in cases})
            if missing:
                raise CommandError(f"Unknown case ids: {', '.join(missing)}")
        else:
            cases = [c for c in CaseStudy.objects.all() if c.ready_for_generation]
        sensemaker = self._model(opts["sensemaker"])
        request = services.JobRequest(
            name=opts["name"] or f"{sensemaker.name} x {len(cases)} cases",
            cases=cases, patient_model=self._model(opts["patient"]), sensemaker_model=sensemaker,
            helper_model=self._model(opts["helper"]), traits=tuple(traits), literacies=tuple(literacies),
            seed=opts["seed"], max_concurrent_calls=opts["max_concurrent_calls"],
        )
        try:
            job = services.launch_job(None, request, enqueue_tasks=not opts["inline"])
        except services.GenerationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Job {job.pk} '{job.name}': {job.conversations.count()} conversations queued.")
        if opts["inline"]:
            services.run_inline(job, threads=opts["threads"])
        elif not opts["wait"]:
            return
        failed = self._follow(job, opts["poll"])
        if failed:
            sys.exit(1)

    def _follow(self, job, poll) -> int:
        p = follow(self.stdout.write, lambda: job_progress(GenerationJob.objects.get(pk=job.pk)), poll)
        # The worker derives the job's status just after its last conversation ends; derive it here
        # too, or the summary can say "Running" for a finished job.
        job = services.refresh_job_status(job.pk)
        for conv in job.conversations.filter(status="failed"):
            self.stderr.write(f"conversation {conv.pk} failed: {conv.failure_reason}")
        self.stdout.write(f"Job {job.pk} finished: {job.get_status_display()}.")
        return p["counts"]["failed"]
