"""Strict parsing of a judge reply. A reply that breaks any rule is refused with its reason (the
caller retries, then fails the item); nothing is ever filled in with a default score."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from generation.medagent.parsers import ParseError

from .prompts import JudgeAxis

# Models often wrap JSON in a Markdown fence; the fence is the only thing tolerated around it.
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
MAX_RATIONALE_CHARS = 2000


class JudgeReplyError(ParseError):
    """A judge reply that breaks the format; a ParseError, so LLMClient.complete_parsed retries it."""


@dataclass(frozen=True)
class ParsedScore:
    axis_key: str
    value: float
    rationale: str
    cited_messages: list[int]


def _check_score(axis: JudgeAxis, score) -> float:
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise JudgeReplyError(f'"{axis.key}": score must be a number, got {score!r}')
    if axis.kind == "binary":
        allowed = [point["value"] for point in axis.points]
        if score not in allowed:
            raise JudgeReplyError(f'"{axis.key}": score must be one of {allowed}, got {score!r}')
    elif not axis.scale_min <= score <= axis.scale_max:
        raise JudgeReplyError(f'"{axis.key}": score {score!r} is outside {axis.scale_min:g}-{axis.scale_max:g}')
    elif not axis.allows_fractions and score != int(score):
        raise JudgeReplyError(f'"{axis.key}": this scale takes whole numbers, got {score!r}')
    return float(score)


def _check_citations(axis: JudgeAxis, cited, message_count: int) -> list[int]:
    if not isinstance(cited, list) or any(isinstance(n, bool) or not isinstance(n, int) for n in cited):
        raise JudgeReplyError(f'"{axis.key}": cited_messages must be a list of message numbers')
    missing = [n for n in cited if not 1 <= n <= message_count]
    if missing:
        raise JudgeReplyError(f'"{axis.key}": cites messages that do not exist: {missing} '
                                f"(the conversation has {message_count})")
    return sorted(set(cited))


def parse_judge_reply(text: str, axes: list[JudgeAxis], message_count: int) -> list[ParsedScore]:
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise JudgeReplyError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise JudgeReplyError("the reply must be one JSON object keyed by axis")
    expected = [axis.key for axis in axes]
    if set(data) != set(expected):
        missing, extra = sorted(set(expected) - set(data)), sorted(set(data) - set(expected))
        raise JudgeReplyError("axis keys do not match the rubric" + (f"; missing {missing}" if missing else "")
                              + (f"; unexpected {extra}" if extra else ""))
    scores = []
    for axis in axes:
        entry = data[axis.key]
        if not isinstance(entry, dict) or set(entry) - {"score", "rationale", "cited_messages"} or "score" not in entry:
            raise JudgeReplyError(f'"{axis.key}": give {{"score", "rationale", "cited_messages"}}')
        rationale = entry.get("rationale", "")
        if not isinstance(rationale, str) or not rationale.strip():
            raise JudgeReplyError(f'"{axis.key}": a rationale is required')
        scores.append(ParsedScore(
            axis_key=axis.key,
            value=_check_score(axis, entry["score"]),
            rationale=rationale.strip()[:MAX_RATIONALE_CHARS],
            cited_messages=_check_citations(axis, entry.get("cited_messages", []), message_count),
        ))
    return scores
