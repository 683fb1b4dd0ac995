"""A small fixed campaign whose results are computed by hand in tests/results/test_results_tables.py.

Two sensemaker models, five rated conversations and one unrated one, three raters. Ratings go through
the real rating services (draft -> submit). Susceptibility and hard diagnostic accuracy vary; every
other rated axis gets the same score from everyone.

    conv  model    trait          literacy  condition   sm msgs  SMOG  messages  rater1   rater2   rater3
    c1    vendor/a agreeableness  basic     depression     4     10.0     4      S2 H1    S3 H1    (draft S1)
    c2    vendor/a neuroticism    advanced  anxiety        8     12.0     6      S4 H0    S4 H1    S3 H0
    c3    vendor/a agreeableness  basic     depression    12     11.0     2      -        S4 H0    -
    c4    vendor/b agreeableness  basic     depression     4     14.0     4      S3 H1    -        S3 H1   (gold: S3)
    c5    vendor/b neuroticism    basic     anxiety       20     13.0     8      -        S2 H0    S1 H0
    c6    vendor/b agreeableness  basic     depression     6     15.0     2      (not rated)

S = perceived susceptibility (1-4), H = diagnostic accuracy hard (0/1).
make_conversation gives message i the stage [1, 1, 2, 2, 3, 3, 4, 4, ...][i].
"""

from dataclasses import dataclass

from accounts.roles import Role
from rating import services as rating_services
from rating.models import CampaignItem
from tests.factories import (
    make_assignment,
    make_campaign,
    make_case,
    make_conversation,
    make_job,
    make_model,
    make_persona,
    make_user,
)

MODEL_A, MODEL_B = "vendor/a", "vendor/b"
CONSTANT = {"severity": 3, "benefits": 3, "flow": 3, "readability_judgement": 3, "diagnosis_soft": 1}

CONVERSATIONS = [
    # name, model, trait, literacy, condition, sensemaker messages, smog, messages
    ("c1", MODEL_A, "agreeableness", "basic", "depression", 4, 10.0, 4),
    ("c2", MODEL_A, "neuroticism", "advanced", "anxiety", 8, 12.0, 6),
    ("c3", MODEL_A, "agreeableness", "basic", "depression", 12, 11.0, 2),
    ("c4", MODEL_B, "agreeableness", "basic", "depression", 4, 14.0, 4),
    ("c5", MODEL_B, "neuroticism", "basic", "anxiety", 20, 13.0, 8),
    ("c6", MODEL_B, "agreeableness", "basic", "depression", 6, 15.0, 2),
]
# (conversation, rater index, susceptibility, diagnosis_hard)
RATINGS = [
    ("c1", 0, 2, 1),
    ("c1", 1, 3, 1),
    ("c2", 0, 4, 0),
    ("c2", 1, 4, 1),
    ("c2", 2, 3, 0),
    ("c3", 1, 4, 0),
    ("c4", 0, 3, 1),
    ("c4", 2, 3, 1),
    ("c5", 1, 2, 0),
    ("c5", 2, 1, 0),
]
DRAFTS = [("c1", 2, 1, 0)]


@dataclass
class FixedCampaign:
    campaign: object
    raters: list
    conv: dict
    assignments: dict


def submit(campaign, conversation, rater, susceptibility, hard, *, draft=False):
    item = campaign.items.get(conversation=conversation)
    assignment = make_assignment(campaign, rater, item)
    values = {"susceptibility": str(susceptibility), "diagnosis_hard": str(hard)}
    values.update({k: str(v) for k, v in CONSTANT.items()})
    changes = rating_services.DraftChanges(values=values)
    if draft:
        rating_services.save_rating_draft(assignment, rater, changes)
    else:
        rating_services.submit_rating(assignment, rater, changes)
    return assignment


def build_fixed_campaign() -> FixedCampaign:
    jobs = {MODEL_A: make_job(sensemaker=make_model(MODEL_A)), MODEL_B: make_job(sensemaker=make_model(MODEL_B))}
    conv = {}
    for name, model, trait, literacy, condition, sm, smog, n_messages in CONVERSATIONS:
        conv[name] = make_conversation(
            job=jobs[model],
            case=make_case(condition=condition),
            persona=make_persona(trait, literacy),
            n_messages=n_messages,
            smog_grade=smog,
            sensemaker_message_count=sm,
        )
    raters = [make_user(Role.RATER, f"fixed-rater-{i + 1}") for i in range(3)]
    campaign = make_campaign(raters=raters, conversations=list(conv.values()), k=3)
    CampaignItem.objects.filter(campaign=campaign, conversation=conv["c4"]).update(
        is_gold=True, gold_scores={"susceptibility": 3}
    )
    assignments = {}
    for name, r, s, h in RATINGS:
        assignments[(name, r)] = submit(campaign, conv[name], raters[r], s, h)
    for name, r, s, h in DRAFTS:
        assignments[(name, r)] = submit(campaign, conv[name], raters[r], s, h, draft=True)
    return FixedCampaign(campaign, raters, conv, assignments)


def build_drifting_campaign(seed=7):
    """Three raters score susceptibility on every conversation, in conversation order, one a minute.
    Raters 2 and 3 always give the true score; rater 1 does too, except on the last DRIFT_WINDOW
    conversations, where they score far off (4 for a true 1-2, 1 for a true 3-4). Written straight to the
    tables (bulk) because the drift rule needs hundreds of ratings per rater; the rating services are
    exercised by the fixed campaign above."""
    from datetime import timedelta

    import numpy as np
    from django.utils import timezone

    from rating.models import Assignment, AxisScore, Rating
    from results.stats.raters import DRIFT_MIN_BASELINE, DRIFT_WINDOW

    n_conversations = DRIFT_MIN_BASELINE + DRIFT_WINDOW + 20
    drift_from = n_conversations - DRIFT_WINDOW

    rng = np.random.default_rng(seed)
    job = make_job(sensemaker=make_model(MODEL_A))
    convs = [make_conversation(job=job, n_messages=0, sensemaker_message_count=5) for _ in range(n_conversations)]
    raters = [make_user(Role.RATER, f"drift-rater-{i + 1}") for i in range(3)]
    campaign = make_campaign(raters=raters, conversations=convs, k=3)
    items = {i.conversation_id: i for i in campaign.items.all()}
    axis = campaign.rubric.axes.get(key="susceptibility")
    truth = rng.integers(1, 5, n_conversations)
    start = timezone.now() - timedelta(days=1)
    assignments, ratings, values = [], [], []
    for r, rater in enumerate(raters):
        for i, conv in enumerate(convs):
            when = start + timedelta(minutes=i, seconds=r)
            assignments.append(Assignment(campaign=campaign, item=items[conv.pk], rater=rater,
                                          status=Assignment.Status.SUBMITTED, submitted_at=when))
            wrong = r == 0 and i >= drift_from
            values.append(float((4 if truth[i] <= 2 else 1) if wrong else truth[i]))
    Assignment.objects.bulk_create(assignments)
    for a in assignments:
        ratings.append(Rating(assignment=a, rubric=campaign.rubric, status=Rating.Status.SUBMITTED,
                              submitted_at=a.submitted_at))
    Rating.objects.bulk_create(ratings)
    AxisScore.objects.bulk_create([AxisScore(rating=rt, axis=axis, value=v) for rt, v in zip(ratings, values,
                                                                                             strict=True)])
    return campaign, raters
