"""Small, explicit builders for test data (no factory library: the models are simple)."""
import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.roles import Role
from generation.models import CaseStudy, Conversation, GenerationJob, Message, ModelConfig, Persona
from rating.models import Assignment, Campaign, CampaignItem, Rating, SafetyFlag
from rating.rubric_files import default_rubric

_seq = itertools.count(1)
PASSWORD = "test-pass-123"


def make_user(role=Role.RATER, username=None, **extra) -> User:
    username = username or f"{role}-{next(_seq)}"
    extra.setdefault("email", f"{username}@example.org")
    user = User(username=username, role=role, **extra)
    user.set_password(PASSWORD)
    user.save()
    return user


def make_token(user, name="test") -> str:
    _, raw = ApiToken.issue(user, f"{name}-{next(_seq)}")
    return raw


def make_case(**extra) -> CaseStudy:
    n = next(_seq)
    defaults = dict(
        external_id=f"case-{n}",
        text="A 34-year-old reports low mood for two months, poor sleep and loss of interest.",
        ground_truth_diagnosis="Major depressive disorder",
        condition="depression",
        facts=["I have felt low for two months", "I sleep badly", "I lost interest in football"],
        vital_facts=[],
        intent="interpreting_information",
        goal="functioning",
        facts_status=CaseStudy.FactsStatus.REVIEWED,
    )
    defaults.update(extra)
    return CaseStudy.objects.create(**defaults)


def make_model(model="simulator/sensemaker-a", **extra) -> ModelConfig:
    name = extra.pop("name", None) or f"{model}-{next(_seq)}"
    return ModelConfig.objects.create(name=name, model=model, **extra)


def make_persona(trait="agreeableness", literacy="basic", intent="interpreting_information", goal="functioning"):
    persona, _ = Persona.objects.get_or_create(trait=trait, literacy=literacy, intent=intent, goal=goal)
    return persona


def make_job(sensemaker=None, **extra) -> GenerationJob:
    sensemaker = sensemaker or make_model()
    helper = make_model("simulator/helper")
    return GenerationJob.objects.create(
        name=f"job-{next(_seq)}", patient_model=make_model("simulator/patient"), sensemaker_model=sensemaker,
        helper_model=helper, **extra
    )


def make_conversation(job=None, case=None, persona=None, n_messages=4, **extra) -> Conversation:
    job = job or make_job()
    case = case or make_case()
    persona = persona or make_persona()
    conv = Conversation.objects.create(
        job=job, case=case, persona=persona, status=Conversation.Status.DONE,
        sensemaker_model=job.sensemaker_model.model, patient_model=job.patient_model.model,
        helper_model=job.helper_model.model, ground_truth_diagnosis=case.ground_truth_diagnosis,
        condition=case.condition, prompt_version="v1", seed=1, **extra,
    )
    stages = [1, 2, 3, 4, 5, 6]
    for i in range(n_messages):
        Message.objects.create(
            conversation=conv, index=i, role="patient" if i % 2 == 0 else "sensemaker",
            stage=stages[min(i // 2, 5)], text=f"Message {i} of the conversation.",
        )
    return conv


def make_campaign(raters=(), conversations=(), k=2, status=Campaign.Status.OPEN, rubric=None, **extra) -> Campaign:
    campaign = Campaign.objects.create(
        name=f"campaign-{next(_seq)}", rubric=rubric or default_rubric(), overlap_k=k, status=status, **extra
    )
    campaign.raters.set(raters)
    for conv in conversations:
        CampaignItem.objects.create(campaign=campaign, conversation=conv)
    return campaign


def make_assignment(campaign, rater, item=None, status=Assignment.Status.ACTIVE) -> Assignment:
    item = item or campaign.items.first()
    assignment = Assignment.objects.create(
        campaign=campaign, item=item, rater=rater, status=status,
        lease_expires_at=timezone.now() + timedelta(minutes=campaign.lease_minutes),
    )
    Rating.objects.create(assignment=assignment, rubric=campaign.rubric)
    return assignment


@dataclass
class World:
    """One of everything, owned by known users: the fixture behind the URL-permission test."""

    admin: User
    researcher: User
    rater: User
    other_rater: User
    tokens: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)

    def user(self, role_name):
        return getattr(self, role_name)


def build_world() -> World:
    world = World(
        admin=make_user(Role.ADMIN, "w-admin"),
        researcher=make_user(Role.RESEARCHER, "w-researcher"),
        rater=make_user(Role.RATER, "w-rater"),
        other_rater=make_user(Role.RATER, "w-other-rater"),
    )
    for name in ("admin", "researcher", "rater", "other_rater"):
        world.tokens[name] = make_token(world.user(name))
    conv = make_conversation()
    conv2 = make_conversation(job=conv.job)
    campaign = make_campaign(raters=[world.rater, world.other_rater], conversations=[conv, conv2])
    assignment = make_assignment(campaign, world.rater, campaign.items.get(conversation=conv))
    other_assignment = make_assignment(campaign, world.other_rater, campaign.items.get(conversation=conv2))
    flag = SafetyFlag.objects.create(
        conversation=conv, campaign=campaign, raised_by=world.rater, category="missed_risk", reason="Missed risk."
    )
    world.objects.update(
        conversation=conv, job=conv.job, case=conv.case, campaign=campaign, assignment=assignment,
        other_assignment=other_assignment, safety_flag=flag, model_config=conv.job.sensemaker_model,
        researcher_token=world.researcher.api_tokens.first(), rubric=campaign.rubric,
        message=conv.messages.filter(role="sensemaker").first(),
    )
    # A finished judge run over the campaign, so the judge results URLs have data.
    from tests.judging.judge_fixture import make_judge_run

    world.objects["results_judge_run"] = make_judge_run(
        campaign, {(c, 0): {"susceptibility": 3} for c in (conv, conv2)}
    )
    world.objects.update(_validation_objects(world, [conv, conv2]))
    # A judge run on the campaign, launched but not sent to any worker.
    from judging.services import JudgeRequest, launch_run

    world.objects["judge_run"] = launch_run(
        None, JudgeRequest(judge_model=make_model("simulator/judge"), campaign=campaign), enqueue_tasks=False)
    # Safety probes: the shipped stigma battery (its report URLs need one).
    from probes.services import import_battery

    stigma_file = Path(__file__).resolve().parent.parent / "probes" / "data" / "stigma-v1.jsonl"
    world.objects["probe_battery"] = import_battery(None, stigma_file.read_bytes(), stigma_file.name).battery
    # Results: a real snapshot of the campaign (no submitted ratings yet), so results URLs have data.
    from results.services import recompute_campaign

    world.objects["agreement_snapshot"] = recompute_campaign(campaign.pk, n_boot=50)
    return world


def _validation_objects(world: World, conversations) -> dict:
    """A judge-validation campaign over the same conversations, with an assignment of w.rater's."""
    from judging.validation import create_validation_campaign
    from rating.assignment import next_assignment
    from tests.judging.judge_fixture import make_judge_run
    from tests.judging.validation_support import JUDGE_MODEL

    run = make_judge_run(conversations=conversations, model=JUDGE_MODEL)
    validation = create_validation_campaign(
        world.admin, judge_run=run, name="Second look", raters=[world.rater, world.other_rater], overlap_k=2,
        lease_minutes=60, open_now=True)
    assignment = next_assignment(validation.campaign, world.rater)
    return {"validation_judge_run": run, "validation_campaign": validation.campaign,
            "validation_assignment": assignment}
