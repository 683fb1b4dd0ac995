"""LLM judge scores in the JSONL, CSV (long, wide) and Parquet exports and the datasheet: their own
field, rows and columns with provenance, read back and compared with the judging tables through the ORM;
the clinicians' part of every export is exactly what it was without the judge."""
import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judging.models import JudgeItem, JudgeRun
from results.judge_selectors import FINISHED
from study_data import datasheet, export, judge_export
from tests.factories import make_token
from tests.judging.judge_fixture import CITED, judge_truth, make_judge_run
from tests.results.results_fixture import CONSTANT, build_fixed_campaign

pytestmark = pytest.mark.django_db


def body(stream) -> bytes:
    return b"".join(stream)


def jsonl(campaign) -> list[dict]:
    return [json.loads(line) for line in body(export.jsonl_stream(campaign)).splitlines()]


def csv_rows(campaign, layout) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(export.csv_stream(campaign, layout=layout)).decode())))


@pytest.fixture
def judged():
    fixed = build_fixed_campaign()
    before = {"jsonl": jsonl(fixed.campaign), "long": csv_rows(fixed.campaign, "long"),
              "wide": csv_rows(fixed.campaign, "wide")}
    scores = {(conv, s): {"susceptibility": 1 + (i + s) % 4, "diagnosis_hard": (i + s) % 2, **CONSTANT}
              for i, conv in enumerate(fixed.conv.values()) for s in (0, 1)}
    run = make_judge_run(fixed.campaign, scores, samples=2, failed=[])
    # Not exported: a running run, and a failed item (no scores).
    make_judge_run(fixed.campaign, scores, status=JudgeRun.Status.RUNNING, model="openai/still-running")
    JudgeItem.objects.filter(run=run, conversation=fixed.conv["c6"], sample_index=1).update(
        status="failed", failure_reason="malformed JSON")
    return fixed, run, before


def test_export_sql_reads_the_finished_statuses_results_uses():
    assert "('done', 'failed', 'cancelled')" in judge_export.SQL_JUDGE
    assert sorted(FINISHED) == sorted(["done", "failed", "cancelled"])


def test_jsonl_has_judge_scores_with_provenance_and_leaves_the_clinicians_alone(judged):
    fixed, run, before = judged
    records = jsonl(fixed.campaign)
    expected = judge_truth(fixed.campaign)
    assert sum(len(v) for v in expected.values()) == 11  # 6 conversations x 2 samples, one failed
    for record, old in zip(records, before["jsonl"], strict=True):
        got = record.pop("judge_scores")
        assert got == expected.get(record["conversation_id"], [])
        old.pop("judge_scores", None)
        assert record == old  # ratings, aggregate, n_raters: exactly as without the judge
    first = expected[fixed.conv["c1"].pk][0]
    assert first["judge_model"] == "simulator/judge" and first["judge_is_simulated"] is True
    assert first["prompt_version"] == "judge-v1" and first["sample_index"] == 0
    assert all(e["judge_model"] != "openai/still-running" for v in expected.values() for e in v)


def test_long_csv_has_judge_rows_apart_from_the_clinicians(judged):
    fixed, run, before = judged
    rows = csv_rows(fixed.campaign, "long")
    assert list(rows[0]) == export.LONG_COLUMNS and export.LONG_COLUMNS[-6:] == judge_export.LONG_COLUMNS
    clinicians = [r for r in rows if r["rater_type"] == "clinician"]
    judges = [r for r in rows if r["rater_type"] == "judge"]
    old_columns = [c for c in export.LONG_COLUMNS if c not in judge_export.LONG_COLUMNS]
    assert [{c: r[c] for c in old_columns} for r in clinicians] == [
        {c: r[c] for c in old_columns} for r in before["long"]]
    expected = judge_truth(fixed.campaign)
    assert len(judges) == sum(len(e["scores"]) for v in expected.values() for e in v)
    for r in judges:
        assert r["rater"] == "" and r["rating_id"] == "" and r["axis_mean"] == "" and r["axis_n"] == ""
        entry = next(e for e in expected[int(r["conversation_id"])]
                     if e["sample_index"] == int(r["judge_sample_index"]))
        score = next(s for s in entry["scores"] if s["axis"] == r["axis"])
        assert float(r["value"]) == score["value"] and r["comment"] == score["rationale"]
        assert (r["judge_run_id"], r["judge_model"], r["judge_prompt_version"]) == (
            str(run.pk), "simulator/judge", "judge-v1")
        assert r["rubric_slug"] == run.rubric.slug and json.loads(r["judge_cited_messages"]) == CITED


def test_wide_csv_has_judge_columns_after_the_rater_slots(judged):
    fixed, run, before = judged
    rows = csv_rows(fixed.campaign, "wide")
    p = f"judge{run.pk}"
    columns = list(rows[0])
    assert columns.index(f"{p}__model") > max(i for i, c in enumerate(columns) if c.startswith("rater"))
    assert columns[-1] == "messages_json"
    for row, old in zip(rows, before["wide"], strict=True):
        assert {k: v for k, v in row.items() if not k.startswith("judge")} == old
    by_conv = {int(r["conversation_id"]): r for r in rows}
    expected = judge_truth(fixed.campaign)
    for conv_id, entries in expected.items():
        row = by_conv[conv_id]
        values = [next(s["value"] for s in e["scores"] if s["axis"] == "susceptibility") for e in entries]
        assert float(row[f"{p}__susceptibility__mean"]) == pytest.approx(sum(values) / len(values))
        assert row[f"{p}__samples"] == str(len(entries)) and row[f"{p}__prompt_version"] == "judge-v1"
        for e in entries:
            hard = next(s["value"] for s in e["scores"] if s["axis"] == "diagnosis_hard")
            assert float(row[f"{p}__s{e['sample_index']}__diagnosis_hard"]) == hard
    assert by_conv[fixed.conv["c6"].pk][f"{p}__s1__susceptibility"] == ""  # the failed sample


def test_parquet_has_the_judge_scores_field(judged):
    fixed, run, _ = judged
    table = pq.read_table(io.BytesIO(body(export.parquet_stream(fixed.campaign))))
    assert table.schema.field("judge_scores").type == judge_export.arrow_field().type
    expected = judge_truth(fixed.campaign)
    for row in table.to_pylist():
        got = row["judge_scores"]
        for entry in got:
            entry["finished_at"] = entry["finished_at"].isoformat()
        assert got == expected.get(row["conversation_id"], [])
    assert isinstance(table.schema.field("judge_scores").type, pa.ListType)


def test_api_export_and_datasheet_describe_the_judge(judged, client):
    fixed, run, _ = judged
    from accounts.roles import Role
    from tests.factories import make_user

    headers = {"Authorization": f"Bearer {make_token(make_user(Role.RESEARCHER))}"}
    response = client.get(f"/api/v1/campaigns/{fixed.campaign.pk}/export?format=jsonl", headers=headers)
    lines = b"".join(response.streaming_content).splitlines()
    assert all("judge_scores" in json.loads(line) for line in lines)
    sheet = client.get(f"/api/v1/campaigns/{fixed.campaign.pk}/datasheet", headers=headers).json()
    assert "judge_scores[]" in sheet["fields"]["record"]
    (described,) = sheet["judges"]["runs"]
    assert described["judge_run_id"] == run.pk and described["judge_model"] == "simulator/judge"
    assert described["prompt_version"] == "judge-v1" and described["samples"] == 2
    assert described["items_done_in_campaign"] == 11
    assert "rater_type" in sheet["fields"]["csv_long"]["notes"] and "judge" in sheet["fields"]["csv_wide"]["notes"]
    markdown = datasheet.render_markdown(datasheet.build_datasheet(fixed.campaign))
    assert "judge_scores" in markdown and "simulator/judge" in markdown
