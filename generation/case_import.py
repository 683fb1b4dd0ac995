"""Import case studies from CSV or JSONL: every error names its line and field, and nothing is
committed when any row is bad. Ids that already exist are reported and left unchanged."""
import csv
import io
import json
from dataclasses import dataclass, field

from django.db import transaction

from .models import CaseStudy, Goal, Intent

MAX_BYTES = 5 * 1024 * 1024
REQUIRED = ("id", "text", "ground_truth_diagnosis")
OPTIONAL = ("condition", "facts", "vital_facts", "intent", "goal")


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _rows(data: bytes, filename: str):
    """Yield (line number, dict) from a CSV (header row) or JSONL file."""
    text = data.decode("utf-8-sig")
    if filename.lower().endswith((".jsonl", ".json", ".ndjson")):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, ValueError(f"line {number}: not valid JSON ({exc.msg})")
                continue
            yield number, row if isinstance(row, dict) else ValueError(f"line {number}: expected a JSON object")
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            yield 1, ValueError(f"line 1: the header lacks the column(s) {', '.join(missing)}")
            return
        for row in reader:
            yield reader.line_num, row


def _as_list(value, number, name, errors):
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        # In CSV, facts are one per line inside the cell (or a JSON list).
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                return [str(v) for v in json.loads(stripped)]
            except json.JSONDecodeError:
                errors.append(f"line {number}, field '{name}': not a valid JSON list")
                return []
        return [line.strip() for line in stripped.splitlines() if line.strip()]
    errors.append(f"line {number}, field '{name}': expected a list of strings")
    return []


def parse_cases(data: bytes, filename: str) -> tuple[list[dict], list[str]]:
    errors, cases, seen = [], [], {}
    if len(data) > MAX_BYTES:
        return [], [f"The file is {len(data) // 1024} KB; the limit is {MAX_BYTES // 1024} KB."]
    try:
        rows = list(_rows(data, filename))
    except UnicodeDecodeError:
        return [], ["The file is not UTF-8 text."]
    if not rows:
        return [], ["The file holds no rows."]
    for number, row in rows:
        if isinstance(row, ValueError):
            errors.append(str(row))
            continue
        row_errors = []
        for name in REQUIRED:
            if not str(row.get(name) or "").strip():
                row_errors.append(f"line {number}, field '{name}': required")
        unknown = set(row) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            row_errors.append(f"line {number}: unknown field(s) {', '.join(sorted(unknown))}")
        case_id = str(row.get("id") or "").strip()
        if len(case_id) > 100:
            row_errors.append(f"line {number}, field 'id': at most 100 characters")
        if len(str(row.get("ground_truth_diagnosis") or "")) > 300:
            row_errors.append(f"line {number}, field 'ground_truth_diagnosis': at most 300 characters")
        if case_id and case_id in seen:
            row_errors.append(f"line {number}, field 'id': '{case_id}' already appears on line {seen[case_id]}")
        seen.setdefault(case_id, number)
        intent = str(row.get("intent") or "").strip()
        goal = str(row.get("goal") or "").strip()
        if intent and intent not in Intent.values:
            row_errors.append(f"line {number}, field 'intent': must be one of {', '.join(Intent.values)}")
        if goal and goal not in Goal.values:
            row_errors.append(f"line {number}, field 'goal': must be one of {', '.join(Goal.values)}")
        facts = _as_list(row.get("facts"), number, "facts", row_errors)
        vital = _as_list(row.get("vital_facts"), number, "vital_facts", row_errors)
        errors.extend(row_errors)
        if not row_errors:
            cases.append({
                "external_id": case_id, "text": str(row["text"]).strip(),
                "ground_truth_diagnosis": str(row["ground_truth_diagnosis"]).strip(),
                "condition": str(row.get("condition") or "").strip()[:120],
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
