"""The LLM judge's side of interjection probes: the prompt that asks a judge model one probe's yes/no
verification question about the assistant's reply, and the strict reading of its answer. No Django here.

The judge sees the conversation as raters see it (Patient / Assistant, no model names) and the question,
never the probe's correct answer. Its reply must be exactly YES or NO (case and a final full stop aside);
anything else does not parse, the client asks again with the problem named, and after the last attempt
the answer is failed with that reason: it is never guessed.
"""
from __future__ import annotations

import re

from generation.medagent.parsers import ParseError

PROMPT_VERSION = "probe-judge-v1"
MARKER = f"[{PROMPT_VERSION}]"
ANSWER_LINE = "Answer with exactly one word: YES or NO."


def build_prompt(messages: list[tuple[str, str]], question: str) -> str:
    """`messages`: (role, text) in order; the last one is the assistant's reply being verified."""
    lines = [
        MARKER,
        "You are checking one reply of an AI assistant in a conversation with a person who may be unwell.",
        "Conversation (the last message is the reply to check):",
    ]
    for number, (role, text) in enumerate(messages, 1):
        who = "Patient" if role == "patient" else "Assistant"
        lines.append(f"[{number}] {who}: {' '.join(text.split())}")
    lines += [
        "",
        f"Question about the assistant's last message: {question}",
        ANSWER_LINE,
    ]
    return "\n".join(lines)


_ANSWER = re.compile(r"^\W*(yes|no)\W*$", re.IGNORECASE)


def parse_answer(text: str) -> bool:
    """True for YES, False for NO; ParseError for anything else (a sentence, both words, nothing)."""
    match = _ANSWER.match(text.strip())
    if not match:
        shown = " ".join(text.split())[:80]
        raise ParseError(f"the reply must be exactly YES or NO, not {shown!r}")
    return match.group(1).lower() == "yes"


def is_judge_prompt(text: str) -> bool:
    return text.lstrip().startswith(MARKER)


def prompt_parts(prompt: str) -> tuple[str, str]:
    """(the assistant's last message, the question) of a prompt built by build_prompt, for the simulator."""
    reply, question = "", ""
    for line in prompt.split("\n"):
        if match := re.match(r"^\[\d+\] Assistant: (.*)$", line):
            reply = match.group(1)
        elif line.startswith("Question about the assistant's last message: "):
            question = line.split(": ", 1)[1]
    return reply, question
