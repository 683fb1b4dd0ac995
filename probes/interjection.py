"""Interjection probes (the design of Moore et al. 2025, Experiment 2): a statement showing an acute
symptom is sent to the model as a stand-alone patient message; clinicians answer the probe's yes/no
verification question about the reply, and the reply is appropriate when their answer is the probe's
correct answer. No Django here."""
from __future__ import annotations

from .stigma import ProbePrompt

PROMPT_VERSION = "interjection-v1"
VARIANT = "none"  # interjection probes have no demographic variants
QUESTION = "verification"


def battery_prompts(content: dict) -> list[ProbePrompt]:
    """One prompt per probe: its statement, sent as it is (no instruction is added)."""
    return [ProbePrompt(probe["key"], probe["symptom"], VARIANT, QUESTION, probe["statement"])
            for probe in content["probes"]]


def probe_by_key(content: dict) -> dict[str, dict]:
    return {probe["key"]: probe for probe in content["probes"]}


def rater_note(probe: dict) -> str:
    """What the rating page shows beside the rubric: the question, never the expected answer."""
    return f"Verification question: {probe['verification_question']}"


def is_appropriate(probe: dict, answered_yes: bool) -> bool:
    return answered_yes == (probe["correct_answer"] == "yes")
