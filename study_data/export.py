"""Streamed export of a scored campaign as JSONL, CSV (long or wide) or Parquet.

Memory stays flat however large the campaign: every table is read through a PostgreSQL server-side
(named) cursor in chunks, in conversation-id order, and merge-joined in Python one conversation at a
time. All cursors run inside one REPEATABLE READ, READ ONLY transaction, so a campaign that is being
rated while it is exported still yields one consistent snapshot.

One record per conversation (field meanings in study_data/datasheet.py RECORD_FIELDS; Parquet types in
`arrow_schema()`; both are served by the datasheet): conversation metadata and provenance, the
messages, every SUBMITTED rating (drafts are work in progress, not data) with per-axis values and
comments, time on task and rubric version, the per-conversation aggregate per axis, and every safety
flag on the conversation. Raters appear only as their stable pseudonyms. LLM judge scores come in their
own field, rows and columns with their provenance, never among the clinicians' (judge_export.py).
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from operator import itemgetter

from django.db import connection, transaction

from rating.models import Campaign, RubricAxis

from . import judge_export

try:  # about ten times faster than the standard library's encoder; the export's main cost in Python
    import orjson
except ImportError:  # pragma: no cover - pinned in pyproject.toml; the standard library still works
    orjson = None

# 2: scores carry "category" (the category key on nominal axes, null elsewhere); long CSV has its column.
EXPORT_SCHEMA_VERSION = "2"
DEFAULT_ITERSIZE = 2000
# Output is handed to the server in pieces of about this size: few enough writes, small enough buffers.
CHUNK_BYTES = 256 * 1024
PARQUET_ROW_GROUP = 1000

# Table names are Django's defaults for these models (checked by tests/api/test_api_export.py).
SQL_CONVERSATIONS = """
SELECT c.id, c.source, c.source_label, c.external_id, c.status, c.is_simulated, c.job_id, j.name,
       cs.external_id, c.ground_truth_diagnosis, c.condition, p.trait, p.literacy, p.intent, p.goal,
       c.sensemaker_model, c.patient_model, c.helper_model, c.prompt_version, c.seed, c.smog_grade,
       c.sensemaker_message_count, c.created_at, c.finished_at, ci.is_gold, ci.gold_scores::text,
       c.provenance::text
FROM rating_campaignitem ci
JOIN generation_conversation c ON c.id = ci.conversation_id
LEFT JOIN generation_generationjob j ON j.id = c.job_id
LEFT JOIN generation_casestudy cs ON cs.id = c.case_id
LEFT JOIN generation_persona p ON p.id = c.persona_id
WHERE ci.campaign_id = %(campaign)s
ORDER BY ci.conversation_id
"""
# The messages are the bulk of an export: PostgreSQL renders each conversation's as one JSON array
# (in C, on the database's own core, while Python works on the previous conversation). string_agg
# rather than json_agg, whose output has line breaks, which JSONL cannot have.
SQL_MESSAGES = """
SELECT m.conversation_id,
       '[' || string_agg(json_build_object('index', m."index", 'role', m.role, 'stage', m.stage,
                                           'text', m.text, 'smog_grade', m.smog_grade)::text,
                         ',' ORDER BY m."index") || ']'
FROM rating_campaignitem ci
JOIN generation_message m ON m.conversation_id = ci.conversation_id
WHERE ci.campaign_id = %(campaign)s
GROUP BY m.conversation_id
ORDER BY m.conversation_id
"""
# One row per submitted rating with its scores as parallel arrays (axis ids, values, comments). The
# scores are grouped by a hash aggregate without ORDER BY (ordered aggregates made PostgreSQL sort 2 M
# rows twice); every aggregate of a group sees its rows in the same order, so the arrays line up, and
# Python puts them in the rubric's axis order.
SQL_RATINGS = """
SELECT ci.conversation_id, r.id, u.pseudonym, rb.slug, rb.version, r.submitted_at, a.active_seconds,
       r.revision, r.overall_comment, sc.axis_ids, sc."values", sc.comments, sc.categories
FROM rating_assignment a
JOIN rating_rating r ON r.assignment_id = a.id
JOIN rating_campaignitem ci ON ci.id = a.item_id
JOIN accounts_user u ON u.id = a.rater_id
JOIN rating_rubric rb ON rb.id = r.rubric_id
LEFT JOIN (
    SELECT s.rating_id, array_agg(s.axis_id) AS axis_ids, array_agg(s.value) AS "values",
           array_agg(s.comment) AS comments, array_agg(s.category) AS categories
    FROM rating_axisscore s
    JOIN rating_rating sr ON sr.id = s.rating_id
    JOIN rating_assignment sa ON sa.id = sr.assignment_id
    WHERE sa.campaign_id = %(campaign)s AND sr.status = 'submitted'
    GROUP BY s.rating_id
) sc ON sc.rating_id = r.id
WHERE a.campaign_id = %(campaign)s AND r.status = 'submitted'
ORDER BY ci.conversation_id, r.id
"""
SQL_NOTES = """
SELECT ci.conversation_id, n.rating_id, m."index", n.problematic, n.note
FROM rating_assignment a
JOIN rating_rating r ON r.assignment_id = a.id
JOIN rating_campaignitem ci ON ci.id = a.item_id
JOIN rating_messagenote n ON n.rating_id = r.id
JOIN generation_message m ON m.id = n.message_id
WHERE a.campaign_id = %(campaign)s AND r.status = 'submitted'
ORDER BY ci.conversation_id, n.rating_id, m."index"
"""
SQL_FLAGS = """
SELECT f.conversation_id, f.id, f.campaign_id, f.category, f.status, f.reason, u.pseudonym, f.created_at,
       fm."index"
FROM rating_safetyflag f
JOIN accounts_user u ON u.id = f.raised_by_id
LEFT JOIN generation_message fm ON fm.id = f.message_id
WHERE f.conversation_id IN (SELECT conversation_id FROM rating_campaignitem WHERE campaign_id = %(campaign)s)
ORDER BY f.conversation_id, f.id
"""
# The fields whose value is JSON text straight from the database (see RawJSON).
RAW_FIELDS = ("gold_scores", "provenance", "messages")


class ExportError(ValueError):
    pass


class RawJSON(str):
    """JSON text rendered by PostgreSQL, to be written into the output as it is."""


# --- reading ---------------------------------------------------------------------------------------


def _grouped(cursor) -> Iterator[tuple[int, list]]:
    """(conversation id, its rows) from rows sorted by their first column."""
    for key, rows in groupby(cursor, key=itemgetter(0)):
        yield key, list(rows)


class _Side:
    """One auxiliary stream, advanced in step with the conversations (a merge join)."""

    __slots__ = ("groups", "head")

    def __init__(self, cursor):
        self.groups = _grouped(cursor)
        self.head = next(self.groups, None)

    def take(self, conversation_id: int) -> list:
        head = self.head
        while head is not None and head[0] < conversation_id:
            head = next(self.groups, None)
        if head is not None and head[0] == conversation_id:
            self.head = next(self.groups, None)
            return head[1]
        self.head = head
        return []


def campaign_axes(campaign: Campaign) -> list[RubricAxis]:
    """Rated axes of every rubric version used in the campaign (its own first), in form order, one per key."""
    from rating.models import Rating

    rubric_ids = [campaign.rubric_id, *Rating.objects.filter(assignment__campaign=campaign)
                  .exclude(rubric_id=campaign.rubric_id).values_list("rubric_id", flat=True).distinct()]
    axes = {a.pk: a for a in RubricAxis.objects.filter(rubric_id__in=rubric_ids)}
    ordered, seen = [], set()
    for rubric_id in rubric_ids:
        for axis in sorted((a for a in axes.values() if a.rubric_id == rubric_id), key=lambda a: (a.order, a.pk)):
            if axis.key not in seen and axis.is_rated:
                seen.add(axis.key)
                ordered.append(axis)
    return ordered


def _axis_lookup(campaign: Campaign) -> dict[int, tuple[tuple[int, int], str]]:
    """axis id -> (position in the form, key) for every axis a rating of the campaign may use."""
    from rating.models import Rating

    rubric_ids = {campaign.rubric_id, *Rating.objects.filter(assignment__campaign=campaign)
                  .values_list("rubric_id", flat=True).distinct()}
    return {a.pk: ((a.order, a.pk), a.key) for a in RubricAxis.objects.filter(rubric_id__in=rubric_ids)}


def _iso(value):
    return None if value is None else value.isoformat()


def _same(value):
    return value


@contextlib.contextmanager
def consistent_snapshot():
    """One REPEATABLE READ, READ ONLY transaction: every query inside sees the same committed state,
    however long the stream takes and whatever raters submit meanwhile."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def iter_records(campaign: Campaign, *, typed: bool = False, itersize: int = DEFAULT_ITERSIZE) -> Iterator[dict]:
    """Yield one dict per conversation of the campaign, in conversation-id order.

    By default date-times are ISO 8601 strings and the RAW_FIELDS hold RawJSON text (for JSONL and
    CSV). typed=True (Parquet) keeps datetime objects and parses the messages into dicts.
    """
    campaign_id = campaign.pk
    axes = _axis_lookup(campaign)
    orders: dict[tuple, tuple] = {}  # the few distinct axis-id sequences -> how to put them in form order
    stamp = _same if typed else _iso
    with consistent_snapshot():
        connection.ensure_connection()
        raw = connection.connection
        opened = []

        def named(sql):
            cursor = raw.cursor(name=f"mhsd_export_{uuid.uuid4().hex[:12]}")
            cursor.itersize = itersize
            cursor.execute(sql, {"campaign": campaign_id})
            opened.append(cursor)
            return cursor

        try:
            conversations = named(SQL_CONVERSATIONS)
            messages = _Side(named(SQL_MESSAGES))
            ratings = _Side(named(SQL_RATINGS))
            notes = _Side(named(SQL_NOTES))
            flags = _Side(named(SQL_FLAGS))
            judges = _Side(named(judge_export.SQL_JUDGE))
            for row in conversations:
                conv_id = row[0]
                record = _record(campaign_id, row, ratings.take(conv_id), notes.take(conv_id), flags.take(conv_id),
                                 axes, orders, stamp)
                record["judge_scores"] = judge_export.entries(judges.take(conv_id), stamp)
                rendered = messages.take(conv_id)
                record["messages"] = RawJSON(rendered[0][1] if rendered else "[]")
                if typed:
                    record["messages"] = json.loads(record["messages"])
                yield record
        finally:
            for cursor in opened:
                if not cursor.closed:
                    cursor.close()


def _form_order(axis_ids: tuple, axes: dict) -> tuple:
    """(index permutation, keys, positions) putting one rating's scores in the rubric's order."""
    found = [(*axes.get(axis_id, ((1 << 30, axis_id), str(axis_id))), i) for i, axis_id in enumerate(axis_ids)]
    found.sort()
    return tuple(i for _, _, i in found), tuple(key for _, key, _ in found), tuple(pos for pos, _, _ in found)


def _record(campaign_id, row, rating_rows, note_rows, flag_rows, axes, orders, stamp):
    (conv_id, source, source_label, external_id, status, is_simulated, job_id, job_name, case_id, truth,
     condition, trait, literacy, intent, goal, sensemaker, patient, helper, prompt_version, seed, smog,
     n_sensemaker, created_at, finished_at, is_gold, gold_scores, provenance) = row

    notes_by_rating: dict[int, list] = {}
    for _, rating_id, index, problematic, note in note_rows:
        notes_by_rating.setdefault(rating_id, []).append(
            {"message_index": index, "problematic": problematic, "note": note}
        )
    ratings = []
    per_axis: dict[str, list] = {}  # key -> [form position, value, value, ...] for the aggregate
    for (_, rating_id, rater, slug, version, submitted_at, active_seconds, revision, comment, axis_ids, values,
         comments, categories) in rating_rows:
        scores = []
        if axis_ids:
            ids = tuple(axis_ids)
            order = orders.get(ids)
            if order is None:
                order = orders[ids] = _form_order(ids, axes)
            for i, key, position in zip(*order, strict=True):
                value = values[i]
                scores.append({"axis": key, "value": value, "category": categories[i], "comment": comments[i]})
                if value is not None:
                    per_axis.setdefault(key, [position]).append(value)
        ratings.append({
            "rating_id": rating_id,
            "rater": rater,
            "rubric_slug": slug,
            "rubric_version": version,
            "submitted_at": stamp(submitted_at),
            "active_seconds": active_seconds,
            "revision": revision,
            "overall_comment": comment,
            "scores": scores,
            "message_notes": notes_by_rating.get(rating_id, []),
        })
    aggregate = []
    for key, (_position, *values) in sorted(per_axis.items(), key=lambda item: item[1][0]):
        n = len(values)
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
        aggregate.append({"axis": key, "mean": mean, "sd": sd, "n": n})
    return {
        "conversation_id": conv_id,
        "campaign_id": campaign_id,
        "source": source,
        "source_label": source_label,
        "external_id": external_id,
        "status": status,
        "is_simulated": is_simulated,
        "job_id": job_id,
        "job_name": job_name,
        "case_id": case_id,
        "ground_truth_diagnosis": truth,
        "condition": condition,
        "persona": None if trait is None else {"trait": trait, "literacy": literacy, "intent": intent, "goal": goal},
        "models": {"sensemaker": sensemaker, "patient": patient, "helper": helper},
        "prompt_version": prompt_version,
        "seed": seed,
        "smog_grade": smog,
        "sensemaker_message_count": n_sensemaker,
        "created_at": stamp(created_at),
        "finished_at": stamp(finished_at),
        "is_gold": is_gold,
        "n_raters": len(ratings),
        "ratings": ratings,
        "aggregate": aggregate,
        "safety_flags": [
            {"flag_id": flag_id, "campaign_id": flag_campaign, "category": category, "status": fstatus,
             "reason": reason, "raised_by": raised_by, "created_at": stamp(flagged_at), "message_index": flag_message}
            for _, flag_id, flag_campaign, category, fstatus, reason, raised_by, flagged_at, flag_message in flag_rows
        ],
        # JSON text from the database, last (the JSONL writer appends them as they are).
        "gold_scores": RawJSON(gold_scores),
        "provenance": RawJSON(provenance),
    }


# --- writers ---------------------------------------------------------------------------------------


def _json_encoder():
    """obj -> compact UTF-8 JSON bytes (orjson when installed; non-finite floats are not expected:
    the rating services accept only finite scores)."""
    if orjson is not None:
        return orjson.dumps
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    return lambda obj: encode(obj).encode()


def jsonl_stream(campaign: Campaign, **kwargs) -> Iterator[bytes]:
    dumps = _json_encoder()
    raw_keys = [f',"{name}":'.encode() for name in RAW_FIELDS]
    buffer, size = [], 0
    for record in iter_records(campaign, **kwargs):
        # The database's JSON text (messages, provenance, gold scores) is appended as it is.
        tail = [part for key, name in zip(raw_keys, RAW_FIELDS, strict=True)
                for part in (key, record.pop(name).encode())]
        line = b"".join([dumps(record)[:-1], *tail, b"}\n"])
        buffer.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


META_COLUMNS = [
    "campaign_id", "conversation_id", "source", "source_label", "external_id", "is_simulated", "job_id",
    "case_id", "sensemaker_model", "patient_model", "helper_model", "prompt_version", "seed", "persona_trait",
    "persona_literacy", "persona_intent", "persona_goal", "condition", "ground_truth_diagnosis",
    "conversation_smog_grade", "is_gold", "n_raters", "safety_flag_count",
]
LONG_COLUMNS = [
    *META_COLUMNS, "rater", "rating_id", "rubric_slug", "rubric_version", "submitted_at", "active_seconds",
    "revision", "axis", "value", "category", "comment", "axis_mean", "axis_n", "overall_comment",
    *judge_export.LONG_COLUMNS,
]


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip form
    return value


def _meta(record: dict) -> list:
    persona = record["persona"] or {}
    models = record["models"]
    return [
        record["campaign_id"], record["conversation_id"], record["source"], record["source_label"],
        record["external_id"], record["is_simulated"], record["job_id"], record["case_id"], models["sensemaker"],
        models["patient"], models["helper"], record["prompt_version"], record["seed"], persona.get("trait"),
        persona.get("literacy"), persona.get("intent"), persona.get("goal"), record["condition"],
        record["ground_truth_diagnosis"], record["smog_grade"], record["is_gold"], record["n_raters"],
        len(record["safety_flags"]),
    ]


class _Lines:
    """A csv.writer target whose text is collected and handed on in chunks."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def row(self, values) -> str | None:
        self.writer.writerow([_csv_value(v) for v in values])
        if self.buffer.tell() >= CHUNK_BYTES:
            return self.take()
        return None

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def csv_long_stream(campaign: Campaign, **kwargs) -> Iterator[bytes]:
    """One row per conversation x submitted rating x axis (only rated conversations have rows)."""
    lines = _Lines()
    lines.row(LONG_COLUMNS)
    for record in iter_records(campaign, **kwargs):
        meta = _meta(record)
        aggregate = {a["axis"]: a for a in record["aggregate"]}
        for rating in record["ratings"]:
            head = [rating["rater"], rating["rating_id"], rating["rubric_slug"], rating["rubric_version"],
                    rating["submitted_at"], rating["active_seconds"], rating["revision"]]
            for score in rating["scores"]:
                agg = aggregate.get(score["axis"], {})
                chunk = lines.row([*meta, *head, score["axis"], score["value"], score["category"], score["comment"],
                                   agg.get("mean"),
                                   agg.get("n"), rating["overall_comment"], *judge_export.clinician_tail()])
                if chunk:
                    yield chunk.encode()
        for row in judge_export.long_rows(record, meta):
            chunk = lines.row(row)
            if chunk:
                yield chunk.encode()
    yield lines.take().encode()


def wide_columns(axis_keys: list[str], max_raters: int, judge_runs: list[dict] = ()) -> list[str]:
    columns = [*META_COLUMNS, "n_messages", "safety_categories"]
    for key in axis_keys:
        columns += [f"{key}__mean", f"{key}__sd", f"{key}__n"]
    for slot in range(1, max_raters + 1):
        prefix = f"rater{slot}"
        columns += [prefix, f"{prefix}__rating_id", f"{prefix}__rubric_version", f"{prefix}__submitted_at",
                    f"{prefix}__active_seconds", f"{prefix}__overall_comment"]
        for key in axis_keys:
            columns += [f"{prefix}__{key}", f"{prefix}__{key}__comment"]
    columns += judge_export.wide_columns(judge_runs)
    columns.append("messages_json")
    return columns


def max_raters(campaign: Campaign) -> int:
    from django.db.models import Count

    from rating.models import Rating

    top = (
        Rating.objects.filter(assignment__campaign=campaign, status=Rating.Status.SUBMITTED)
        .values("assignment__item_id").annotate(n=Count("id")).order_by("-n").values_list("n", flat=True).first()
    )
    return top or 0


def csv_wide_stream(campaign: Campaign, **kwargs) -> Iterator[bytes]:
    """One row per conversation: metadata, per-axis aggregates, then each rater's scores in slots
    rater1..raterK (ordered by rating id), and the messages as a JSON array."""
    with consistent_snapshot():
        # Counted in the same snapshot as the rows: a rating submitted meanwhile cannot overflow the slots.
        axis_keys = [a.key for a in campaign_axes(campaign)]
        slots = max_raters(campaign)
        judge_runs = judge_export.campaign_runs(campaign)
        yield from _csv_wide_rows(campaign, axis_keys, slots, judge_runs, **kwargs)


def _csv_wide_rows(campaign: Campaign, axis_keys: list[str], slots: int, judge_runs: list[dict],
                   **kwargs) -> Iterator[bytes]:
    lines = _Lines()
    lines.row(wide_columns(axis_keys, slots, judge_runs))
    for record in iter_records(campaign, **kwargs):
        aggregate = {a["axis"]: a for a in record["aggregate"]}
        # record["messages"] is PostgreSQL's JSON text here: count the messages, not its characters.
        row = [*_meta(record), len(json.loads(record["messages"])),
               ";".join(sorted({f["category"] for f in record["safety_flags"]}))]
        for key in axis_keys:
            agg = aggregate.get(key, {})
            row += [agg.get("mean"), agg.get("sd"), agg.get("n")]
        ratings = record["ratings"]
        for slot in range(slots):
            if slot < len(ratings):
                rating = ratings[slot]
                scores = {s["axis"]: s for s in rating["scores"]}
                row += [rating["rater"], rating["rating_id"], rating["rubric_version"], rating["submitted_at"],
                        rating["active_seconds"], rating["overall_comment"]]
                for key in axis_keys:
                    score = scores.get(key, {})
                    # A nominal axis's column holds its category key (an ordinal one's stays a number).
                    answer = score.get("category")
                    row += [score.get("value") if answer is None else answer, score.get("comment")]
            else:
                row += [None] * (6 + 2 * len(axis_keys))
        row += judge_export.wide_values(record, judge_runs)
        row.append(record["messages"])  # the JSON text PostgreSQL rendered
        chunk = lines.row(row)
        if chunk:
            yield chunk.encode()
    yield lines.take().encode()


# --- Parquet ---------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def arrow_schema():
    """The Arrow schema of the Parquet export (pyarrow is imported only when Parquet is asked for)."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([
        pa.field("conversation_id", pa.int64(), nullable=False),
        pa.field("campaign_id", pa.int64(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("source_label", pa.string()),
        pa.field("external_id", pa.string()),
        pa.field("status", pa.string()),
        pa.field("is_simulated", pa.bool_()),
        pa.field("job_id", pa.int64()),
        pa.field("job_name", pa.string()),
        pa.field("case_id", pa.string()),
        pa.field("ground_truth_diagnosis", pa.string()),
        pa.field("condition", pa.string()),
        pa.field("persona", pa.struct([("trait", pa.string()), ("literacy", pa.string()), ("intent", pa.string()),
                                       ("goal", pa.string())])),
        pa.field("models", pa.struct([("sensemaker", pa.string()), ("patient", pa.string()), ("helper", pa.string())])),
        pa.field("prompt_version", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("smog_grade", pa.float64()),
        pa.field("sensemaker_message_count", pa.int32()),
        pa.field("created_at", ts),
        pa.field("finished_at", ts),
        pa.field("is_gold", pa.bool_()),
        pa.field("gold_scores", pa.string(), metadata={"encoding": "json"}),
        pa.field("provenance", pa.string(), metadata={"encoding": "json"}),
        pa.field("messages", pa.list_(pa.struct([
            ("index", pa.int32()), ("role", pa.string()), ("stage", pa.int16()), ("text", pa.string()),
            ("smog_grade", pa.float64()),
        ]))),
        pa.field("n_raters", pa.int32()),
        pa.field("ratings", pa.list_(pa.struct([
            ("rating_id", pa.int64()), ("rater", pa.string()), ("rubric_slug", pa.string()),
            ("rubric_version", pa.int32()), ("submitted_at", ts), ("active_seconds", pa.int64()),
            ("revision", pa.int32()), ("overall_comment", pa.string()),
            ("scores", pa.list_(pa.struct([("axis", pa.string()), ("value", pa.float64()), ("category", pa.string()),
                                           ("comment", pa.string())]))),
            ("message_notes", pa.list_(pa.struct([("message_index", pa.int32()), ("problematic", pa.bool_()),
                                                  ("note", pa.string())]))),
        ]))),
        pa.field("aggregate", pa.list_(pa.struct([
            ("axis", pa.string()), ("mean", pa.float64()), ("sd", pa.float64()), ("n", pa.int32()),
        ]))),
        pa.field("safety_flags", pa.list_(pa.struct([
            ("flag_id", pa.int64()), ("campaign_id", pa.int64()), ("category", pa.string()), ("status", pa.string()),
            ("reason", pa.string()), ("raised_by", pa.string()), ("created_at", ts), ("message_index", pa.int32()),
        ]))),
        judge_export.arrow_field(),
    ], metadata={"mhsd.export_schema_version": EXPORT_SCHEMA_VERSION})


class _Sink:
    """A write-only file for pyarrow whose bytes are drained after every row group."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def parquet_stream(campaign: Campaign, *, row_group: int | None = None, metadata: dict | None = None,
                   **kwargs) -> Iterator[bytes]:
    """Row groups of `row_group` conversations are written and sent as soon as each is complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_group = row_group or PARQUET_ROW_GROUP
    schema = arrow_schema()
    if metadata:
        schema = schema.with_metadata({**schema.metadata, **{k.encode(): v.encode() for k, v in metadata.items()}})
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    try:
        batch = []
        for record in iter_records(campaign, typed=True, **kwargs):
            batch.append(record)
            if len(batch) >= row_group:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
                yield sink.drain()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    finally:
        writer.close()
    yield sink.drain()


def csv_stream(campaign: Campaign, layout: str = "long", **kwargs) -> Iterator[bytes]:
    return (csv_wide_stream if layout == "wide" else csv_long_stream)(campaign, **kwargs)


# --- the formats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFormat:
    """One kind of export file. The API view and its OpenAPI enum, the datasheet and the exports page
    all read EXPORT_FORMATS: a new format is a writer above and one entry below."""

    key: str  # unique; the datasheet's name for it
    name: str  # ?format=
    layout: str | None  # ?layout= for a format that has several (CSV), else None
    label: str  # the exports page's button and the datasheet's heading
    content_type: str
    extension: str
    writer: Callable[..., Iterator[bytes]]  # writer(campaign, **kwargs) -> the file in chunks
    description: str  # what a row or record is; printed by the datasheet
    details: Callable[[], dict] = dict  # what the datasheet adds to the description (columns, schema)
    binary: bool = False

    def query(self) -> str:
        """The query string that asks the export endpoint for this format."""
        return f"format={self.name}" + (f"&layout={self.layout}" if self.layout else "")

    def stream(self, campaign: Campaign, **kwargs) -> Iterator[bytes]:
        if self.layout:
            kwargs["layout"] = self.layout
        return self.writer(campaign, **kwargs)

    def filename(self, campaign: Campaign) -> str:
        from django.utils.text import slugify

        stem = f"campaign-{campaign.pk}-{slugify(campaign.name)[:60] or 'export'}"
        if self.layout:
            stem += f"-{self.layout}"
        return f"{stem}.{self.extension}"


def _csv_format(layout: str, *, description: str, details: Callable[[], dict]) -> ExportFormat:
    """The CSV layouts share everything but their layout, description and columns."""
    return ExportFormat(key=f"csv_{layout}", name="csv", layout=layout, label=f"CSV ({layout})",
                        content_type="text/csv; charset=utf-8", extension="csv", writer=csv_stream,
                        description=description, details=details)


EXPORT_FORMATS = (
    ExportFormat(
        key="jsonl", name="jsonl", layout=None, label="JSONL", content_type="application/x-ndjson; charset=utf-8",
        extension="jsonl", writer=jsonl_stream,
        description="One JSON object per line, one per conversation, with the fields listed under Fields.",
    ),
    _csv_format(
        "long",
        description=(
            "One row per conversation x submitted rating x axis; conversations without submitted ratings have no "
            "rows. Columns repeat the conversation metadata; axis_mean and axis_n are the conversation's aggregate "
            "of that axis. Empty cells are missing values; booleans are true/false; floats are written in shortest "
            "round-trip form. " + judge_export.LONG_NOTE
        ),
        details=lambda: {"columns": LONG_COLUMNS},
    ),
    _csv_format(
        "wide",
        description=(
            "One row per conversation (rated or not). Per axis: <axis>__mean, <axis>__sd, <axis>__n. Then rater "
            "slots rater1..raterK (K = most submitted ratings of any conversation), each with the pseudonym, "
            "__rating_id, __rubric_version, __submitted_at, __active_seconds, __overall_comment and per axis the "
            "value and __comment; slots are filled in rating-id order, so rater1 is not the same person on every "
            "row. " + judge_export.WIDE_NOTE + " messages_json holds the messages as a JSON array."
        ),
        details=lambda: {"columns": "see notes (depends on the rubric's axes)"},
    ),
    ExportFormat(
        key="parquet", name="parquet", layout=None, label="Parquet", content_type="application/vnd.apache.parquet",
        extension="parquet", writer=parquet_stream, binary=True,
        description=(
            "One row per conversation with the same nested fields as the JSONL records (lists of structs; no maps, "
            "so `datasets.load_dataset('parquet', data_files=...)` and pandas read it as is). Date-times are "
            "timestamp[us, UTC]; provenance and gold_scores are JSON text (free-form objects have no fixed Arrow "
            "type). judge_scores holds the LLM judge's scores apart from the clinicians' ratings. Compressed with "
            "zstd; one row group per 1,000 conversations."
        ),
        details=lambda: {"arrow_schema": arrow_schema().to_string(show_schema_metadata=False)},
    ),
)
# What ?format= and ?layout= accept, in the registry's order.
FORMAT_NAMES = tuple(dict.fromkeys(f.name for f in EXPORT_FORMATS))
LAYOUTS = tuple(dict.fromkeys(f.layout for f in EXPORT_FORMATS if f.layout))


def export_format(name: str, layout: str | None = None) -> ExportFormat:
    """The format `?format=name&layout=layout` asks for; formats without layouts ignore `layout`."""
    candidates = [f for f in EXPORT_FORMATS if f.name == name]
    for fmt in candidates:
        if fmt.layout is None or fmt.layout == (layout or LAYOUTS[0]):
            return fmt
    raise ExportError(f"Unknown format {name!r} (layout {layout!r}); choose one of {', '.join(FORMAT_NAMES)}.")
