"""Item-level dataset of a probe run, for researchers (the API's /probe-runs/{id}/items): one row per
probe item (a vignette variant x question x sample of a stigma battery, or one interjection probe x
sample) with the battery and its version, the condition or symptom and demographic variant, the
placement, the model under test, the parsed answer or the reply, the protocol's flags, the failure
reason, the clinicians' verdicts (per rater pseudonym, and counted) and the LLM judges' answers with
their provenance.

The paginated JSON, the JSONL and the CSV are built by `rows_for` from the same items, so they agree.
Streams read the items in id order through a server-side cursor inside the export's consistent
snapshot (study_data.export.consistent_snapshot), two extra queries per chunk of items.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from probes.interjection import probe_by_key
from probes.models import ProbeItem, ProbeJudgeAnswer, ProbeRun
from probes.stigma import question_by_key

from .export import CHUNK_BYTES, _json_encoder, _Lines, consistent_snapshot

# 1: the first version of this dataset's fields (FIELDS below).
PROBE_EXPORT_SCHEMA_VERSION = "1"
CHUNK_ITEMS = 1000
FORMATS = ("json", "jsonl", "csv")
CONTENT_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
# The verification rubric's axes (rating/rubrics/interjection-v1.json).
VERIFICATION_RUBRIC = "interjection-probe"
VERIFICATION_AXIS, SAFE_AXIS = "verification", "safe"

# Field meanings, in row order (the CSV's columns are these, with the nested ones flattened: see CSV_COLUMNS).
FIELDS = {
    "item_id": "The probe item's id.",
    "run_id": "The probe run's id.",
    "battery_id": "The battery version's id.",
    "battery_slug": "The battery's slug.",
    "battery_version": "The battery's version number.",
    "battery_digest": "sha256 of the battery content the run used.",
    "protocol": "stigma or interjection.",
    "prompt_version": "Version of the probe prompt template.",
    "model_name": "The model configuration's name at launch (the model under test).",
    "model": "The LiteLLM model string of the model under test.",
    "model_is_simulated": "The offline simulator played the model: not research data.",
    "placement": "standalone, or medagent (the probe was the patient's turn inside a MedAgent conversation).",
    "stage_requested": "MedAgent placement: the stage (1-5) the run asked for; null for stand-alone.",
    "stage": "MedAgent placement: the stage the conversation was in when the probe was sent (may be later).",
    "case_id": "MedAgent placement: the simulated patient's case id.",
    "persona_trait": "MedAgent placement: the simulated patient's dominant trait.",
    "persona_literacy": "MedAgent placement: the simulated patient's health literacy.",
    "vignette_key": "Stigma: the vignette; interjection: the probe.",
    "condition": "Stigma: the vignette's condition; interjection: the probe's symptom.",
    "variant_key": "Stigma: the demographic variant; interjection: 'none'.",
    "variant_age": "Stigma: the variant's age.",
    "variant_gender": "Stigma: the variant's gender.",
    "variant_ethnicity": "Stigma: the variant's ethnicity.",
    "variant_education": "Stigma: the variant's education.",
    "question_key": "Stigma: the attitude question; interjection: 'verification'.",
    "question_group": "Stigma: the question's group (e.g. causes, social distance), if the battery names one.",
    "sample_index": "0..samples-1: the run's repeated replies to the same prompt.",
    "seed": "The item's seed (derived from the run seed and what the item is).",
    "status": "queued, running, done, failed or cancelled.",
    "answer": "Stigma: the option the reply picked, as written in the battery; empty when it picked none.",
    "stigmatizing": "Stigma: the protocol's score of the answer; null for descriptive questions or no answer.",
    "no_valid_option_reason": "Stigma: why the reply picked no valid option (never guessed); else empty.",
    "reply": "The model's reply as received.",
    "verification_question": "Interjection: the probe's yes/no question about the reply.",
    "correct_answer": "Interjection: the answer an appropriate reply gets (yes or no).",
    "conversation_id": "Interjection: the stored exchange (what the clinicians rated).",
    "failure_reason": "Why the LLM call failed for good (failed items), or why it was cancelled.",
    "calls": "LLM calls made for the item.",
    "prompt_tokens": "Prompt tokens of those calls.",
    "completion_tokens": "Completion tokens of those calls.",
    "cost_usd": "Their cost in US dollars when the provider's price is known; else null.",
    "finished_at": "When the item finished (ISO 8601).",
    "clinician_n": "Interjection: submitted clinician verdicts on the verification question.",
    "clinician_yes": "Of those, how many answered yes.",
    "clinician_appropriate": "Of those, how many make the reply appropriate (their answer is the correct answer).",
    "clinician_unsafe": "Submitted ratings that marked the reply unsafe (these raise a safety flag).",
    "clinician_verdicts": "Each submitted verdict: rater (pseudonym), rating_id, campaign_id, answer_yes, "
                          "appropriate, safe (null when not given), submitted_at.",
    "judge_n": "Interjection: finished LLM judge answers (done) on the item.",
    "judge_yes": "Of those, how many answered yes.",
    "judge_appropriate": "Of those, how many make the reply appropriate.",
    "judge_answers": "Every LLM judge answer on the item with its provenance: judge_model (LiteLLM string), "
                     "judge_name, judge_is_simulated, prompt_version, seed, status, answer_yes, appropriate, "
                     "raw_reply, failure_reason, finished_at. Never counted among the clinicians'.",
}
# CSV: the nested lists as JSON text, under a _json name.
CSV_COLUMNS = [f"{name}_json" if name in ("clinician_verdicts", "judge_answers") else name for name in FIELDS]


def _iso(value):
    return None if value is None else value.isoformat()


def run_queryset():
    return ProbeRun.objects.select_related("battery", "model")


def _verdicts(conversation_ids: list[int]) -> dict[int, list[dict]]:
    """Submitted clinician verdicts on these exchanges: per conversation, one entry per rating."""
    from rating.models import AxisScore

    if not conversation_ids:
        return {}
    rows = (AxisScore.objects
            .filter(axis__rubric__slug=VERIFICATION_RUBRIC, axis__key__in=(VERIFICATION_AXIS, SAFE_AXIS),
                    rating__status="submitted", rating__assignment__item__conversation_id__in=conversation_ids)
            .values_list("rating__assignment__item__conversation_id", "rating_id",
                         "rating__assignment__rater__pseudonym", "rating__assignment__campaign_id",
                         "rating__submitted_at", "axis__key", "value")
            .order_by("rating__assignment__item__conversation_id", "rating_id"))
    by_rating: dict[int, dict] = {}
    out: dict[int, list[dict]] = {}
    for conversation_id, rating_id, rater, campaign_id, submitted_at, axis, value in rows:
        entry = by_rating.get(rating_id)
        if entry is None:
            entry = by_rating[rating_id] = {"rater": rater, "rating_id": rating_id, "campaign_id": campaign_id,
                                            "answer_yes": None, "safe": None, "submitted_at": _iso(submitted_at)}
            out.setdefault(conversation_id, []).append(entry)
        if value is not None:
            entry["answer_yes" if axis == VERIFICATION_AXIS else "safe"] = value >= 0.5
    return out


def _judge_answers(item_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    answers = (ProbeJudgeAnswer.objects.filter(item_id__in=item_ids).select_related("judge_model")
               .order_by("item_id", "id"))
    for answer in answers:
        snapshot = answer.judge_snapshot or {}
        out.setdefault(answer.item_id, []).append({
            "judge_model": snapshot.get("model") or answer.judge_model.model,
            "judge_name": snapshot.get("name") or answer.judge_model.name,
            "judge_is_simulated": answer.is_simulated, "prompt_version": answer.prompt_version,
            "seed": answer.seed, "status": answer.status, "answer_yes": answer.answer_yes, "appropriate": None,
            "raw_reply": answer.raw_reply, "failure_reason": answer.failure_reason,
            "finished_at": _iso(answer.finished_at)})
    return out


def _run_fields(run: ProbeRun) -> dict:
    snapshot = run.conversation_snapshot or {}
    persona = snapshot.get("persona") or {}
    battery = run.battery
    return {
        "run_id": run.pk, "battery_id": battery.pk, "battery_slug": battery.slug,
        "battery_version": battery.version, "battery_digest": battery.digest, "protocol": battery.protocol,
        "prompt_version": run.prompt_version, "model_name": run.model_snapshot.get("name") or run.model.name,
        "model": run.model_snapshot.get("model") or run.model.model, "model_is_simulated": run.is_simulated,
        "placement": run.placement, "stage_requested": run.stage, "case_id": snapshot.get("case_id"),
        "persona_trait": persona.get("trait"), "persona_literacy": persona.get("literacy"),
    }


class RowBuilder:
    """Rows of one run's items; the battery's vignettes, variants, questions and probes are read once."""

    def __init__(self, run: ProbeRun):
        self.run = run
        content = run.battery.content
        self.head = _run_fields(run)
        self.variants = {v["key"]: v for v in content.get("variants", [])}
        self.questions = question_by_key(content) if content.get("questions") else {}
        self.probes = probe_by_key(content) if content.get("probes") else {}

    def rows(self, items: list[ProbeItem]) -> list[dict]:
        verdicts = _verdicts([i.conversation_id for i in items if i.conversation_id])
        judged = _judge_answers([i.pk for i in items])
        return [self._row(item, verdicts.get(item.conversation_id, []) if item.conversation_id else [],
                          judged.get(item.pk, [])) for item in items]

    def _row(self, item: ProbeItem, verdicts: list[dict], judge_answers: list[dict]) -> dict:
        variant = self.variants.get(item.variant_key, {})
        question = self.questions.get(item.question_key, {})
        probe = self.probes.get(item.vignette_key)
        correct_yes = None if probe is None else probe["correct_answer"] == "yes"
        for verdict in [*verdicts, *judge_answers]:
            if verdict["answer_yes"] is not None and correct_yes is not None:
                verdict["appropriate"] = verdict["answer_yes"] == correct_yes
            else:
                verdict.setdefault("appropriate", None)
        given = [v for v in verdicts if v["answer_yes"] is not None]
        done = [a for a in judge_answers if a["status"] == "done"]
        return {
            "item_id": item.pk, **self.head, "stage": item.stage,
            "vignette_key": item.vignette_key, "condition": item.condition, "variant_key": item.variant_key,
            "variant_age": variant.get("age"), "variant_gender": variant.get("gender"),
            "variant_ethnicity": variant.get("ethnicity"), "variant_education": variant.get("education"),
            "question_key": item.question_key, "question_group": question.get("group"),
            "sample_index": item.sample_index, "seed": item.seed, "status": item.status,
            "answer": item.answer, "stigmatizing": item.stigmatizing, "no_valid_option_reason": item.parse_error,
            "reply": item.raw_reply,
            "verification_question": probe["verification_question"] if probe else None,
            "correct_answer": probe["correct_answer"] if probe else None,
            "conversation_id": item.conversation_id, "failure_reason": item.failure_reason,
            "calls": item.calls, "prompt_tokens": item.prompt_tokens, "completion_tokens": item.completion_tokens,
            "cost_usd": None if item.cost_usd is None else float(item.cost_usd),
            "finished_at": _iso(item.finished_at),
            "clinician_n": len(given), "clinician_yes": sum(v["answer_yes"] for v in given),
            "clinician_appropriate": sum(bool(v["appropriate"]) for v in given),
            "clinician_unsafe": sum(v["safe"] is False for v in verdicts),
            "clinician_verdicts": verdicts,
            "judge_n": len(done), "judge_yes": sum(a["answer_yes"] for a in done),
            "judge_appropriate": sum(bool(a["appropriate"]) for a in done),
            "judge_answers": judge_answers,
        }


def rows_for(run: ProbeRun, items: Iterable[ProbeItem]) -> list[dict]:
    """Rows of these items of `run` (a page of the API's list)."""
    return RowBuilder(run).rows(list(items))


def iter_rows(run: ProbeRun, chunk: int = CHUNK_ITEMS) -> Iterator[dict]:
    """Every item of the run in id order, in one consistent snapshot."""
    builder = RowBuilder(run)
    with consistent_snapshot():
        batch = []
        for item in ProbeItem.objects.filter(run=run).order_by("id").iterator(chunk_size=chunk):
            batch.append(item)
            if len(batch) >= chunk:
                yield from builder.rows(batch)
                batch = []
        if batch:
            yield from builder.rows(batch)


def jsonl_stream(run: ProbeRun) -> Iterator[bytes]:
    dumps = _json_encoder()
    buffer, size = [], 0
    for row in iter_rows(run):
        line = dumps(row) + b"\n"
        buffer.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def csv_row(row: dict) -> list:
    return [json.dumps(row[name], ensure_ascii=False) if name in ("clinician_verdicts", "judge_answers")
            else row[name] for name in FIELDS]


def csv_stream(run: ProbeRun) -> Iterator[bytes]:
    lines = _Lines()
    lines.row(CSV_COLUMNS)
    for row in iter_rows(run):
        text = lines.row(csv_row(row))
        if text:
            yield text.encode()
    yield lines.take().encode()


STREAMS = {"jsonl": jsonl_stream, "csv": csv_stream}


def filename(run: ProbeRun, fmt: str) -> str:
    return f"probe-run-{run.pk}-items.{fmt}"
