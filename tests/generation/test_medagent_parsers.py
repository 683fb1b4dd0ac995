"""Strict reply parsers: usable replies pass, anything ambiguous is an error (and gets retried)."""
import pytest

from generation.medagent import parsers
from generation.medagent.parsers import ParseError


def test_case_extraction_parses_sections_and_keys():
    reply = """RATIONALE: Mostly about sleep.
VITAL FACTS:
- Blood pressure is 120/80 mm Hg.
FACTS:
- I sleep four hours a night.
- **I feel tired all day.**
- I sleep four hours a night.
INTENT: lifestyle_literacy
GOAL: **Functioning**"""
    parsed = parsers.parse_case_extraction(reply)
    assert parsed.vital_facts == ["Blood pressure is 120/80 mm Hg."]
    assert parsed.facts == ["I sleep four hours a night.", "**I feel tired all day.**"]
    assert parsed.intent == "lifestyle_literacy" and parsed.goal == "functioning"


@pytest.mark.parametrize("reply, problem", [
    ("VITAL FACTS:\n- NONE\nFACTS:\n- I sleep badly.\nINTENT: lifestyle_literacy", "missing GOAL"),
    ("VITAL FACTS:\n- NONE\nFACTS:\n- NONE\nINTENT: lifestyle_literacy\nGOAL: comfort", "may not be NONE"),
    ("VITAL FACTS:\n- NONE\nFACTS:\n- I sleep badly.\nINTENT: wellness\nGOAL: comfort", "not one of"),
    ("VITAL FACTS:\n- NONE\nFACTS:\nI sleep badly.\nINTENT: lifestyle_literacy\nGOAL: comfort", "not a list item"),
])
def test_case_extraction_rejects(reply, problem):
    with pytest.raises(ParseError, match=problem):
        parsers.parse_case_extraction(reply)


def test_first_message_allows_at_most_two_facts():
    ok = parsers.parse_first_message("REASONING: x\nFACTS USED: 1, 3\nMESSAGE: Hi, I have not slept well.", 4)
    assert ok.fact_numbers == [1, 3] and ok.message == "Hi, I have not slept well."
    with pytest.raises(ParseError, match="at most 2"):
        parsers.parse_first_message("FACTS USED: 1, 2, 3\nMESSAGE: Hi there, I am unwell.", 4)
    with pytest.raises(ParseError, match="does not exist"):
        parsers.parse_first_message("FACTS USED: 7\nMESSAGE: Hi there, I am unwell.", 4)
    with pytest.raises(ParseError, match="too short"):
        parsers.parse_first_message("FACTS USED: 1\nMESSAGE: Hi", 4)


def test_fact_selection_numbers_or_no_match():
    assert parsers.parse_fact_selection("REASONING: none fit\nFACTS: NO MATCH", 5) == []
    assert parsers.parse_fact_selection("REASONING: r\nFACTS: 2, 5 and 1", 5) == [2, 5, 1]
    assert parsers.parse_fact_selection("<think>hmm FACTS: 9</think>\nFACTS: 3", 5) == [3]
    for bad, problem in [("FACTS: 1, 2, 3, 4", "at most 3"), ("FACTS: 6", "does not exist"),
                         ("FACTS: the second one", "not a fact number"), ("REASONING: r", "missing FACTS")]:
        with pytest.raises(ParseError, match=problem):
            parsers.parse_fact_selection(bad, 5)


def test_patient_answers():
    assert parsers.parse_patient_answer('ANSWER: "I sleep badly."') == "I sleep badly."
    reply = parsers.parse_no_match_reply("REASONING: history\nCATEGORY: history\nANSWER: No, not that I know of.")
    assert reply.category == "HISTORY" and reply.answer.startswith("No")
    with pytest.raises(ParseError):
        parsers.parse_patient_answer("I sleep badly.")
    with pytest.raises(ParseError, match="CATEGORY"):
        parsers.parse_no_match_reply("CATEGORY: OTHER\nANSWER: Yes.")


@pytest.mark.parametrize(("category", "answer", "ok"), [
    ("HISTORY", "No, not that I know of.", True),
    ("HISTORY", "I'm not sure. Nobody ever told me.", True),
    ("HISTORY", "It's hard to explain, but no, I don't think so.", True),  # a persona's lead-in
    ("HISTORY", "Yes, my mother had it too.", False),
    ("HISTORY", "My mother had it too.", False),
    ("HISTORY", "No. Yes, actually.", True),  # judged on the first sentence
    ("DECISION", "Yes, I'd like to try that.", True),
    ("EMOTION", "Clinically speaking, yes, I feel understood.", True),
    ("DECISION", "No, I'd rather not.", False),
    ("EMOTION", "I feel fine.", False),
])
def test_no_match_answers_have_the_methods_polarity(category, answer, ok):
    reply = f"REASONING: x\nCATEGORY: {category}\nANSWER: {answer}"
    if ok:
        assert parsers.parse_no_match_reply(reply).answer == answer
    else:
        with pytest.raises(ParseError, match=parsers.POLARITY_ERROR):
            parsers.parse_no_match_reply(reply)


def test_new_facts():
    assert parsers.parse_new_facts("NEW FACTS: NONE") == []
    assert parsers.parse_new_facts("NEW FACTS:\n# The patient sleeps badly.\n# The patient drinks coffee.") == [
        "The patient sleeps badly.", "The patient drinks coffee."]
    with pytest.raises(ParseError):
        parsers.parse_new_facts("The patient sleeps badly.")


def test_stage_decision():
    parsed = parsers.parse_stage_decision("REASONING: enough.\nCONFIDENCE: 8/10\nDECISION: **MOVE_NEXT**")
    assert parsed.move_next and parsed.confidence == 8
    assert not parsers.parse_stage_decision("CONFIDENCE: 3\nDECISION: stay").move_next
    for bad in ("CONFIDENCE: 11\nDECISION: STAY", "CONFIDENCE: high\nDECISION: STAY",
                "CONFIDENCE: 5\nDECISION: MAYBE", "DECISION: STAY"):
        with pytest.raises(ParseError):
            parsers.parse_stage_decision(bad)


def test_candidates_need_exactly_three():
    reply = "REASONING: r\nMESSAGES:\n# One message here.\n# 2. Second message here.\n# Third message here?"
    assert parsers.parse_candidates(reply).messages == ["One message here.", "Second message here.",
                                                         "Third message here?"]
    with pytest.raises(ParseError, match="expected 3"):
        parsers.parse_candidates("MESSAGES:\n# One message.\n# Two messages.")
    with pytest.raises(ParseError, match="expected 3"):
        parsers.parse_candidates("MESSAGES:\n# One a.\n# Two b.\n# Three c.\n# Four d.")
    with pytest.raises(ParseError, match="does not start"):
        parsers.parse_candidates("MESSAGES:\n# One a.\nTwo b.\n# Three c.")


def test_redundancy_labels():
    assert parsers.parse_redundancy("1: REDUNDANT\n2: NOT_REDUNDANT\n3. not redundant") == [True, False, False]
    for bad in ("1: REDUNDANT\n2: REDUNDANT", "1: REDUNDANT\n1: REDUNDANT\n2: REDUNDANT\n3: REDUNDANT",
                "1: REDUNDANT\n2: MAYBE\n3: REDUNDANT"):
        with pytest.raises(ParseError):
            parsers.parse_redundancy(bad)
