"""Demo data for `make run`: users of every role, the default rubric, personas, offline models.

Idempotent: running it again leaves existing data alone and resets only the demo passwords, so the
printed passwords are always true.
"""
import itertools
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from accounts.models import User
from accounts.roles import Role
from generation.case_import import import_cases
from generation.models import (
    CaseStudy,
    Conversation,
    GenerationJob,
    Goal,
    Intent,
    Literacy,
    ModelConfig,
    Persona,
    Trait,
)
from rating.rubric_files import DEFAULT_RUBRIC_FILE, RUBRIC_DIR, load_rubric_file


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str
    first_name: str
    last_name: str


DEMO_USERS = [
    DemoUser("admin", Role.ADMIN, "demo-admin-pass", "Ada", "Admin"),
    DemoUser("researcher", Role.RESEARCHER, "demo-researcher-pass", "Rosa", "Researcher"),
    DemoUser("rater1", Role.RATER, "demo-rater1-pass", "Dr Ruth", "Rater"),
    DemoUser("rater2", Role.RATER, "demo-rater2-pass", "Dr Ravi", "Rater"),
    DemoUser("rater3", Role.RATER, "demo-rater3-pass", "Dr Rin", "Rater"),
]

SIMULATOR_MODELS = [
    ("Simulator patient", "simulator/patient"),
    ("Simulator helper", "simulator/helper"),
    ("Simulator sensemaker A", "simulator/sensemaker-a"),
    ("Simulator sensemaker B", "simulator/sensemaker-b"),
    # A rule-based judge for the demo's campaigns (generation/medagent/simulator_judge.py): not a clinical judge.
    ("Simulator judge", "simulator/judge"),
]


def ensure_personas() -> int:
    """The full persona grid: one dominant trait x literacy x intent x goal."""
    wanted = list(itertools.product(Trait.values, Literacy.values, Intent.values, Goal.values))
    Persona.objects.bulk_create(
        [Persona(trait=t, literacy=lit, intent=i, goal=g) for t, lit, i, g in wanted], ignore_conflicts=True
    )
    return len(wanted)


def ensure_users() -> list[DemoUser]:
    for demo in DEMO_USERS:
        user, _ = User.objects.get_or_create(
            username=demo.username,
            defaults={"role": demo.role, "first_name": demo.first_name, "last_name": demo.last_name,
                      "email": f"{demo.username}@example.org"},
        )
        user.role = demo.role
        user.is_active = True
        user.set_password(demo.password)
        user.save()
    return DEMO_USERS


def ensure_models() -> None:
    for name, model in SIMULATOR_MODELS:
        ModelConfig.objects.get_or_create(name=name, defaults={"model": model, "temperature": 0.0})


DEMO_CASES = Path(__file__).resolve().parent.parent / "generation" / "demo" / "cases.jsonl"
# Small enough to generate in seconds with the simulator, large enough for agreement to mean something.
DEMO_TRAITS = ("agreeableness", "neuroticism")
DEMO_LITERACIES = ("basic",)
DEMO_JOB_MODELS = ("Simulator sensemaker A", "Simulator sensemaker B")


def ensure_demo_cases() -> int:
    report = import_cases(DEMO_CASES.read_bytes(), DEMO_CASES.name, is_demo=True)
    if report.errors:
        raise RuntimeError("demo cases do not import: " + "; ".join(report.errors))
    CaseStudy.objects.filter(is_demo=True, facts_status=CaseStudy.FactsStatus.EXTRACTED).update(
        facts_status=CaseStudy.FactsStatus.REVIEWED
    )
    return CaseStudy.objects.filter(is_demo=True).count()


def ensure_demo_jobs() -> list[GenerationJob]:
    """One simulator job per demo sensemaker, generated in-process so `make run` needs no wait."""
    from generation import services

    jobs = []
    cases = list(CaseStudy.objects.filter(is_demo=True))
    for model_name in DEMO_JOB_MODELS:
        name = f"Demo: {model_name}"
        job = GenerationJob.objects.filter(name=name).first()
        if job is None:
            sensemaker = ModelConfig.objects.get(name=model_name)
            job = services.launch_job(
                None,
                services.JobRequest(
                    name=name, cases=cases, sensemaker_model=sensemaker,
                    patient_model=ModelConfig.objects.get(name="Simulator patient"),
                    helper_model=ModelConfig.objects.get(name="Simulator helper"),
                    traits=DEMO_TRAITS, literacies=DEMO_LITERACIES, seed=2026,
                ),
                enqueue_tasks=False,
            )
        if job.conversations.filter(status=Conversation.Status.QUEUED).exists():
            services.run_inline(job, threads=4)
        jobs.append(job)
    return jobs


@transaction.atomic
def seed_foundation() -> dict:
    ensure_users()
    load_rubric_file(DEFAULT_RUBRIC_FILE, origin=f"demo seed {DEFAULT_RUBRIC_FILE.name}", make_default=True)
    for path in sorted(RUBRIC_DIR.glob("*.json")):
        if path != DEFAULT_RUBRIC_FILE:
            load_rubric_file(path, origin=f"demo seed {path.name}")
    personas = ensure_personas()
    ensure_models()
    cases = ensure_demo_cases()
    return {"users": len(DEMO_USERS), "personas": personas, "demo_cases": cases}


DEMO_CAMPAIGN = "Demo: MultiSenseEval practice round"


def ensure_demo_campaign(jobs):
    """An open campaign over the demo conversations, rated by the three demo raters with k = 2."""
    from rating import campaigns
    from rating.models import Campaign
    from rating.rubric_files import default_rubric

    campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    if campaign is None:
        campaign = campaigns.create_campaign(
            None, name=DEMO_CAMPAIGN,
            description="Practice conversations generated offline (no language model) for trying the platform.",
            rubric=default_rubric(), raters=User.objects.filter(username__in=["rater1", "rater2", "rater3"]),
            overlap_k=2, lease_minutes=60, selection=campaigns.Selection(jobs=[job.pk for job in jobs]),
        )
    if campaign.status == Campaign.Status.DRAFT:
        campaigns.open_campaign(None, campaign)
    return campaign


SYNTHETIC_CAMPAIGN = "Demo: synthetic ratings (not clinicians) of the practice conversations"
SYNTHETIC_RATERS = ("synthetic-rater-1", "synthetic-rater-2", "synthetic-rater-3")
# Per synthetic rater: (leniency in scale points, noise SD). The third is lenient and noisy, so the
# per-rater agreement, leniency and kappa pages have something to show.
SYNTHETIC_RATER_STYLE = ((0.0, 0.45), (-0.2, 0.5), (0.6, 0.8))


def _synthetic_value(axis, rng, latent: float, leniency: float, noise: float) -> int:
    values = axis.allowed_values()
    low, high = values[0], values[-1]
    if high - low == 1:  # binary labels: the latent quality makes "correct" more likely
        return high if rng.random() < min(0.95, max(0.05, latent / 4 + leniency / 8)) else low
    return int(min(high, max(low, round(latent + leniency + rng.gauss(0.0, noise)))))


def ensure_synthetic_rated_campaign(jobs):
    """A closed campaign whose ratings come from a seeded noise model, not from people, so that a
    newcomer sees the results, agreement and export pages filled in. Its name, description and
    rater accounts say so; the numbers describe the noise model, never the simulator models."""
    import random

    from rating import assignment as assigning
    from rating import campaigns
    from rating import services as rating_services
    from rating.models import Campaign
    from rating.rubric_files import default_rubric
    from results import services as results_services

    campaign = Campaign.objects.filter(name=SYNTHETIC_CAMPAIGN).first()
    if campaign is not None:
        return campaign
    raters = []
    for username in SYNTHETIC_RATERS:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"role": Role.RATER, "first_name": "Synthetic", "last_name": username.rsplit("-", 1)[-1]},
        )
        user.set_unusable_password()  # nobody logs in as a noise model
        user.save()
        raters.append(user)
    campaign = campaigns.create_campaign(
        None, name=SYNTHETIC_CAMPAIGN,
        description=("Scores drawn by a seeded noise model (a latent quality per conversation plus each synthetic "
                     "rater's leniency and noise) so the results, agreement and export pages can be tried. "
                     "They are not clinical judgements and say nothing about any model."),
        rubric=default_rubric(), raters=raters, overlap_k=len(raters), lease_minutes=60,
        selection=campaigns.Selection(jobs=[job.pk for job in jobs]),
    )
    campaign = campaigns.open_campaign(None, campaign)
    rng = random.Random(20260521)
    axes = [axis for axis in campaign.rubric.axes.order_by("order") if axis.is_rated]
    latent = {}
    for rater, (leniency, noise) in zip(raters, SYNTHETIC_RATER_STYLE, strict=True):
        while (assignment := assigning.next_assignment(campaign, rater)) is not None:
            conversation_latent = latent.setdefault(assignment.item.conversation_id, rng.uniform(1.6, 3.8))
            values = {axis.key: str(_synthetic_value(axis, rng, conversation_latent, leniency, noise)) for axis in axes}
            rating_services.submit_rating(assignment, rater, rating_services.DraftChanges(values=values))
    campaigns.close_campaign(None, campaign)
    results_services.recompute_campaign(campaign.pk)
    return campaign


DEMO_PROBE_SEED = 2026


DEMO_PROBE_FILES = ("stigma-v1.jsonl", "interjection-v1.jsonl")
DEMO_PROBE_CAMPAIGN = "Demo: verification round of single exchanges"


DEMO_PROBE_JUDGE = "Simulator judge"
DEMO_PROBE_STAGE = 3


def ensure_demo_probes() -> list:
    """The shipped stigma battery and interjection set, run by both simulator sensemakers through the real
    path (the runner's code, LiteLLM's custom provider) in this process; the interjection runs' replies are
    also answered by the simulator judge. One more interjection run places the probes inside MedAgent
    conversations at stage 3 (sensemaker A, a demo case). Reports at /results/probes/<id>/."""
    from probes import services as probes
    from probes.models import Placement, ProbeRun

    judge = ModelConfig.objects.get(name=DEMO_PROBE_JUDGE)
    runs = []
    for file_name in DEMO_PROBE_FILES:
        path = Path(probes.__file__).resolve().parent / "data" / file_name
        battery = probes.import_battery(None, path.read_bytes(), path.name, is_demo=True).battery
        interjection = battery.protocol == "interjection"
        for model_name in DEMO_JOB_MODELS:
            model = ModelConfig.objects.get(name=model_name)
            run = ProbeRun.objects.filter(battery=battery, model=model, seed=DEMO_PROBE_SEED,
                                          placement=Placement.STANDALONE).first()
            if run is None:
                run = probes.launch_run(None, probes.RunRequest(
                    battery=battery, model=model, name=f"Demo: {battery.name} · {model_name}", seed=DEMO_PROBE_SEED,
                    judge_model=judge if interjection else None), enqueue_tasks=False)
            runs.append(run)
        if interjection:
            model = ModelConfig.objects.get(name=DEMO_JOB_MODELS[0])
            run = ProbeRun.objects.filter(battery=battery, model=model, seed=DEMO_PROBE_SEED,
                                          placement=Placement.MEDAGENT).first()
            if run is None:
                run = probes.launch_run(None, probes.RunRequest(
                    battery=battery, model=model, seed=DEMO_PROBE_SEED, judge_model=judge,
                    name=f"Demo: {battery.name} inside conversations (stage {DEMO_PROBE_STAGE}) · {model.name}",
                    placement=Placement.MEDAGENT, stage=DEMO_PROBE_STAGE,
                    case=CaseStudy.objects.filter(is_demo=True).order_by("external_id").first(),
                    patient_model=ModelConfig.objects.get(name="Simulator patient"),
                    helper_model=ModelConfig.objects.get(name="Simulator helper")), enqueue_tasks=False)
            runs.append(run)
    for run in runs:
        if run.battery.protocol == "interjection" and not run.judge_answers.exists():
            probes.add_judge(run, judge, None, enqueue_tasks=False)  # a database seeded before judges existed
        if run.items.filter(status="queued").exists() or run.judge_answers.filter(status="queued").exists():
            probes.run_inline(run, threads=4)
    return runs


def ensure_demo_probe_campaign(runs):
    """An open campaign in which the demo raters answer the interjection probes' verification questions."""
    from probes import services as probes
    from rating import campaigns
    from rating.models import Campaign

    campaign = Campaign.objects.filter(name=DEMO_PROBE_CAMPAIGN).first()
    if campaign is None:
        raters = User.objects.filter(username__in=[u.username for u in DEMO_USERS if u.role == Role.RATER])
        interjection_runs = [run for run in runs if run.battery.protocol == "interjection"
                             and run.placement == "standalone"]
        campaign = probes.create_verification_campaign(
            None, interjection_runs, name=DEMO_PROBE_CAMPAIGN, raters=raters, overlap_k=2,
            description="Single exchanges: answer the verification question shown above the rubric, then say "
                        "whether the reply is safe.")
        campaign = campaigns.open_campaign(None, campaign)
    return campaign


def seed_all() -> dict:
    summary = seed_foundation()
    probe_runs = ensure_demo_probes()
    summary["demo_probe_runs"] = len(probe_runs)
    summary["demo_probe_campaign"] = ensure_demo_probe_campaign(probe_runs).name
    jobs = ensure_demo_jobs()
    summary["demo_campaign"] = ensure_demo_campaign(jobs).name
    summary["synthetic_demo_campaign"] = ensure_synthetic_rated_campaign(jobs).name
    summary["demo_conversations"] = sum(
        job.conversations.filter(status=Conversation.Status.DONE).count() for job in jobs
    )
    return summary
