"""Probe battery files: versioned JSON-lines data that a user can replace (probes/data/*.jsonl).

One record per line, each with a "type". The first line is the battery header
({"type": "battery", "protocol", "slug", "version", "name", ...}); the protocol decides which
other record types may follow (PROTOCOLS): a stigma battery has vignette, variant and question records,
an interjection set has probe records (a symptom statement, a yes/no verification question and its
correct answer). Every problem is reported with its line and field, and a
file with any problem is refused whole: `parse_battery` returns the content only when it is clean.
No Django here: the import itself is probes.services.import_battery.
"""
from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
MAX_TEXT = 5000
MAX_LABEL = 200
MAX_LINES = 5000

# Placeholders a stigma vignette or question may use; each comes from the demographic variant.
STIGMA_PLACEHOLDERS = frozenset({"name", "age", "ethnicity", "person", "education", "them", "their", "themself"})
PRONOUN_KEYS = ("them", "their", "themself")


@dataclass(frozen=True)
class FileError:
    line: int
    field: str
    message: str

    def __str__(self):
        return f"line {self.line}, field '{self.field}': {self.message}"


class BatteryFileError(ValueError):
    """The file is refused; `errors` names every bad line and field."""

    def __init__(self, errors: list[FileError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:20]) + (" ..." if len(errors) > 20 else ""))


# --- field checks: each returns the clean value or raises ValueError with the message -------------


def _text(limit):
    def check(value):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        if len(value) > limit:
            raise ValueError(f"is longer than {limit} characters")
        return value.strip()
    return check


def _optional_text(limit):
    def check(value):
        if value is None or value == "":
            return ""
        return _text(limit)(value)
    return check


def _slug(value):
    if not isinstance(value, str) or not SLUG.match(value):
        raise ValueError("must be a lower-case key of letters, digits, '-' or '_' (at most 80)")
    return value


def _version(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _age(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 120:
        raise ValueError("must be a whole number from 1 to 120")
    return value


def _template(allowed: frozenset):
    def check(value):
        value = _text(MAX_TEXT)(value)
        try:
            fields = [parsed for parsed in string.Formatter().parse(value)]
        except ValueError as exc:
            raise ValueError(f"has a broken placeholder: {exc}") from None
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if name not in allowed or spec or conversion:
                raise ValueError(f"uses the placeholder {{{name}}}; allowed: "
                                 + ", ".join(f"{{{p}}}" for p in sorted(allowed)))
        return value
    return check


def _options(value):
    if not isinstance(value, list) or len(value) < 2:
        raise ValueError("must be a list of at least two answer options")
    clean = []
    for option in value:
        if not isinstance(option, str) or not option.strip() or len(option) > MAX_LABEL:
            raise ValueError("every option must be a non-empty string of at most 200 characters")
        if normalise_option(option) in {normalise_option(o) for o in clean}:
            raise ValueError(f"option {option!r} is listed twice")
        clean.append(option.strip())
    return clean


def _string_list(value):
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return [v.strip() for v in value]


def _pronouns(value):
    if not isinstance(value, dict) or set(value) != set(PRONOUN_KEYS):
        raise ValueError(f"must be an object with exactly the keys {', '.join(PRONOUN_KEYS)}")
    for key in PRONOUN_KEYS:
        if not isinstance(value[key], str) or not value[key].strip():
            raise ValueError(f"'{key}' must be a non-empty string")
    return {key: value[key].strip() for key in PRONOUN_KEYS}


def _protocol(value):
    if value not in PROTOCOLS:
        raise ValueError(f"must be one of {', '.join(sorted(PROTOCOLS))}")
    return value


def normalise_option(text: str) -> str:
    """How options and replies are compared: case, surrounding space and inner runs of space ignored."""
    return re.sub(r"\s+", " ", text.strip().lower())


# --- record types per protocol ---------------------------------------------------------------------

HEADER_FIELDS = {
    "protocol": (True, lambda value: _protocol(value)),
    "slug": (True, _slug),
    "version": (True, _version),
    "name": (True, _text(MAX_LABEL)),
    "description": (False, _optional_text(MAX_TEXT)),
    "citation": (False, _optional_text(MAX_TEXT)),
}

STIGMA_RECORDS = {
    "vignette": {
        "key": (True, _slug), "condition": (True, _slug), "label": (True, _text(MAX_LABEL)),
        "text": (True, _template(STIGMA_PLACEHOLDERS)),
    },
    "variant": {
        "key": (True, _slug), "name": (True, _text(80)), "age": (True, _age), "ethnicity": (True, _text(80)),
        "person": (True, _text(80)), "gender": (True, _text(80)), "education": (True, _text(MAX_LABEL)),
        "pronouns": (True, _pronouns),
    },
    "question": {
        "key": (True, _slug), "group": (False, lambda v: _slug(v) if v else ""),
        "text": (True, _template(STIGMA_PLACEHOLDERS)), "options": (True, _options),
        "stigmatizing": (True, _string_list),
    },
}

def _yes_no(value):
    if value not in ("yes", "no"):
        raise ValueError('must be "yes" or "no"')
    return value


INTERJECTION_RECORDS = {
    "probe": {
        "key": (True, _slug), "symptom": (True, _slug), "label": (True, _text(MAX_LABEL)),
        "statement": (True, _text(MAX_TEXT)), "verification_question": (True, _text(MAX_LABEL * 2)),
        "correct_answer": (True, _yes_no),
    },
}

PROTOCOLS = {"stigma": STIGMA_RECORDS, "interjection": INTERJECTION_RECORDS}
# The plural used in the parsed content for each record type.
PLURAL = {"vignette": "vignettes", "variant": "variants", "question": "questions", "probe": "probes"}


def _check_record(record: dict, fields: dict, line: int, errors: list[FileError]) -> dict:
    clean = {}
    for name in sorted(set(record) - set(fields) - {"type"}):
        errors.append(FileError(line, name, "is not a field of this record type "
                                            f"(fields: {', '.join(fields)})"))
    for name, (required, check) in fields.items():
        if name not in record:
            if required:
                errors.append(FileError(line, name, "is required"))
            continue
        try:
            clean[name] = check(record[name])
        except ValueError as exc:
            errors.append(FileError(line, name, str(exc)))
    return clean


def _check_stigma(content: dict, lines: dict, errors: list[FileError]) -> None:
    for kind in ("vignette", "variant", "question"):
        if not content[PLURAL[kind]]:
            errors.append(FileError(1, "type", f"the battery needs at least one {kind} record"))
    for question, line in zip(content["questions"], lines["question"], strict=True):
        options = {normalise_option(o) for o in question.get("options", [])}
        unknown = [s for s in question.get("stigmatizing", []) if normalise_option(s) not in options]
        if "options" in question and unknown:
            errors.append(FileError(line, "stigmatizing", f"names answers that are not options: {unknown}"))


def parse_battery(data: bytes | str) -> dict:
    """The validated content of a battery file, or BatteryFileError naming every bad line and field."""
    errors: list[FileError] = []
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BatteryFileError([FileError(1, "file", f"is not UTF-8 text ({exc.reason})")]) from None
    else:
        text = data
    raw_lines = text.splitlines()
    if len(raw_lines) > MAX_LINES:
        raise BatteryFileError([FileError(MAX_LINES + 1, "file", f"has more than {MAX_LINES} lines")])
    header, records = None, []
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(FileError(number, "json", f"is not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            errors.append(FileError(number, "json", "must be a JSON object"))
            continue
        if header is None and not records:
            if record.get("type") != "battery":
                errors.append(FileError(number, "type", "the first record must be the battery header "
                                                       '({"type": "battery", ...})'))
                header = {}
            else:
                header = _check_record(record, HEADER_FIELDS, number, errors)
            records.append((number, record))
            continue
        records.append((number, record))
    if header is None:
        raise BatteryFileError([FileError(1, "file", "is empty")])
    protocol = header.get("protocol")
    kinds = PROTOCOLS.get(protocol, {})
    content = {**header, **{PLURAL[k]: [] for k in kinds}}
    lines = {k: [] for k in kinds}
    seen_keys = {k: {} for k in kinds}
    for number, record in records[1:]:
        kind = record.get("type")
        if kind == "battery":
            errors.append(FileError(number, "type", "only the first line may be the battery header"))
            continue
        if kind not in kinds:
            if protocol in PROTOCOLS:
                errors.append(FileError(number, "type", f"must be one of {', '.join(kinds)} "
                                                       f"for a {protocol} battery"))
            continue
        clean = _check_record(record, kinds[kind], number, errors)
        key = clean.get("key")
        if key is not None:
            if key in seen_keys[kind]:
                errors.append(FileError(number, "key", f"{kind} '{key}' is already defined on line "
                                                      f"{seen_keys[kind][key]}"))
            seen_keys[kind][key] = number
        content[PLURAL[kind]].append(clean)
        lines[kind].append(number)
    if protocol == "stigma" and not errors:
        _check_stigma(content, lines, errors)
    if protocol == "interjection" and not content["probes"] and not errors:
        errors.append(FileError(1, "type", "the battery needs at least one probe record"))
    if errors:
        raise BatteryFileError(sorted(errors, key=lambda e: (e.line, e.field)))
    return content


def content_digest(content: dict) -> str:
    """sha256 of the parsed content (key order and whitespace of the file do not matter)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
