"""Round trip: import -> campaign -> ratings (real rating services) -> export in every format, read back
with json, csv and pyarrow/pandas, and compared value by value with the database read through the ORM."""
import csv
import io
import json
import math
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.apps import apps
from django.db import connection
from django.http import StreamingHttpResponse

from generation.models import Message
from rating.models import Campaign, Rating
from study_data import export
from study_data.export import LONG_COLUMNS, arrow_schema
from tests.api.conftest import ApiClient, assert_error
from tests.api.rated import TRICKY, truth
from tests.factories import make_token

pytestmark = pytest.mark.django_db

def download(api, campaign, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"/api/v1/campaigns/{campaign.pk}/export?{query}")
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content)


def approx_equal(got, want):
    """Deep equality; floats (aggregates) to 1e-12 relative."""
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(approx_equal(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(approx_equal(g, w) for g, w in zip(got, want, strict=True))
    return got == want and type(got) is type(want)


def test_the_rated_campaign_has_what_the_round_trip_needs(rated):
    expected = truth(rated)
    assert len(expected) == 5
    n_ratings = [row["n_raters"] for row in expected.values()]
    assert sorted(n_ratings) == [0, 2, 2, 2, 2]
    assert Rating.objects.filter(assignment__campaign=rated, status="draft").count() == 1
    assert any(row["safety_flags"] for row in expected.values())
    assert any(row["is_gold"] for row in expected.values())


def test_jsonl_reproduces_every_value(rated, researcher_api):
    response, body = download(researcher_api, rated, format="jsonl")
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="campaign-')
    assert 'rel="describedby"' in response.headers["Link"]
    assert f"/api/v1/campaigns/{rated.pk}/datasheet" in response.headers["Link"]
    text = body.decode("utf-8")
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 5  # one conversation per line, newlines inside are escaped
    records = [json.loads(line) for line in lines]
    expected = truth(rated)
    assert [r["conversation_id"] for r in records] == sorted(expected)
    for record in records:
        want = expected[record["conversation_id"]]
        assert record.keys() == want.keys()
        for key in want:
            assert approx_equal(record[key], want[key]), (key, record[key], want[key])
    # The values the import was given survive the whole trip.
    first = next(r for r in records if r["external_id"] == "ext-1")
    assert first["provenance"]["system_messages"] == [{"position": 0, "content": "You are a careful assistant."}]
    assert first["provenance"]["metadata"] == {"site": "A", "score": 1.5, "tags": ["x"]}
    assert first["messages"][0]["text"].endswith(TRICKY)
    assert first["messages"][3]["text"] == "Generalised anxiety is likely.\n\nLet us talk about options."
    assert [m["role"] for m in first["messages"]] == ["patient", "sensemaker", "patient", "sensemaker"]
    assert first["is_gold"] and first["gold_scores"] == {"susceptibility": 3, "diagnosis_hard": 1}
    assert first["safety_flags"][0]["message_index"] == 1
    assert any(r["external_id"] == "42" and r["is_simulated"] for r in records)
    assert all(r["models"]["sensemaker"] == "acme/bot-2" for r in records if r["source_label"] == "clinic-bot")
    assert all(rating["active_seconds"] >= 60 for r in records for rating in r["ratings"])


def test_jsonl_aggregates_match_the_scores_endpoint(rated, researcher_api):
    _, body = download(researcher_api, rated, format="jsonl")
    for line in body.decode().splitlines():
        record = json.loads(line)
        api = researcher_api.get(f"/api/v1/conversations/{record['conversation_id']}/scores",
                                 {"campaign": rated.pk}).json()
        (campaign_scores,) = api["campaigns"]
        assert campaign_scores["n_raters"] == record["n_raters"]
        by_axis = {a["axis"]: a for a in campaign_scores["axes"]}
        assert [a["axis"] for a in record["aggregate"]] == [a["axis"] for a in campaign_scores["axes"]]
        for agg in record["aggregate"]:
            assert by_axis[agg["axis"]]["n"] == agg["n"]
            assert math.isclose(by_axis[agg["axis"]]["mean"], agg["mean"], rel_tol=1e-12)


def _csv_value(raw: str, kind):
    if raw == "":
        return None
    if kind is bool:
        return {"true": True, "false": False}[raw]
    return kind(raw)


def test_csv_long_reproduces_every_rating(rated, researcher_api):
    response, body = download(researcher_api, rated, format="csv", layout="long")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    assert list(rows[0].keys()) == LONG_COLUMNS
    expected = truth(rated)
    want = {}
    for conv_id, record in expected.items():
        aggregate = {a["axis"]: a for a in record["aggregate"]}
        for rating in record["ratings"]:
            for score in rating["scores"]:
                want[(conv_id, rating["rater"], score["axis"])] = (record, rating, score, aggregate[score["axis"]])
    got = {(int(r["conversation_id"]), r["rater"], r["axis"]): r for r in rows}
    assert len(rows) == len(got) == len(want) and got.keys() == want.keys()
    for key, row in got.items():
        record, rating, score, agg = want[key]
        assert _csv_value(row["value"], float) == score["value"]
        assert row["comment"] == score["comment"]
        assert row["overall_comment"] == rating["overall_comment"]
        assert int(row["rating_id"]) == rating["rating_id"]
        assert int(row["active_seconds"]) == rating["active_seconds"]
        assert int(row["rubric_version"]) == rating["rubric_version"] and row["rubric_slug"] == rating["rubric_slug"]
        assert row["submitted_at"] == rating["submitted_at"]
        assert math.isclose(float(row["axis_mean"]), agg["mean"], rel_tol=1e-12) and int(row["axis_n"]) == agg["n"]
        assert _csv_value(row["is_simulated"], bool) == record["is_simulated"]
        assert _csv_value(row["conversation_smog_grade"], float) == record["smog_grade"]
        assert row["external_id"] == record["external_id"] and row["source"] == record["source"]
        assert row["sensemaker_model"] == record["models"]["sensemaker"]
        assert (row["persona_trait"] or None) == (record["persona"] or {}).get("trait")
        assert int(row["safety_flag_count"]) == len(record["safety_flags"])
    # pandas reads the same file with the right types.
    frame = pd.read_csv(io.BytesIO(body))
    assert frame["value"].dtype == "float64" and frame["conversation_id"].dtype == "int64"


def test_csv_wide_has_one_row_per_conversation(rated, researcher_api):
    _, body = download(researcher_api, rated, format="csv", layout="wide")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    expected = truth(rated)
    assert [int(r["conversation_id"]) for r in rows] == sorted(expected)
    axis_keys = [a.key for a in export.campaign_axes(rated)]
    assert list(rows[0].keys()) == export.wide_columns(axis_keys, 2)
    for row in rows:
        record = expected[int(row["conversation_id"])]
        assert int(row["n_raters"]) == record["n_raters"]
        assert json.loads(row["messages_json"]) == record["messages"]
        assert int(row["n_messages"]) == len(record["messages"]) == Message.objects.filter(
            conversation_id=record["conversation_id"]).count()
        assert row["safety_categories"] == ";".join(sorted({f["category"] for f in record["safety_flags"]}))
        aggregate = {a["axis"]: a for a in record["aggregate"]}
        for key in axis_keys:
            if key in aggregate:
                assert math.isclose(float(row[f"{key}__mean"]), aggregate[key]["mean"], rel_tol=1e-12)
                assert int(row[f"{key}__n"]) == aggregate[key]["n"]
                sd = aggregate[key]["sd"]
                assert (row[f"{key}__sd"] == "") if sd is None else math.isclose(float(row[f"{key}__sd"]), sd)
            else:
                assert row[f"{key}__mean"] == row[f"{key}__n"] == ""
        for slot in (1, 2):
            prefix = f"rater{slot}"
            if slot > len(record["ratings"]):
                assert row[prefix] == ""
                continue
            rating = record["ratings"][slot - 1]
            assert row[prefix] == rating["rater"] and int(row[f"{prefix}__rating_id"]) == rating["rating_id"]
            assert int(row[f"{prefix}__active_seconds"]) == rating["active_seconds"]
            assert row[f"{prefix}__overall_comment"] == rating["overall_comment"]
            for score in rating["scores"]:
                assert float(row[f"{prefix}__{score['axis']}"]) == score["value"]
                assert row[f"{prefix}__{score['axis']}__comment"] == score["comment"]


def _as_json_types(value):
    """Parquet values -> the JSONL representation (timestamps as ISO strings)."""
    if isinstance(value, dict):
        return {k: _as_json_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json_types(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_parquet_reproduces_every_value_with_types(rated, researcher_api):
    response, body = download(researcher_api, rated, format="parquet")
    assert response.headers["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.equals(arrow_schema(), check_metadata=False)
    assert table.schema.metadata[b"mhsd.export_schema_version"] == export.EXPORT_SCHEMA_VERSION.encode()
    expected = truth(rated)
    rows = table.to_pylist()
    assert [r["conversation_id"] for r in rows] == sorted(expected)
    for row in rows:
        want = expected[row["conversation_id"]]
        row = _as_json_types(row)
        row["provenance"] = json.loads(row["provenance"])
        row["gold_scores"] = json.loads(row["gold_scores"])
        assert row.keys() == want.keys()
        for key in want:
            assert approx_equal(row[key], want[key]), (key, row[key], want[key])
    frame = pd.read_parquet(io.BytesIO(body))
    assert str(frame["conversation_id"].dtype) == "int64"
    assert str(frame["is_simulated"].dtype) == "bool"
    assert str(frame["smog_grade"].dtype) == "float64"
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["job_id"].dtype) in ("Int64", "float64")  # nullable integer column
    first_rating = next(r for r in frame["ratings"] if len(r))[0]
    assert isinstance(first_rating["scores"][0]["value"], float)


def test_parquet_streams_row_groups(rated, researcher_api, monkeypatch):
    monkeypatch.setattr(export, "PARQUET_ROW_GROUP", 2)
    response = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/export?format=parquet")
    chunks = [c for c in response.streaming_content if c]
    # 5 conversations in row groups of at most 2, each sent when complete, then the footer.
    assert len(chunks) >= 3
    assert pq.ParquetFile(io.BytesIO(b"".join(chunks))).metadata.num_row_groups == 3


def test_records_come_from_server_side_cursors(rated):
    records = export.iter_records(rated, itersize=1)
    first = next(records)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_cursors WHERE name LIKE 'mhsd_export_%%'")
        open_cursors = [row[0] for row in cursor.fetchall()]
    assert len(open_cursors) == 6  # conversations, messages, ratings with their scores, notes, flags, judge scores
    rest = list(records)
    assert [first["conversation_id"], *[r["conversation_id"] for r in rest]] == sorted(truth(rated))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'mhsd_export_%%'")
        assert cursor.fetchone()[0] == 0  # closed at the end


def test_abandoned_export_closes_its_cursors(rated):
    records = export.iter_records(rated, itersize=1)
    next(records)
    records.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'mhsd_export_%%'")
        assert cursor.fetchone()[0] == 0


def test_export_sql_names_the_models_tables():
    sql = export.SQL_CONVERSATIONS + export.SQL_MESSAGES + export.SQL_RATINGS + export.SQL_NOTES + export.SQL_FLAGS
    for label in ("generation.Conversation", "generation.Message", "generation.GenerationJob", "generation.CaseStudy",
                  "generation.Persona", "rating.CampaignItem", "rating.Assignment", "rating.Rating", "rating.Rubric",
                  "rating.AxisScore", "rating.MessageNote", "rating.SafetyFlag", "accounts.User"):
        table = apps.get_model(label)._meta.db_table
        assert f" {table} " in sql, table


def test_export_errors_are_json(rated, researcher_api, raters):
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/export?format=xlsx"), 400, "invalid")
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/export?format=csv&layout=diagonal"), 400)
    assert_error(researcher_api.get("/api/v1/campaigns/99999999/export?format=jsonl"), 404, "not_found")
    assert_error(ApiClient(make_token(raters[0])).get(f"/api/v1/campaigns/{rated.pk}/export"), 403)
    assert_error(ApiClient(None).get(f"/api/v1/campaigns/{rated.pk}/export"), 401)


def test_an_empty_campaign_exports_empty_files(admin, researcher_api, raters):
    campaign = Campaign.objects.create(name="empty", rubric=rated_rubric())
    _, body = download(researcher_api, campaign, format="jsonl")
    assert body == b""
    _, body = download(researcher_api, campaign, format="csv")
    assert body.decode().strip() == ",".join(LONG_COLUMNS)
    _, body = download(researcher_api, campaign, format="parquet")
    assert pq.read_table(io.BytesIO(body)).num_rows == 0


def rated_rubric():
    from rating.rubric_files import default_rubric

    return default_rubric()


def test_datasheet_describes_the_export(rated, researcher_api):
    response = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/datasheet")
    assert response.status_code == 200
    sheet = response.json()
    expected = truth(rated)
    counts = sheet["counts"]
    assert counts["conversations"] == 5 and counts["gold_items"] == 1
    assert counts["ratings_submitted"] == sum(r["n_raters"] for r in expected.values()) == 8
    assert counts["ratings_in_progress"] == 1 and counts["raters"] == 3
    assert counts["rated_conversations"] == 4 and counts["safety_flags"] == 1
    assert counts["messages"] == sum(len(r["messages"]) for r in expected.values())
    assert counts["conversations_by_source"] == {"imported": 3, "generated": 2}
    assert sheet["rubric"]["slug"] == rated.rubric.slug and sheet["rubric"]["version"] == rated.rubric.version
    axes = [a["axis"] for a in sheet["agreement"]["per_axis"]]
    assert axes == [a.key for a in rated.rubric.axes.all() if a.is_rated]
    assert all(a["n_units"] == 4 and a["n_raters"] == 3 for a in sheet["agreement"]["per_axis"])
    assert sheet["platform"]["version"] == "0.1.0"
    assert sheet["generated_at"]
    assert {j["conversations_in_campaign"] for j in sheet["generation"]["jobs"]} == {2}
    assert sheet["generation"]["imports"][0]["source"] in ("clinic-bot", "import")
    assert set(sheet["fields"]["record"]) >= {"messages[]", "ratings[]", "aggregate[]", "safety_flags[]"}
    assert "conversation_id: int64 not null" in sheet["fields"]["parquet"]["arrow_schema"]
    # Every JSONL field is explained.
    _, body = download(researcher_api, rated, format="jsonl")
    record = json.loads(body.decode().splitlines()[0])
    explained = {k.rstrip("[]") for k in sheet["fields"]["record"]}
    assert set(record) == explained

    md = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/datasheet?format=md")
    assert md.status_code == 200 and md.headers["Content-Type"].startswith("text/markdown")
    text = md.content.decode()
    assert f"# Datasheet: {rated.name}" in text
    assert "Krippendorff" in text and "susceptibility" in text and "```" in text


def test_exports_page_links_every_format(rated, client, researcher):
    client.force_login(researcher)
    page = client.get("/exports/").content.decode()
    for fmt in ("format=jsonl", "format=csv&amp;layout=long", "format=csv&amp;layout=wide", "format=parquet"):
        assert f"/api/v1/campaigns/{rated.pk}/export?{fmt}" in page
    # The browser download uses the session, through the same streamed endpoint.
    response = client.get(f"/api/v1/campaigns/{rated.pk}/export?format=jsonl")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    assert len(b"".join(response.streaming_content).splitlines()) == 5


def test_view_schema_datasheet_and_page_list_exactly_the_registered_formats(rated, researcher_api, client,
                                                                          researcher):
    from drf_spectacular.generators import SchemaGenerator

    formats = export.EXPORT_FORMATS
    # The view serves each one with its content type and file extension.
    for fmt in formats:
        response, _ = download(researcher_api, rated, **dict(part.split("=") for part in fmt.query().split("&")))
        assert response["Content-Type"] == fmt.content_type
        assert response["Content-Disposition"].endswith(f'.{fmt.extension}"')
    # The OpenAPI schema's enums and response types.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    [operation] = [ops["get"] for path, ops in schema["paths"].items() if path.endswith("/export")]
    enums = {p["name"]: p["schema"].get("enum") for p in operation["parameters"]}
    assert enums["format"] == list(export.FORMAT_NAMES) == list(dict.fromkeys(f.name for f in formats))
    assert enums["layout"] == list(export.LAYOUTS) == [f.layout for f in formats if f.layout]
    assert set(operation["responses"]["200"]["content"]) == {f.content_type.split(";")[0] for f in formats}
    # The datasheet links and describes each one.
    sheet = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/datasheet").json()
    assert list(sheet["exports"]) == [f.key for f in formats]
    assert [key for key in sheet["fields"] if key != "record"] == [f.key for f in formats]
    assert all(sheet["exports"][f.key].endswith(f"/export?{f.query()}") for f in formats)
    md = researcher_api.get(f"/api/v1/campaigns/{rated.pk}/datasheet?format=md").content.decode()
    assert all(f"### {f.label}\n" in md and f"- {f.label}: " in md for f in formats)
    # The exports page offers each one, in the registry's order.
    client.force_login(researcher)
    page = client.get("/exports/").content.decode()
    links = re.findall(rf'/api/v1/campaigns/{rated.pk}/export\?([^"]+)"', page)
    assert links == [f.query().replace("&", "&amp;") for f in formats]


def test_an_unknown_format_or_layout_is_refused(researcher_api, rated):
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/export?format=xlsx"), 400)
    assert_error(researcher_api.get(f"/api/v1/campaigns/{rated.pk}/export?format=csv&layout=tall"), 400)
    with pytest.raises(export.ExportError):
        export.export_format("xlsx")


def test_parquet_schema_is_readable_as_arrow_types():
    # The documented schema round-trips through Parquet's own type system unchanged.
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([], schema=arrow_schema()), sink)
    assert pq.read_schema(io.BytesIO(sink.getvalue())).equals(arrow_schema(), check_metadata=False)


def test_standard_library_encoder_writes_the_same_jsonl(rated, monkeypatch):
    """orjson is an optimisation: without it the export is the same, line for line."""
    assert export.orjson is not None, "orjson is pinned in pyproject.toml: this test compares two encoders"
    fast = b"".join(export.jsonl_stream(rated))
    monkeypatch.setattr(export, "orjson", None)
    plain = b"".join(export.jsonl_stream(rated))
    assert [json.loads(line) for line in fast.splitlines()] == [json.loads(line) for line in plain.splitlines()]
    assert fast == plain


def test_parquet_loads_with_hugging_face_datasets(rated, researcher_api, tmp_path):
    import datasets  # a dev dependency; HF_DATASETS_OFFLINE is set in tests/conftest.py
    _, body = download(researcher_api, rated, format="parquet")
    path = tmp_path / "export.parquet"
    path.write_bytes(body)
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 5
    assert str(ds.features["created_at"].dtype) == "timestamp[us, tz=UTC]"
    row = next(r for r in ds if r["ratings"])
    assert isinstance(row["ratings"][0]["scores"][0]["value"], float)
    assert row["messages"][0]["role"] in ("patient", "sensemaker")


@pytest.mark.django_db(transaction=True)
def test_wide_csv_counts_its_rater_columns_in_the_snapshot_it_exports(monkeypatch):
    """A rating submitted while the wide CSV streams is neither exported nor silently cut off: the
    number of rater columns and the rows come from one REPEATABLE READ snapshot."""
    import threading

    from accounts.roles import Role
    from tests.api.rated import rate_everything
    from tests.factories import make_campaign, make_conversation, make_user

    raters = [make_user(Role.RATER) for _ in range(2)]
    campaign = make_campaign(raters=raters, conversations=[make_conversation(n_messages=4)], k=2)
    rate_everything(campaign, raters)
    late = Rating.objects.filter(assignment__campaign=campaign).order_by("id").last()
    submitted_at = late.submitted_at
    Rating.objects.filter(pk=late.pk).update(status=Rating.Status.DRAFT, submitted_at=None)

    counted = export.max_raters

    def submit_after_counting(c):
        slots = counted(c)

        def commit_elsewhere():  # another connection, as a rater submitting meanwhile
            Rating.objects.filter(pk=late.pk).update(status=Rating.Status.SUBMITTED, submitted_at=submitted_at)
            connection.close()

        thread = threading.Thread(target=commit_elsewhere)
        thread.start()
        thread.join()
        return slots

    monkeypatch.setattr(export, "max_raters", submit_after_counting)
    rows = list(csv.DictReader(io.StringIO(b"".join(export.csv_wide_stream(campaign)).decode())))
    assert len(rows) == 1 and rows[0]["rater1"] and "rater2" not in rows[0]
    first = Rating.objects.filter(assignment__campaign=campaign).order_by("id").first()
    assert rows[0]["rater1__rating_id"] == str(first.pk)
    # The aggregates come from the same snapshot: one rating, not two of which one has no column.
    axis = campaign.rubric.axes.filter(kind="ordinal").order_by("order").first()
    assert rows[0][f"{axis.key}__n"] == "1"
    # Afterwards the late rating is there, in its own column.
    monkeypatch.setattr(export, "max_raters", counted)
    rows = list(csv.DictReader(io.StringIO(b"".join(export.csv_wide_stream(campaign)).decode())))
    assert rows[0]["rater2__rating_id"] == str(late.pk)
