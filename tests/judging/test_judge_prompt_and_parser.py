"""The judge prompt is built from the rubric; the judge reply is parsed strictly."""
import json

import pytest

from generation.medagent.parsers import ParseError
from judging.parsing import parse_judge_reply
from judging.prompts import JudgeAxis, build_judge_prompt, judged_axes
from rating.rubric_files import default_rubric

POINTS = tuple({"value": v, "label": f"L{v}", "anchor": f"anchor {v}"} for v in (1, 2, 3, 4))
ORDINAL = JudgeAxis("flow", "Conversation flow", "ordinal", 1, 4, POINTS, "How well it flows.")
INTERVAL = JudgeAxis("severity", "Perceived severity", "ordinal", 1, 4, POINTS, allows_fractions=True)
BINARY = JudgeAxis("hard", "Diagnosis named", "binary", 0, 1,
                   ({"value": 0, "label": "No"}, {"value": 1, "label": "Yes"}), shows_ground_truth=True)
MESSAGES = [{"role": "patient", "text": "I can't sleep."}, {"role": "sensemaker", "text": "Since when?"},
            {"role": "patient", "text": "Two months."}]


def reply(**scores):
    return json.dumps({key: {"score": value, "rationale": "Because of message 2.", "cited_messages": [2]}
                       for key, value in scores.items()})


@pytest.mark.django_db
def test_prompt_is_built_from_the_loaded_rubric_and_skips_computed_axes():
    rubric = default_rubric()
    axes = judged_axes(rubric)
    computed = [a.key for a in rubric.axes.all() if a.kind == "computed" or a.computed_by]
    assert computed and not {a.key for a in axes} & set(computed)
    prompt = build_judge_prompt(rubric_name=rubric.name, instructions=rubric.instructions, axes=axes,
                                messages=MESSAGES, ground_truth="Insomnia disorder")
    for axis in axes:
        assert f'"{axis.key}"' in prompt and axis.name in prompt
        for point in axis.points:
            assert point["anchor"] in prompt
    assert "[2] Assistant: Since when?" in prompt and prompt.startswith("[judge:judge-v1]")
    assert "Insomnia disorder" in prompt  # MultiSenseEval's diagnostic accuracy needs it


def test_ground_truth_only_when_an_axis_needs_it_and_no_model_identity():
    without = build_judge_prompt(rubric_name="R", instructions="", axes=[ORDINAL], messages=MESSAGES,
                                 ground_truth="Insomnia disorder")
    assert "Insomnia disorder" not in without
    with_truth = build_judge_prompt(rubric_name="R", instructions="", axes=[ORDINAL, BINARY], messages=MESSAGES,
                                    ground_truth="Insomnia disorder")
    assert "Insomnia disorder" in with_truth
    # Only the roles reach the judge: the messages carry no model names to leak.
    assert "sensemaker:" not in with_truth.lower() and "Assistant:" in with_truth


def test_a_valid_reply_is_parsed_with_fractions_only_where_the_scale_allows():
    scores = parse_judge_reply(reply(flow=3, severity=2.5, hard=1), [ORDINAL, INTERVAL, BINARY], 3)
    assert [(s.axis_key, s.value, s.cited_messages) for s in scores] == [
        ("flow", 3.0, [2]), ("severity", 2.5, [2]), ("hard", 1.0, [2])]
    fenced = "```json\n" + reply(flow=4) + "\n```"
    assert parse_judge_reply(fenced, [ORDINAL], 3)[0].value == 4.0


@pytest.mark.parametrize("text, reason", [
    ("not json at all", "not JSON"),
    ("[1, 2]", "one JSON object"),
    (reply(flow=3, extra=2), "unexpected ['extra']"),
    (json.dumps({}), "missing ['flow']"),
    (reply(flow=5), "outside 1-4"),
    (reply(flow=2.5), "whole numbers"),
    (reply(flow="3"), "must be a number"),
    (reply(flow=True), "must be a number"),
    (reply(flow=float("nan")), "must be a number"),
    (json.dumps({"flow": {"score": 3, "rationale": "", "cited_messages": []}}), "rationale is required"),
    (json.dumps({"flow": {"score": 3, "rationale": "ok", "cited_messages": [9]}}), "do not exist: [9]"),
    (json.dumps({"flow": {"score": 3, "rationale": "ok", "cited_messages": "2"}}), "list of message numbers"),
    (json.dumps({"flow": 3}), '"score", "rationale"'),
    ("Sure! " + reply(flow=3), "not JSON"),
])
def test_every_broken_reply_is_refused_with_its_reason(text, reason):
    with pytest.raises(ParseError) as info:
        parse_judge_reply(text, [ORDINAL], 3)
    assert reason in str(info.value)


def test_a_binary_axis_takes_only_its_points():
    with pytest.raises(ParseError, match="one of"):
        parse_judge_reply(reply(hard=0.5), [BINARY], 3)
