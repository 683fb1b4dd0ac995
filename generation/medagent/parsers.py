"""Strict parsers for the replies to each prompt kind.

A parser either returns a value the pipeline can use or raises ParseError with a short reason;
the client then retries the call (at most 5 attempts), and after that the conversation fails.
The parsers tolerate presentation noise that carries no meaning (a reasoning model's <think>
block, code fences, markdown bold around labels, a polite preamble) but never guess content:
a missing label, an out-of-range fact number or a fourth candidate is an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .types import GOALS, INTENTS


class ParseError(ValueError):
    pass


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*$", re.MULTILINE)


def clean_reply(text: str | None) -> str:
    """Drop reasoning blocks and fences; normalise newlines."""
    if text is None:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _THINK.sub("", text)
    if "</think>" in text:  # some servers strip the opening tag
        text = text.split("</think>", 1)[1]
    text = _FENCE.sub("", text)
    return text.strip()


def _sections(text: str, labels: tuple[str, ...]) -> dict[str, str]:
    """Split `LABEL: value` sections; a value runs until the next known label line."""
    alternation = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    pattern = re.compile(rf"^[ \t>*_]*({alternation})[ \t*_]*:[ \t*_]*", re.MULTILINE | re.IGNORECASE)
    found: dict[str, str] = {}
    matches = list(pattern.finditer(text))
    for i, match in enumerate(matches):
        label = match.group(1).upper()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if label in found:
            raise ParseError(f"label {label} appears twice")
        found[label] = text[match.end():end].strip()
    return found


def _require(sections: dict[str, str], label: str) -> str:
    if label not in sections:
        raise ParseError(f"missing {label}:")
    return sections[label]


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] in "\u201c" and text[-1] in "\u201d":
        text = text[1:-1].strip()
    return text


def _free_text(value: str, label: str, min_words: int = 1) -> str:
    value = _strip_quotes(" ".join(value.split()))
    if len(re.findall(r"[A-Za-z]+", value)) < min_words:
        raise ParseError(f"{label} is empty or too short")
    return value


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|#|\d+[.)])\s+(.*\S)\s*$")
_NONE = re.compile(r"^\s*[-*#]?\s*\(?none\)?\.?\s*$", re.IGNORECASE)


def _bullets(block: str, label: str, allow_none: bool) -> list[str]:
    items: list[str] = []
    for line in block.split("\n"):
        if not line.strip():
            continue
        if _NONE.match(line):
            if not allow_none:
                raise ParseError(f"{label} may not be NONE")
            continue
        match = _BULLET.match(line)
        if not match:
            raise ParseError(f"{label}: line is not a list item: {line.strip()[:60]!r}")
        items.append(_strip_quotes(match.group(1)))
    return items


def _key(value: str) -> str:
    value = value.strip().strip("<>*.\"'` ").lower()
    return re.sub(r"[\s-]+", "_", value)


# --- case extraction --------------------------------------------------------------------------
@dataclass
class CaseFacts:
    facts: list[str]
    vital_facts: list[str]
    intent: str
    goal: str


def parse_case_extraction(text: str) -> CaseFacts:
    sections = _sections(clean_reply(text), ("RATIONALE", "VITAL FACTS", "FACTS", "INTENT", "GOAL"))
    vitals = _bullets(_require(sections, "VITAL FACTS"), "VITAL FACTS", allow_none=True)
    facts = _bullets(_require(sections, "FACTS"), "FACTS", allow_none=False)
    if not facts:
        raise ParseError("FACTS is empty")
    intent = _key(_require(sections, "INTENT"))
    goal = _key(_require(sections, "GOAL"))
    if intent not in INTENTS:
        raise ParseError(f"INTENT {intent!r} is not one of {', '.join(INTENTS)}")
    if goal not in GOALS:
        raise ParseError(f"GOAL {goal!r} is not one of {', '.join(GOALS)}")
    return CaseFacts(facts=_dedupe(facts), vital_facts=_dedupe(vitals), intent=intent, goal=goal)


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        norm = " ".join(item.lower().split())
        if norm not in seen:
            seen.add(norm)
            out.append(item)
    return out


# --- patient ------------------------------------------------------------------------------------
def _fact_numbers(value: str, n_facts: int, limit: int, label: str) -> list[int]:
    value = value.strip().rstrip(".")
    if not value or _NONE.match(value):
        return []
    tokens = [t for t in re.split(r"[,;\s]+|\band\b", value) if t.strip()]
    numbers: list[int] = []
    for token in tokens:
        match = re.fullmatch(r"(?:fact)?#?\(?(\d+)[.)]?", token.strip(), re.IGNORECASE)
        if not match:
            raise ParseError(f"{label}: {token!r} is not a fact number")
        number = int(match.group(1))
        if not 1 <= number <= n_facts:
            raise ParseError(f"{label}: fact {number} does not exist (1-{n_facts})")
        if number not in numbers:
            numbers.append(number)
    if len(numbers) > limit:
        raise ParseError(f"{label}: {len(numbers)} facts chosen, at most {limit} allowed")
    return numbers


@dataclass
class FirstMessage:
    fact_numbers: list[int]
    message: str
    reasoning: str


def parse_first_message(text: str, n_facts: int) -> FirstMessage:
    sections = _sections(clean_reply(text), ("REASONING", "FACTS USED", "MESSAGE"))
    numbers = _fact_numbers(_require(sections, "FACTS USED"), n_facts, 2, "FACTS USED")
    message = _free_text(_require(sections, "MESSAGE"), "MESSAGE", min_words=3)
    return FirstMessage(numbers, message, sections.get("REASONING", ""))


NO_MATCH = "NO MATCH"


def parse_fact_selection(text: str, n_facts: int) -> list[int]:
    """Chosen fact numbers (1-based), or [] for NO MATCH."""
    value = _require(_sections(clean_reply(text), ("REASONING", "FACTS")), "FACTS")
    if re.fullmatch(r"\W*no[\s_-]*match\W*", value, re.IGNORECASE):
        return []
    numbers = _fact_numbers(value, n_facts, 3, "FACTS")
    if not numbers:
        raise ParseError("FACTS lists no fact numbers and is not NO MATCH")
    return numbers


def parse_patient_answer(text: str) -> str:
    return _free_text(_require(_sections(clean_reply(text), ("ANSWER",)), "ANSWER"), "ANSWER")


@dataclass
class NoMatchReply:
    category: str
    answer: str


POLARITY_ERROR = "NO MATCH polarity"
_NEGATIVE = re.compile(r"\b(?:no|not|never|nope|none|nothing|unsure)\b|n't\b", re.IGNORECASE)
_YES = re.compile(r"\b(?:yes|yeah|yep)\b", re.IGNORECASE)
_NO_WORD = re.compile(r"\b(?:no|nope)\b", re.IGNORECASE)
_FIRST_SENTENCE = re.compile(r"^.*?(?:[.!?](?=\s|$)|$)", re.DOTALL)


def no_match_polarity_problem(category: str, answer: str) -> str | None:
    """The method's NO MATCH rule: a history question is answered "No" / "I'm not sure", a decision or
    emotion question "Yes". Judged on the answer's first sentence, so a persona's or literacy level's
    lead-in ("It's hard to explain, but no, ...") is allowed; the opposite answer is not."""
    first = _FIRST_SENTENCE.match(answer.strip()).group(0)
    if category == "HISTORY" and (not _NEGATIVE.search(first) or _YES.search(first)):
        return (f'{POLARITY_ERROR}: the answer to a history question must begin "No" or "I\'m not sure", '
                f"got {first[:60]!r}")
    if category in ("DECISION", "EMOTION") and (not _YES.search(first) or _NO_WORD.search(first)):
        return f'{POLARITY_ERROR}: the answer to a {category.lower()} question must begin "Yes", got {first[:60]!r}'
    return None


def parse_no_match_reply(text: str) -> NoMatchReply:
    sections = _sections(clean_reply(text), ("REASONING", "CATEGORY", "ANSWER"))
    category = _key(_require(sections, "CATEGORY")).upper()
    if category not in ("HISTORY", "DECISION", "EMOTION"):
        raise ParseError(f"CATEGORY {category!r} is not HISTORY, DECISION or EMOTION")
    answer = _free_text(_require(sections, "ANSWER"), "ANSWER")
    problem = no_match_polarity_problem(category, answer)
    if problem:
        raise ParseError(problem)
    return NoMatchReply(category, answer)


# --- sensemaker ---------------------------------------------------------------------------------
def parse_new_facts(text: str) -> list[str]:
    sections = _sections(clean_reply(text), ("NEW FACTS",))
    return _dedupe(_bullets(_require(sections, "NEW FACTS"), "NEW FACTS", allow_none=True))


@dataclass
class StageDecision:
    move_next: bool
    confidence: int
    reasoning: str


def parse_stage_decision(text: str) -> StageDecision:
    sections = _sections(clean_reply(text), ("REASONING", "CONFIDENCE", "DECISION"))
    raw_conf = _require(sections, "CONFIDENCE")
    match = re.fullmatch(r"\W*(\d{1,2})(?:\s*/\s*10)?\W*", raw_conf)
    if not match or not 1 <= int(match.group(1)) <= 10:
        raise ParseError(f"CONFIDENCE {raw_conf[:20]!r} is not an integer from 1 to 10")
    decision = re.sub(r"[\s-]+", "_", _require(sections, "DECISION").strip().strip("<>*.\"'` ").upper())
    if decision not in ("MOVE_NEXT", "STAY"):
        raise ParseError(f"DECISION {decision[:30]!r} is not MOVE_NEXT or STAY")
    return StageDecision(decision == "MOVE_NEXT", int(match.group(1)), sections.get("REASONING", ""))


@dataclass
class Candidates:
    messages: list[str]
    reasoning: str


_CANDIDATE_PREFIX = re.compile(r"^(?:(?:candidate|message)\s*)?\d[.):]\s*", re.IGNORECASE)


def parse_candidates(text: str, expected: int = 3) -> Candidates:
    sections = _sections(clean_reply(text), ("REASONING", "MESSAGES"))
    block = _require(sections, "MESSAGES")
    messages: list[str] = []
    for line in block.split("\n"):
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            raise ParseError(f"MESSAGES: line does not start with '#': {line.strip()[:60]!r}")
        body = _CANDIDATE_PREFIX.sub("", line.lstrip()[1:].strip())
        messages.append(_free_text(body, "candidate message", min_words=2))
    if len(messages) != expected:
        raise ParseError(f"expected {expected} candidate messages, got {len(messages)}")
    return Candidates(messages, sections.get("REASONING", ""))


_LABEL_LINE = re.compile(r"^\s*(\d+)\s*[:.)-]\s*\**\s*(NOT[ _-]?REDUNDANT|REDUNDANT)\s*\**\.?\s*$", re.IGNORECASE)


def parse_redundancy(text: str, expected: int = 3) -> list[bool]:
    """One boolean per candidate: True when redundant."""
    labels: dict[int, bool] = {}
    for line in clean_reply(text).split("\n"):
        match = _LABEL_LINE.match(line)
        if not match:
            continue
        number = int(match.group(1))
        if number in labels:
            raise ParseError(f"candidate {number} labelled twice")
        labels[number] = not match.group(2).upper().startswith("NOT")
    if sorted(labels) != list(range(1, expected + 1)):
        raise ParseError(f"expected labels for candidates 1-{expected}, got {sorted(labels) or 'none'}")
    return [labels[i] for i in range(1, expected + 1)]
