"""The 17 bad case-study imports of issue 14, one per kind (some kinds in both CSV and JSONL), each with
the words its error must contain. Used by scripts/security_drill.py (against a running server) and by
tests/generation/test_bad_case_imports.py (through the real import page)."""
import json
from collections.abc import Callable
from dataclasses import dataclass

HEADER = "id,text,ground_truth_diagnosis\n"
ROW = "A 40-year-old reports two months of low mood and early waking."


def _jsonl(*rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


@dataclass(frozen=True)
class BadImport:
    kind: str
    filename: str
    make: Callable[[], bytes]
    expect: str  # a fragment of the error the person must see
    slow: bool = False  # the 50 MB file


BAD_CASE_IMPORTS = [
    BadImport("missing columns (CSV)", "cases.csv", lambda: f"id,text\nb1,{ROW}\n".encode(),
              "lacks the column(s) ground_truth_diagnosis"),
    BadImport("missing field (JSONL)", "cases.jsonl", lambda: _jsonl({"id": "b2", "text": ROW}),
              "line 1, field 'ground_truth_diagnosis': required"),
    BadImport("wrong types (JSONL)", "cases.jsonl",
              lambda: _jsonl({"id": "b3", "text": ["not", "text"], "ground_truth_diagnosis": "MDD"}),
              "line 1, field 'text': expected a string, got a list"),
    BadImport("wrong enumeration (CSV)", "cases.csv",
              lambda: f"id,text,ground_truth_diagnosis,intent\nb4,{ROW},MDD,cure_me\n".encode(),
              "line 2, field 'intent': must be one of"),
    BadImport("UTF-16 file with a byte-order mark", "cases.csv",
              lambda: (HEADER + f"b5,{ROW},MDD\n").encode("utf-16"), "UTF-16"),
    BadImport("mixed encodings", "cases.csv",
              lambda: (HEADER + f"b6,{ROW},MDD\n").encode() + "b7,Patient from Malmö,MDD\n".encode("latin-1"),
              "line 3: not UTF-8"),
    BadImport("duplicate ids", "cases.csv", lambda: (HEADER + f"b8,{ROW},MDD\nb8,{ROW},GAD\n").encode(),
              "line 3, field 'id': 'b8' already appears on line 2"),
    BadImport("50 MB file", "cases.csv", lambda: (HEADER + f"b9,{ROW},MDD\n").encode() + b"x" * (50 * 1024 * 1024),
              "the limit is 5120 KB", slow=True),
    BadImport("100,000-character line", "cases.csv", lambda: (HEADER + f"b10,{'a' * 100_000},MDD\n").encode(),
              "line 2, field 'text': at most 20000 characters"),
    BadImport("NUL character (CSV)", "cases.csv", lambda: (HEADER + f"b11,{ROW}\x00,MDD\n").encode(),
              "line 2, field 'text': contains a NUL character"),
    BadImport("NUL character (JSONL)", "cases.jsonl",
              lambda: _jsonl({"id": "b12", "text": ROW, "ground_truth_diagnosis": "MDD\u0000"}),
              "line 1, field 'ground_truth_diagnosis': contains a NUL character"),
    BadImport("lone surrogate (JSONL)", "cases.jsonl",
              lambda: b'{"id": "b13", "text": "low mood \\ud800", "ground_truth_diagnosis": "MDD"}',
              "line 1, field 'text': contains a lone surrogate (U+D800)"),
    BadImport("script injection in the id", "cases.csv",
              lambda: (HEADER + f"<script>alert(1)</script>,{ROW},MDD\n").encode(),
              "line 2, field 'id': use letters, digits"),
    BadImport("broken JSON", "cases.jsonl",
              lambda: _jsonl({"id": "b14", "text": ROW, "ground_truth_diagnosis": "MDD"}) + b'\n{"id": "b15", "text": ',
              "line 2: not valid JSON"),
    BadImport("surplus cells", "cases.csv", lambda: (HEADER + f"b16,{ROW},MDD,surplus\n").encode(),
              "line 2: more cells than header columns"),
    BadImport("empty file", "cases.csv", lambda: b"", "The submitted file is empty"),
    BadImport("blank lines only (JSONL)", "cases.jsonl", lambda: b"\n\n", "The file holds no rows"),
]
