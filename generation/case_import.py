"""Import case studies from CSV or JSONL: every error names its line and field, and nothing is
committed when any row is bad. Ids that already exist are reported and left unchanged."""
import csv
import io
import json
import re
from dataclasses import dataclass, field

from django.db import transaction

from core.text import describe, find_unstorable

from .models import CaseStudy, Goal, Intent

MAX_BYTES = 5 * 1024 * 1024
REQUIRED = ("id", "text", "ground_truth_diagnosis")
OPTIONAL = ("condition", "facts", "vital_facts", "intent", "goal")
# The columns' sizes in CaseStudy: longer values are errors, never silently cut. A case text goes into
# every prompt of its conversations; 20,000 characters is several pages, far beyond any vignette.
LIMITS = {"id": 100, "ground_truth_diagnosis": 300, "condition": 120, "text": 20_000}
# Ids travel into URLs, file names and exports: plain characters only (this also stops markup).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _rows(data: bytes, filename: str):
    """Yield (line number, dict) from a CSV (header row) or JSONL file. A CSV record that spans
    several lines (a quoted cell with newlines) is reported by its first line."""
    text = data.decode("utf-8-sig")
    if filename.lower().endswith((".jsonl", ".json", ".ndjson")):
        # Split on newlines only: str.splitlines() also splits on U+2028 and other separators that JSON
        # allows inside strings, which would break a valid line in two.
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, ValueError(f"line {number}: not valid JSON ({exc.msg})")
                continue
            yield number, row if isinstance(row, dict) else ValueError(f"line {number}: expected a JSON object")
        return
    # csv.reader rather than DictReader: DictReader files surplus cells under the key None and
    # reports only the line a record ends on.
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, ValueError(f"line 1: not valid CSV ({exc})")
        return
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        yield 1, ValueError(f"line 1: the header lacks the column(s) {', '.join(missing)}")
        return
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        yield 1, ValueError(f"line 1: the header repeats the column(s) {', '.join(repeated)}")
        return
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, ValueError(f"line {start}: not valid CSV ({exc})")
            return
        if not cells:
            continue  # a blank line
        if len(cells) > len(header):
            yield start, ValueError(
                f"line {start}: more cells than header columns ({len(cells)} cells, {len(header)} columns)")
            continue
        yield start, dict(zip(header, cells + [None] * (len(header) - len(cells)), strict=True))


def _as_list(value, number, name, errors):
    if value in (None, ""):
        return []
    if isinstance(value, str):
        # In CSV, facts are one per line inside the cell (or a JSON list).
        stripped = value.strip()
        if not stripped.startswith("["):
            return [line.strip() for line in stripped.splitlines() if line.strip()]
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            errors.append(f"line {number}, field '{name}': not a valid JSON list")
            return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"line {number}, field '{name}': expected a list of strings")
        return []
    return [v.strip() for v in value if v.strip()]


def _type_errors(row: dict, number: int) -> list[str]:
    """JSON values keep their types; only text is text (an id may also be a whole number).
    Anything else would be stringified into the case ("[1]", "{'a': 1}")."""
    errors = []
    for name in (*REQUIRED, "condition", "intent", "goal"):
        value = row.get(name)
        if value is None or isinstance(value, str):
            continue
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            continue
        expected = "a string or a whole number" if name == "id" else "a string"
        errors.append(f"line {number}, field '{name}': expected {expected}, got {_json_type(value)}")
    return errors


def _text(row: dict, name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()


def _json_type(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _encoding_error(data: bytes, exc: UnicodeDecodeError) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "The file is UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8."
    line = data[: exc.start].count(b"\n") + 1
    return (f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); the file mixes encodings or is not "
            "UTF-8. Save it as UTF-8.")


def parse_cases(data: bytes, filename: str) -> tuple[list[dict], list[str]]:
    errors, cases, seen = [], [], {}
    if len(data) > MAX_BYTES:
        return [], [f"The file is {len(data) // 1024} KB; the limit is {MAX_BYTES // 1024} KB."]
    try:
        rows = list(_rows(data, filename))
    except UnicodeDecodeError as exc:
        return [], [_encoding_error(data, exc)]
    if not rows:
        return [], ["The file holds no rows."]
    for number, row in rows:
        if isinstance(row, ValueError):
            errors.append(str(row))
            continue
        row_errors = _type_errors(row, number) or describe(find_unstorable(row), f"line {number}, ")
        if row_errors:
            errors.extend(row_errors)
            continue
        for name in REQUIRED:
            if not _text(row, name):
                row_errors.append(f"line {number}, field '{name}': required")
        unknown = set(row) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            row_errors.append(f"line {number}: unknown field(s) {', '.join(sorted(unknown))}")
        case_id = _text(row, "id")
        for name, limit in LIMITS.items():
            if len(_text(row, name)) > limit:
                row_errors.append(f"line {number}, field '{name}': at most {limit} characters")
        if case_id and not ID_PATTERN.fullmatch(case_id):
            row_errors.append(f"line {number}, field 'id': use letters, digits, '.', '_', ':' or '-' only "
                              f"(starting with a letter or digit), got {case_id[:40]!r}")
        if case_id and case_id in seen:
            row_errors.append(f"line {number}, field 'id': '{case_id}' already appears on line {seen[case_id]}")
        seen.setdefault(case_id, number)
        intent, goal = _text(row, "intent"), _text(row, "goal")
        if intent and intent not in Intent.values:
            row_errors.append(f"line {number}, field 'intent': must be one of {', '.join(Intent.values)}")
        if goal and goal not in Goal.values:
            row_errors.append(f"line {number}, field 'goal': must be one of {', '.join(Goal.values)}")
        facts = _as_list(row.get("facts"), number, "facts", row_errors)
        vital = _as_list(row.get("vital_facts"), number, "vital_facts", row_errors)
        errors.extend(row_errors)
        if not row_errors:
            cases.append({
                "external_id": case_id, "text": _text(row, "text"),
                "ground_truth_diagnosis": _text(row, "ground_truth_diagnosis"),
                "condition": _text(row, "condition"),
                "facts": facts, "vital_facts": vital, "intent": intent, "goal": goal,
            })
    return cases, errors


def import_cases(data: bytes, filename: str, *, is_demo: bool = False) -> ImportReport:
    report = ImportReport()
    cases, report.errors = parse_cases(data, filename)
    if report.errors:
        return report
    existing = set(CaseStudy.objects.filter(external_id__in=[c["external_id"] for c in cases])
                   .values_list("external_id", flat=True))
    with transaction.atomic():
        for case in cases:
            if case["external_id"] in existing:
                report.duplicates.append(case["external_id"])
                continue
            ready = bool(case["facts"] and case["intent"] and case["goal"])
            CaseStudy.objects.create(
                **case, is_demo=is_demo,
                facts_status=CaseStudy.FactsStatus.EXTRACTED if ready else CaseStudy.FactsStatus.PENDING,
            )
            report.created.append(case["external_id"])
    return report
