"""The offline simulator's JUDGE: answers a judge prompt (`[judge:<version>]`, built by
judging/prompts.py) with valid JSON scoring each axis. It is NOT a clinical judge.

Scores come from simple features of the conversation text in the prompt: whether the assistant talks
about likelihood or risk (susceptibility), consequences (severity), what helps (benefits), whether the
diagnosis it states matches the ground truth given (diagnostic accuracy, exact or related), how many
of the six stages its messages cover (flow), and sentence and word length (readability). Axes it does
not recognise are scored from the assistant's overall engagement. Each score gets seeded noise (from
the model string, the prompt and the request's `seed`), so repeated samples of one conversation
differ as a real judge's would and self-consistency is measurably below 1. Every rationale says it
is simulated. This module only reads text: it knows the prompt's format, not the platform's models.
"""
from __future__ import annotations

import json
import random
import re

SIMULATED_NOTE = "[simulated judge: rule-based features, not a clinical judgement]"
_MESSAGE = re.compile(r"^\[(\d+)\] (Patient|Assistant): ?(.*)$")
_AXIS = re.compile(r'^- "([^"]+)" \(([^)]*)\)')
_SCALE = re.compile(r"^  Score: (?:(a number|a whole number) from (-?[\d.]+) to (-?[\d.]+)|one of (.+))\.$")
_TRUTH = re.compile(r"^The patient's actual \(ground-truth\) diagnosis, for the axes that judge "
                    r"diagnostic accuracy: (.+)$")

# What each recognised feature looks for in the assistant's messages.
_FEATURES = {
    "susceptibility": r"\blikel(?:y|ihood)\b|\brisk\b|\bchance\b|\bprobab|\bcommon\b|\baffected\b|\bprone\b",
    "severity": r"\bserious|\bworse\b|\bconsequence|\bdaily life\b|\bleft alone\b|\buntreated\b|\bharm|\bdanger",
    "benefits": r"\bhelp(?:s|ful)?\b|\bimprove|\btreatable\b|\bbenefit|\breduce|\beffective|\btherap|\btreatment",
}
_STAGES = [
    r"\bthank you\b|\bsorry\b|\bhere to listen\b|\bnot alone\b|\bcourage\b",         # relationship
    r"\?",                                                                           # information gathering
    r"\bdiagnos|\bexplanation is\b|\bexperiencing\b|\bassessment\b|\bcondition\b",    # information giving
    r"\bgoal\b|\bwould you be open\b|\bmay help\b|\bwhich of these\b|\bsupport you\b",  # decision making
    r"\bvalid\b|\bunderstandable\b|\bmakes sense\b|\bstrength\b|\bokay to feel\b",    # emotional support
    r"\btake care\b|\breach out again\b|\bcome back\b|\bwish you well\b",             # exit
]
_GENERIC_WORDS = {"disorder", "disease", "syndrome", "condition", "type", "major", "mild", "acute", "chronic",
                  "with", "and", "the", "of", "due", "to", "other", "unspecified"}


def is_judge_prompt(prompt: str) -> bool:
    return prompt.lstrip().startswith("[judge:")


def _parse(prompt: str) -> tuple[list[dict], list[tuple[int, str, str]], str]:
    axes, messages, truth = [], [], ""
    in_conversation = False
    for line in prompt.split("\n"):
        if line.startswith("Conversation (messages are numbered"):
            in_conversation = True
            continue
        if line.startswith("Reply with one JSON object"):
            in_conversation = False
        if in_conversation:
            if match := _MESSAGE.match(line):
                messages.append((int(match[1]), match[2], match[3]))
            elif messages and line:
                number, role, text = messages[-1]
                messages[-1] = (number, role, f"{text}\n{line}")
            continue
        if match := _TRUTH.match(line):
            truth = match[1].strip()
        elif match := _AXIS.match(line):
            axes.append({"key": match[1], "name": match[2], "values": None, "low": 1.0, "high": 4.0,
                         "fractions": False})
        elif axes and (match := _SCALE.match(line)):
            axis = axes[-1]
            if match[4]:
                axis["values"] = [float(v) for v in match[4].split(", ")]
            else:
                axis["fractions"] = match[1] == "a number"
                axis["low"], axis["high"] = float(match[2]), float(match[3])
    return axes, messages, truth


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _GENERIC_WORDS}


def _kind(axis: dict) -> str:
    label = f"{axis['key']} {axis['name']}".lower()
    for kind in ("suscept", "sever", "benefit", "flow", "read"):
        if kind in label:
            return kind
    if "diagnos" in label:
        return "diagnosis_soft" if re.search(r"soft|related|broad", label) else "diagnosis_hard"
    return "engagement"


def _feature(kind: str, assistant: list[tuple[int, str]], truth: str) -> tuple[float, list[int], str]:
    """(strength 0..1, message numbers that show it, what was seen) for one axis."""
    if kind in ("suscept", "sever", "benefit"):
        pattern = {"suscept": _FEATURES["susceptibility"], "sever": _FEATURES["severity"],
                   "benefit": _FEATURES["benefits"]}[kind]
        hits = [n for n, text in assistant if re.search(pattern, text, re.IGNORECASE)]
        found = sum(len(re.findall(pattern, text, re.IGNORECASE)) for _, text in assistant)
        what = {"suscept": "likelihood or risk", "sever": "consequences", "benefit": "what would help"}[kind]
        return min(1.0, found / 4), hits, f"mentions {what} {found} time{'s' if found != 1 else ''}"
    if kind.startswith("diagnosis"):
        truth_words = _words(truth)
        best, cited = 0.0, []
        for number, text in assistant:
            words = _words(text)
            exact = bool(truth) and truth.lower() in text.lower()
            overlap = len(truth_words & words) / len(truth_words) if truth_words else 0.0
            score = 1.0 if exact or overlap == 1 else (0.5 if overlap else 0.0)
            if score > best:
                best, cited = score, [number]
        if kind == "diagnosis_hard":
            return (1.0 if best == 1.0 else 0.0), cited, (
                "states the ground-truth diagnosis" if best == 1.0 else "does not state the ground-truth diagnosis")
        return (1.0 if best > 0 else 0.0), cited, (
            "states a diagnosis related to the ground truth" if best > 0 else "states no related diagnosis")
    if kind == "flow":
        covered, cited = 0, []
        for pattern in _STAGES:
            numbers = [n for n, text in assistant if re.search(pattern, text, re.IGNORECASE)]
            if numbers:
                covered += 1
                cited.append(numbers[0])
        return covered / len(_STAGES), sorted(set(cited)), f"covers {covered} of the 6 stages"
    sentences = [s for _, text in assistant for s in re.split(r"[.!?]+", text) if s.strip()]
    words = [w for s in sentences for w in s.split()]
    if kind == "read":
        per_sentence = len(words) / max(1, len(sentences))
        long_share = sum(len(w) > 8 for w in words) / max(1, len(words))
        strength = max(0.0, min(1.0, 1.3 - per_sentence / 30 - 2 * long_share))
        return strength, [n for n, _ in assistant[:2]], f"{per_sentence:.0f} words per sentence"
    return min(1.0, len(words) / 400), [n for n, _ in assistant[:2]], f"{len(words)} words from the assistant"


def _score(axis: dict, strength: float, rng: random.Random) -> float:
    if axis["values"]:
        values = sorted(axis["values"])
        # A binary judgement flips now and then, as a real judge's would between samples.
        index = round(strength * (len(values) - 1))
        if rng.random() < 0.08:
            index = len(values) - 1 - index
        return values[index]
    low, high = axis["low"], axis["high"]
    value = low + strength * (high - low) + rng.gauss(0, 0.45)
    step = 0.5 if axis["fractions"] else 1.0
    value = round(value / step) * step
    return min(high, max(low, value))


def simulate_judge_reply(prompt: str, rng: random.Random) -> str:
    axes, messages, truth = _parse(prompt)
    assistant = [(n, text) for n, role, text in messages if role == "Assistant"]
    reply = {}
    for axis in axes:
        strength, cited, seen = _feature(_kind(axis), assistant, truth)
        score = _score(axis, strength, rng)
        cited = cited[:3] or [n for n, _ in assistant[:1]]
        where = f" (messages {', '.join(map(str, cited))})" if cited else ""
        reply[axis["key"]] = {
            "score": int(score) if float(score).is_integer() else score,
            "rationale": f"{SIMULATED_NOTE} The assistant {seen}{where}.",
            "cited_messages": cited,
        }
    return json.dumps(reply, indent=1)
