"""Import of outside conversations from JSONL (one conversation per line, OpenAI chat format).

Each line is an object:

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}, ...],
     "source": "clinic-bot", "external_id": "abc-1", "model": "acme/bot-2",
     "ground_truth_diagnosis": "...", "condition": "...", "is_simulated": false, "metadata": {...}}

Only `messages` is required. Roles map user -> patient and assistant -> sensemaker ("patient" and
"sensemaker" are accepted as they are). System messages are not part of the dialogue raters see: they
are kept, in order and with their position, in the conversation's provenance ("system_messages").
`content` is a string or a list of {"type": "text", "text": ...} parts (joined with blank lines). A
message may carry "stage" (1-6, the sensemaker stage) when the source knows it. Without an
external_id, the id is "sha256:" + a hash of the messages, so re-importing the same dialogue is still
recognised as a duplicate.

All or nothing: every line is validated first and every error is reported with its line number and
field; if any line is bad nothing is written. Then all conversations and messages are written in one
transaction. A conversation whose (source, external_id) is already on the platform is a duplicate:
an error by default, or skipped and reported with on_duplicate="skip". The database's unique
constraint on (source_label, external_id) backs this up against concurrent imports.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record
from generation.models import Conversation, Message

DEFAULT_SOURCE = "import"
ROLE_MAP = {"user": "patient", "assistant": "sensemaker", "patient": "patient", "sensemaker": "sensemaker"}
TOP_LEVEL = {"messages", "source", "external_id", "model", "ground_truth_diagnosis", "condition",
             "is_simulated", "metadata"}
MESSAGE_KEYS = {"role", "content", "stage", "name"}
MAX_LENGTHS = {"source": 100, "external_id": 200, "model": 200, "ground_truth_diagnosis": 300, "condition": 120}
MAX_METADATA_DEPTH = 20


@dataclass
class LineError:
    line: int
    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}


class ImportRejected(Exception):
    """Nothing was imported. `status` is 400 (bad lines), 409 (only duplicates) or 413 (too large)."""

    def __init__(self, message: str, errors: list[LineError] | None = None, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        self.status = status
        self.code = code


@dataclass
class Parsed:
    line: int
    source: str
    external_id: str
    model: str = ""
    ground_truth_diagnosis: str = ""
    condition: str = ""
    is_simulated: bool = False
    metadata: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)  # (role, stage, text)
    system_messages: list = field(default_factory=list)


@dataclass
class ImportResult:
    imported: list[dict]
    skipped: list[dict]

    def as_dict(self) -> dict:
        return {
            "imported": len(self.imported),
            "skipped_duplicates": len(self.skipped),
            "conversations": self.imported,
            "duplicates": self.skipped,
        }


def max_import_bytes() -> int:
    """The size limit of one import (settings.API_IMPORT_MAX_BYTES, 20 MB by default)."""
    return int(settings.API_IMPORT_MAX_BYTES)


def too_large_message(size: int | None, limit: int | None = None) -> str:
    limit = limit or max_import_bytes()
    mb = limit / (1024 * 1024)
    got = f" ({size / (1024 * 1024):.1f} MB)" if size is not None else ""
    return (f"The import is larger than the limit of {mb:g} MB{got}. Split it into several files; each file "
            f"is imported in one transaction.")


# A multipart upload adds a little framing around the file; allow for it in the declared length.
MULTIPART_ALLOWANCE = 64 * 1024


def too_large(size: int | None) -> ImportRejected:
    return ImportRejected(too_large_message(size), status=413, code="too_large")


def check_declared_length(meta) -> None:
    """Refuse an import before reading its body when the declared Content-Length is over the limit
    (the API and the import page both call this first)."""
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_import_bytes() + MULTIPART_ALLOWANCE:
        raise too_large(length)


def read_upload(upload) -> bytes:
    """The bytes of an uploaded file, refused with a 413 when it is over the limit."""
    if upload.size > max_import_bytes():
        raise too_large(upload.size)
    return upload.read()


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _bad_string(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (invalid Unicode)"
    return None


def _check_json_value(value, path: str, errors: list, line: int, depth: int = 0) -> None:
    """Metadata must be storable as JSONB: finite numbers, clean strings, bounded depth."""
    if depth > MAX_METADATA_DEPTH:
        errors.append(LineError(line, path, f"is nested deeper than {MAX_METADATA_DEPTH} levels"))
        return
    if isinstance(value, str):
        problem = _bad_string(value)
        if problem:
            errors.append(LineError(line, path, problem))
    elif isinstance(value, float) and not math.isfinite(value):
        errors.append(LineError(line, path, "must be a finite number"))
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _bad_string(key)
            if problem:
                errors.append(LineError(line, f"{path}.{key!r}", f"key {problem}"))
            _check_json_value(item, f"{path}.{key}", errors, line, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_value(item, f"{path}[{i}]", errors, line, depth + 1)


def _text_of(content, where: str, line: int, errors: list) -> str | None:
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                errors.append(LineError(line, f"{where}.content[{j}]",
                                        "content parts must be {\"type\": \"text\", \"text\": \"...\"}"))
                return None
            parts.append(part["text"])
        text = "\n\n".join(parts)
    elif content is None:
        errors.append(LineError(line, f"{where}.content", "is required", "missing"))
        return None
    else:
        errors.append(LineError(line, f"{where}.content", "must be a string or a list of text parts"))
        return None
    if not text.strip():
        errors.append(LineError(line, f"{where}.content", "is empty"))
        return None
    problem = _bad_string(text)
    if problem:
        errors.append(LineError(line, f"{where}.content", problem))
        return None
    return text


def _string_field(obj: dict, name: str, line: int, errors: list) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if name == "external_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append(LineError(line, name, "must be a string"))
        return ""
    value = value.strip()
    problem = _bad_string(value)
    if problem:
        errors.append(LineError(line, name, problem))
        return ""
    if len(value) > MAX_LENGTHS[name]:
        errors.append(LineError(line, name, f"is {len(value)} characters long; the limit is {MAX_LENGTHS[name]}",
                                "too_long"))
        return ""
    return value


def parse_line(obj, line: int, default_source: str, errors: list) -> Parsed | None:
    start = len(errors)
    if not isinstance(obj, dict):
        errors.append(LineError(line, "", "each line must be a JSON object"))
        return None
    for name in sorted(set(obj) - TOP_LEVEL):
        errors.append(LineError(line, name, f"unknown field; allowed: {', '.join(sorted(TOP_LEVEL))}",
                                "unknown_field"))
    source = _string_field(obj, "source", line, errors) or default_source
    external_id = _string_field(obj, "external_id", line, errors)
    parsed = Parsed(
        line=line, source=source, external_id=external_id,
        model=_string_field(obj, "model", line, errors),
        ground_truth_diagnosis=_string_field(obj, "ground_truth_diagnosis", line, errors),
        condition=_string_field(obj, "condition", line, errors),
    )
    simulated = obj.get("is_simulated", False)
    if not isinstance(simulated, bool):
        errors.append(LineError(line, "is_simulated", "must be true or false"))
    else:
        parsed.is_simulated = simulated
    metadata = obj.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        errors.append(LineError(line, "metadata", "must be a JSON object"))
    else:
        _check_json_value(metadata, "metadata", errors, line)
        parsed.metadata = metadata

    messages = obj.get("messages")
    if messages is None:
        errors.append(LineError(line, "messages", "is required", "missing"))
    elif not isinstance(messages, list) or not messages:
        errors.append(LineError(line, "messages", "must be a non-empty list of {role, content} objects"))
    else:
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, dict):
                errors.append(LineError(line, where, "must be an object with role and content"))
                continue
            unknown = sorted(k for k, v in message.items() if k not in MESSAGE_KEYS and v is not None)
            for key in unknown:
                errors.append(LineError(line, f"{where}.{key}", f"unsupported message field; allowed: "
                                        f"{', '.join(sorted(MESSAGE_KEYS))}", "unknown_field"))
            role = message.get("role")
            if role is None:
                errors.append(LineError(line, f"{where}.role", "is required", "missing"))
                continue
            if role != "system" and role not in ROLE_MAP:
                errors.append(LineError(
                    line, f"{where}.role",
                    f"{role!r} is not supported; use user (patient), assistant (sensemaker) or system", "wrong_role",
                ))
                continue
            text = _text_of(message.get("content"), where, line, errors)
            stage = message.get("stage")
            if stage is not None and (isinstance(stage, bool) or not isinstance(stage, int) or not 1 <= stage <= 6):
                errors.append(LineError(line, f"{where}.stage", "must be an integer from 1 to 6, or null"))
                stage = None
            if text is None:
                continue
            if role == "system":
                parsed.system_messages.append({"position": i, "content": text})
            else:
                parsed.messages.append((ROLE_MAP[role], stage, text))
        if not any(role == "sensemaker" for role, _, _ in parsed.messages) and len(errors) == start:
            errors.append(LineError(line, "messages", "needs at least one assistant (sensemaker) message to rate"))
    if len(errors) > start:
        return None
    if not parsed.external_id:
        canonical = json.dumps([parsed.messages, parsed.system_messages], ensure_ascii=False, separators=(",", ":"))
        parsed.external_id = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
    return parsed


def parse_jsonl(data: bytes, default_source: str = DEFAULT_SOURCE) -> tuple[list[Parsed], list[LineError]]:
    errors: list[LineError] = []
    parsed: list[Parsed] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(LineError(number, "", f"is not UTF-8 (byte {exc.start + 1})", "invalid_json"))
            continue
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            errors.append(LineError(number, "", f"is not valid JSON: {detail}", "invalid_json"))
            continue
        item = parse_line(obj, number, default_source, errors)
        if item is not None:
            parsed.append(item)
    return parsed, errors


def _duplicates_in_file(items: list[Parsed]) -> list[LineError]:
    first: dict[tuple[str, str], int] = {}
    errors = []
    for item in items:
        key = (item.source, item.external_id)
        if key in first:
            errors.append(LineError(item.line, "external_id",
                                    f"{item.external_id!r} from source {item.source!r} is also on line {first[key]}",
                                    "duplicate"))
        else:
            first[key] = item.line
    return errors


def _already_imported(items: list[Parsed]) -> dict[tuple[str, str], int]:
    if not items:
        return {}
    existing = {}
    ids = {item.external_id for item in items}
    sources = {item.source for item in items}
    rows = Conversation.objects.filter(
        source=Conversation.Source.IMPORTED, source_label__in=sources, external_id__in=ids
    ).values_list("source_label", "external_id", "id")
    for label, ext, pk in rows:
        existing[(label, ext)] = pk
    return existing


def _readability():
    try:
        from generation.readability import smog_grade, smog_grade_texts
    except ImportError:  # the readability module is optional for imports
        return None, None
    return smog_grade, smog_grade_texts


def import_conversations(actor, data: bytes, *, default_source: str = DEFAULT_SOURCE,
                         on_duplicate: str = "error") -> ImportResult:
    if len(data) > max_import_bytes():
        raise ImportRejected(too_large_message(len(data)), status=413, code="too_large")
    default_source = (default_source or DEFAULT_SOURCE).strip() or DEFAULT_SOURCE
    problem = _bad_string(default_source)
    if problem or len(default_source) > MAX_LENGTHS["source"]:
        raise ImportRejected(f"The default source {problem or 'is longer than 100 characters'}.", code="invalid")
    items, errors = parse_jsonl(data, default_source)
    errors += _duplicates_in_file(items)
    if not items and not errors:
        raise ImportRejected("The file holds no conversations (one JSON object per line is expected).",
                             code="empty")
    existing = _already_imported(items)
    skipped = []
    if existing:
        for item in items:
            pk = existing.get((item.source, item.external_id))
            if pk is None:
                continue
            if on_duplicate == "skip":
                skipped.append({"line": item.line, "external_id": item.external_id, "source": item.source,
                                "existing_id": pk})
            else:
                errors.append(LineError(item.line, "external_id",
                                        f"{item.external_id!r} from source {item.source!r} was already imported "
                                        f"(conversation {pk})", "duplicate"))
    if errors:
        errors.sort(key=lambda e: (e.line, e.field))
        lines = len({e.line for e in errors})
        only_duplicates = all(e.code == "duplicate" for e in errors)
        raise ImportRejected(
            f"{len(errors)} error{'s' if len(errors) != 1 else ''} on {lines} line{'s' if lines != 1 else ''}; "
            "nothing was imported.",
            errors, status=409 if only_duplicates else 400, code="duplicate" if only_duplicates else "invalid_import",
        )
    skip_lines = {s["line"] for s in skipped}
    todo = [item for item in items if item.line not in skip_lines]
    try:
        imported = _write(actor, todo)
    except IntegrityError:
        # Another import of the same ids committed meanwhile: report them as duplicates.
        clash = _already_imported(todo)
        raise ImportRejected(
            "Some conversations were imported by someone else at the same time; nothing was imported.",
            [LineError(item.line, "external_id", f"{item.external_id!r} was already imported", "duplicate")
             for item in todo if (item.source, item.external_id) in clash],
            status=409, code="duplicate",
        ) from None
    return ImportResult(imported=imported, skipped=skipped)


@transaction.atomic
def _write(actor, items: list[Parsed]) -> list[dict]:
    if not items:
        return []
    smog, smog_texts = _readability()
    now = timezone.now()
    who = getattr(actor, "username", None)
    conversations = []
    for item in items:
        sensemaker_texts = [text for role, _, text in item.messages if role == "sensemaker"]
        conversations.append(Conversation(
            source=Conversation.Source.IMPORTED,
            source_label=item.source,
            external_id=item.external_id,
            status=Conversation.Status.DONE,
            sensemaker_model=item.model,
            ground_truth_diagnosis=item.ground_truth_diagnosis,
            condition=item.condition,
            is_simulated=item.is_simulated,
            provenance={
                "import": {"source": item.source, "external_id": item.external_id, "model": item.model or None,
                           "imported_by": who, "imported_at": now.isoformat(), "line": item.line},
                "system_messages": item.system_messages,
                "metadata": item.metadata,
            },
            smog_grade=smog_texts(sensemaker_texts) if smog_texts else None,
            sensemaker_message_count=len(sensemaker_texts),
            created_at=now,
            finished_at=now,
        ))
    # One INSERT ... RETURNING per batch; the unique constraint stops a concurrent duplicate here.
    Conversation.objects.bulk_create(conversations, batch_size=1000)
    messages = []
    for item, conv in zip(items, conversations, strict=True):
        for index, (role, stage, text) in enumerate(item.messages):
            messages.append(Message(
                conversation=conv, index=index, role=role, stage=stage, text=text,
                smog_grade=smog(text) if smog and role == "sensemaker" else None,
            ))
    Message.objects.bulk_create(messages, batch_size=2000)
    record(actor, "conversations.import", conversations[0], new={
        "count": len(conversations), "first_id": conversations[0].pk, "last_id": conversations[-1].pk,
        "sources": sorted({item.source for item in items}),
    })
    return [{"line": item.line, "id": conv.pk, "source": item.source, "external_id": item.external_id}
            for item, conv in zip(items, conversations, strict=True)]
