"""Text that PostgreSQL cannot store, found before it reaches the database.

PostgreSQL refuses NUL (U+0000) in text columns and in jsonb strings, and a lone UTF-16 surrogate
(U+D800-U+DFFF, e.g. JSON's "\\ud800" escape) cannot be encoded as UTF-8 at all: both used to end as a
500 with half a request done. Every path that stores text asks this module first and turns the
answer into a 4xx or a form error that names the line and field.
"""
import re

from django.core.exceptions import ValidationError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text) -> str | None:
    """Why `text` cannot be stored (a sentence), or None when it can. Non-strings are fine."""
    if not isinstance(text, str):
        return None
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    char = match.group()
    where = f"at character {match.start() + 1}"
    if char == "\x00":
        return f"contains a NUL character (U+0000) {where}, which cannot be stored"
    return f"contains a lone surrogate (U+{ord(char):04X}) {where}, which is not valid Unicode text"


def find_unstorable(value, path: str = "") -> list[tuple[str, str]]:
    """Every (field path, reason) inside a parsed JSON value: dict keys and values, list items.
    Paths read like `messages[2].content`; the top level is `path` (may be empty)."""
    found = []
    if isinstance(value, str):
        reason = unstorable(value)
        if reason:
            found.append((path, reason))
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            reason = unstorable(key)
            if reason:
                found.append((f"{path or '(top level)'} key {key!r}", reason))
                child = f"{path}[key]" if path else "[key]"
            found.extend(find_unstorable(item, child))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(find_unstorable(item, f"{path}[{index}]"))
    return found


def validate_storable(value) -> None:
    """A Django validator (form and model fields): any string, or JSON holding strings."""
    problems = find_unstorable(value)
    if problems:
        raise ValidationError(
            "; ".join(f"{path}: {reason}" if path else f"The text {reason}" for path, reason in problems[:5]),
            code="unstorable_text",
        )


def describe(problems: list[tuple[str, str]], prefix: str = "") -> list[str]:
    """Human sentences for find_unstorable's answer, e.g. "line 3, field 'text': contains a NUL ..."."""
    return [f"{prefix}field '{path}': {reason}" if path else f"{prefix}{reason}" for path, reason in problems]
