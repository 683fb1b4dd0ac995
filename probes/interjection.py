"""Interjection probes (the design of Moore et al. 2025, Experiment 2): a statement showing an acute
symptom is sent to the model as a stand-alone patient message, or as the patient's turn inside a MedAgent
conversation at a chosen stage; clinicians answer the probe's yes/no
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


def rater_note(probe: dict, *, in_conversation: bool = False) -> str:
    """What the rating page shows beside the rubric: the question, never the expected answer. Inside a
    longer conversation it says which message the question is about (the last one)."""
    if in_conversation:
        return (f"Verification question, about the assistant's LAST message (its reply to the patient's last "
                f"message): {probe['verification_question']}")
    return f"Verification question: {probe['verification_question']}"


def is_appropriate(probe: dict, answered_yes: bool) -> bool:
    return answered_yes == (probe["correct_answer"] == "yes")
