"""The offline simulator's judge: valid, strictly parseable JSON from real features of the conversation,
deterministic per seed, varying across samples, and labelled as simulated."""
import json
import statistics

import pytest

from generation.medagent.simulator import simulate_reply
from generation.medagent.simulator_judge import SIMULATED_NOTE
from judging import services
from judging.models import JudgeScore
from judging.parsing import parse_judge_reply
from judging.prompts import build_judge_prompt, judged_axes
from rating.rubric_files import default_rubric

from .helpers import DIALOGUE, campaign_of, launch, simulator_judge

BLAND = [
    ("patient", "I have felt low for two months and I sleep badly."),
    ("sensemaker", "I see."),
    ("patient", "I can't concentrate and I stopped seeing friends."),
    ("sensemaker", "Okay. Tell me more about your week."),
]


def prompt_for(dialogue, truth="Major depressive disorder"):
    rubric = default_rubric()
    return build_judge_prompt(rubric_name=rubric.name, instructions=rubric.instructions, axes=judged_axes(rubric),
                              messages=[{"role": r, "text": t} for r, t in dialogue], ground_truth=truth)


def judge(prompt, seed):
    return simulate_reply([{"role": "user", "content": prompt}], "simulator/judge", seed)


def scores(prompt, seed):
    rubric_axes = judged_axes(default_rubric())
    return {s.axis_key: s for s in parse_judge_reply(judge(prompt, seed), rubric_axes, prompt.count("\n[") + 1)}


@pytest.mark.django_db
def test_replies_parse_strictly_are_deterministic_per_seed_and_say_they_are_simulated():
    prompt = prompt_for(DIALOGUE)
    assert judge(prompt, 11) == judge(prompt, 11)
    parsed = scores(prompt, 11)
    assert set(parsed) == {a.key for a in judged_axes(default_rubric())}
    for score in parsed.values():
        assert score.rationale.startswith(SIMULATED_NOTE)
        assert score.cited_messages and all(n % 2 == 0 for n in score.cited_messages), "cites assistant messages"
    # Samples differ: across 12 seeds the replies are not all the same, on more than one axis.
    replies = [json.loads(judge(prompt, seed)) for seed in range(12)]
    varying = [key for key in replies[0] if len({r[key]["score"] for r in replies}) > 1]
    assert len(replies and {json.dumps(r, sort_keys=True) for r in replies}) > 6 and len(varying) >= 3


@pytest.mark.django_db
def test_scores_follow_the_conversation_text():
    seeds = range(30)

    def mean(dialogue, axis, truth="Major depressive disorder"):
        return statistics.mean(scores(prompt_for(dialogue, truth), s)[axis].value for s in seeds)

    for axis in ("susceptibility", "severity", "benefits", "flow"):
        assert mean(DIALOGUE, axis) >= mean(BLAND, axis) + 1, axis
    # Diagnostic accuracy: the stated diagnosis against the ground truth given in the prompt.
    assert mean(DIALOGUE, "diagnosis_hard") >= 0.75 and mean(DIALOGUE, "diagnosis_soft") >= 0.75
    assert mean(DIALOGUE, "diagnosis_hard", truth="Generalized anxiety disorder") <= 0.25
    assert mean(DIALOGUE, "diagnosis_hard", truth="Persistent depressive disorder") <= 0.25
    assert mean(DIALOGUE, "diagnosis_soft", truth="Persistent depressive disorder") >= 0.75


@pytest.mark.django_db(transaction=True)
def test_a_simulator_run_is_reproducible_per_seed_and_not_self_consistent_by_construction():
    campaign = campaign_of(3)
    judge_model = simulator_judge()

    def values(run):
        services.run_inline(run, threads=4)
        return list(JudgeScore.objects.filter(item__run=run).order_by(
            "item__conversation_id", "item__sample_index", "axis__order").values_list(
            "item__conversation_id", "item__sample_index", "axis__key", "value"))

    first = launch(judge_model, campaign, samples=3, seed=5, enqueue_tasks=False)
    again = launch(judge_model, campaign, samples=3, seed=5, enqueue_tasks=False)
    other = launch(judge_model, campaign, samples=3, seed=6, enqueue_tasks=False)
    a, b, c = values(first), values(again), values(other)
    assert a == b and a != c, "the same seed reproduces every score; another seed does not"
    assert first.items.count() == 9 and set(first.items.values_list("status", flat=True)) == {"done"}
    first.refresh_from_db()
    assert first.is_simulated and first.status == "done"
    assert first.items.filter(cost_usd=0).count() == 9, "in-process rules cost nothing"
    # Self-consistency: for some conversation and axis, the three samples disagree.
    by_cell = {}
    for conversation, _, axis, value in a:
        by_cell.setdefault((conversation, axis), set()).add(value)
    assert any(len(v) > 1 for v in by_cell.values()) and any(len(v) == 1 for v in by_cell.values())
