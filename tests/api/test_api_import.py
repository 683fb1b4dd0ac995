"""Import of outside conversations: the happy path, and every kind of bad input committing nothing while
naming the line and field of every error."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from generation.models import Conversation, Message
from generation.readability import smog_grade, smog_grade_texts
from study_data import importer
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/conversations/import"


def line(**extra):
    base = {"messages": [{"role": "user", "content": "I cannot sleep and feel on edge."},
                         {"role": "assistant", "content": "I am sorry to hear that. How long has this lasted?"}]}
    base.update(extra)
    return base


def body(*lines) -> bytes:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines).encode() + b"\n"


def post(api, data: bytes, query="", content_type="application/x-ndjson"):
    return api.post(URL + query, data=data, content_type=content_type)


def counts():
    return Conversation.objects.count(), Message.objects.count()


def errors_of(response):
    return [(e["line"], e["field"], e["code"]) for e in response.json()["error"]["details"]["errors"]]


def test_import_maps_roles_keeps_system_messages_and_computes_smog(admin_api, admin):
    data = body(
        line(external_id="a-1", source="partner-bot", model="partner/llm-7", ground_truth_diagnosis="Insomnia",
             condition="sleep", metadata={"ward": 3}, messages=[
                 {"role": "system", "content": "Be kind."},
                 {"role": "user", "content": "I cannot sleep."},
                 {"role": "assistant", "content": "Insomnia is common. Consider a regular schedule.", "stage": 3},
                 {"role": "system", "content": "Wrap up now."},
                 {"role": "assistant", "content": "Take care, and come back if it persists."},
             ]),
        "",  # blank lines are allowed
        line(source="partner-bot"),
    )
    response = post(admin_api, data)
    assert response.status_code == 201, response.content
    result = response.json()
    assert result["imported"] == 2 and result["skipped_duplicates"] == 0
    assert [c["line"] for c in result["conversations"]] == [1, 3]
    conv = Conversation.objects.get(pk=result["conversations"][0]["id"])
    assert (conv.source, conv.source_label, conv.external_id) == ("imported", "partner-bot", "a-1")
    assert conv.status == "done" and conv.sensemaker_model == "partner/llm-7"
    assert conv.ground_truth_diagnosis == "Insomnia" and conv.condition == "sleep" and not conv.is_simulated
    assert conv.provenance["system_messages"] == [{"position": 0, "content": "Be kind."},
                                                  {"position": 3, "content": "Wrap up now."}]
    assert conv.provenance["metadata"] == {"ward": 3}
    assert conv.provenance["import"]["imported_by"] == admin.username
    messages = list(conv.messages.order_by("index"))
    assert [(m.index, m.role, m.stage) for m in messages] == [(0, "patient", None), (1, "sensemaker", 3),
                                                             (2, "sensemaker", None)]
    assert messages[0].smog_grade is None
    assert messages[1].smog_grade == smog_grade(messages[1].text)
    assert conv.smog_grade == smog_grade_texts([messages[1].text, messages[2].text])
    assert conv.sensemaker_message_count == 2
    # Without an external id the messages' hash stands in, so the same dialogue is recognised again.
    second = Conversation.objects.get(pk=result["conversations"][1]["id"])
    assert second.external_id.startswith("sha256:") and len(second.external_id) == 47
    assert AuditEvent.objects.filter(action="conversations.import", actor=admin).count() == 1


def test_multipart_upload_and_default_source(admin_api):
    upload = SimpleUploadedFile("chats.jsonl", body(line(external_id="m-1")), content_type="application/x-ndjson")
    response = admin_api.multipart(URL + "?source=ward-b", {"file": upload})
    assert response.status_code == 201, response.content
    assert Conversation.objects.get(external_id="m-1").source_label == "ward-b"


@pytest.mark.parametrize("lines,expected", [
    # bad JSON on line 2: the good line 1 is not imported either
    ([line(external_id="ok-1"), '{"messages": [}'], [(2, "", "invalid_json")]),
    ([line(external_id="ok-1"), {"external_id": "x"}], [(2, "messages", "missing")]),
    ([line(messages=[{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"},
                     {"role": "assistant", "content": "ok"}])], [(1, "messages[1].role", "wrong_role")]),
    ([line(messages=[{"content": "no role"}, {"role": "assistant", "content": "ok"}])],
     [(1, "messages[0].role", "missing")]),
    ([line(messages=[{"role": "user", "content": "hi"}, {"role": "assistant"}])],
     [(1, "messages[1].content", "missing")]),
    ([line(messages=[{"role": "user", "content": "only the patient speaks"}])], [(1, "messages", "invalid")]),
    ([line(messages=[])], [(1, "messages", "invalid")]),
    ([line(extra_field=1)], [(1, "extra_field", "unknown_field")]),
    ([line(external_id="x" * 201)], [(1, "external_id", "too_long")]),
    ([line(is_simulated="yes")], [(1, "is_simulated", "invalid")]),
    ([line(messages=[{"role": "user", "content": "a\u0000b"}, {"role": "assistant", "content": "ok"}])],
     [(1, "messages[0].content", "invalid")]),
    (['{"messages": [{"role": "assistant", "content": "x"}], "metadata": {"v": NaN}}'], [(1, "", "invalid_json")]),
    ([line(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok", "stage": 9}])],
     [(1, "messages[1].stage", "invalid")]),
    (["[1, 2, 3]"], [(1, "", "invalid")]),
])
def test_bad_lines_commit_nothing_and_name_line_and_field(admin_api, lines, expected):
    before = counts()
    response = post(admin_api, body(*lines))
    error = assert_error(response, 400, "invalid_import")
    assert "nothing was imported" in error["message"]
    assert errors_of(response) == expected
    assert counts() == before


def test_every_error_of_every_line_is_reported(admin_api):
    before = counts()
    response = post(admin_api, body(
        line(external_id="fine"),
        '{"oops"',
        {"messages": [{"role": "robot", "content": ""}], "source": 5, "surprise": True},
        line(external_id="fine"),
    ))
    assert_error(response, 400)
    assert errors_of(response) == [
        (2, "", "invalid_json"),
        (3, "messages[0].role", "wrong_role"),
        (3, "source", "invalid"),
        (3, "surprise", "unknown_field"),
        (4, "external_id", "duplicate"),  # the same id twice in one file
    ]
    assert counts() == before


def test_non_utf8_line_is_named(admin_api):
    response = post(admin_api, json.dumps(line()).encode() + b"\n" + b'{"messages": "\xff\xfe"}\n')
    assert errors_of(response) == [(2, "", "invalid_json")]


def test_reimport_is_a_duplicate_not_a_second_copy(admin_api):
    data = body(line(external_id="d-1", source="s"), line(external_id="d-2", source="s"))
    assert post(admin_api, data).status_code == 201
    before = counts()
    response = post(admin_api, data)
    error = assert_error(response, 409, "duplicate")
    assert errors_of(response) == [(1, "external_id", "duplicate"), (2, "external_id", "duplicate")]
    assert "already imported" in error["details"]["errors"][0]["message"]
    assert counts() == before
    # The same external id from another source is another conversation.
    assert post(admin_api, body(line(external_id="d-1", source="other"))).status_code == 201
    # A hash-identified dialogue is recognised too.
    assert post(admin_api, body(line())).status_code == 201
    assert_error(post(admin_api, body(line())), 409, "duplicate")


def test_skip_duplicates_imports_the_rest(admin_api):
    assert post(admin_api, body(line(external_id="k-1"))).status_code == 201
    response = post(admin_api, body(line(external_id="k-1"), line(external_id="k-2")), "?on_duplicate=skip")
    assert response.status_code == 201
    result = response.json()
    assert result["imported"] == 1 and result["duplicates"][0]["line"] == 1
    assert Conversation.objects.filter(external_id="k-1").count() == 1
    # Nothing new at all: 200, not 201.
    again = post(admin_api, body(line(external_id="k-1")), "?on_duplicate=skip")
    assert again.status_code == 200 and again.json()["imported"] == 0


def test_the_database_constraint_catches_a_concurrent_duplicate(admin_api, monkeypatch):
    assert post(admin_api, body(line(external_id="race"))).status_code == 201
    real = importer._already_imported
    calls = []

    def first_check_misses(items):
        # As if another import committed between our duplicate check and our insert.
        calls.append(1)
        return {} if len(calls) == 1 else real(items)

    monkeypatch.setattr(importer, "_already_imported", first_check_misses)
    before = counts()
    response = post(admin_api, body(line(external_id="race"), line(external_id="fresh")))
    assert_error(response, 409, "duplicate")
    assert errors_of(response) == [(1, "external_id", "duplicate")]
    assert counts() == before


def test_size_limit_is_a_413_with_a_clear_message(admin_api, settings):
    settings.API_IMPORT_MAX_BYTES = 1000
    before = counts()
    big = body(*[line(external_id=f"big-{i}") for i in range(20)])
    assert len(big) > 1000
    for response in (
        post(admin_api, big),
        admin_api.multipart(URL, {"file": SimpleUploadedFile("big.jsonl", big)}),
    ):
        error = assert_error(response, 413, "too_large")
        assert "limit of" in error["message"] and "Split" in error["message"]
    assert counts() == before
    assert post(admin_api, body(line(external_id="small"))).status_code == 201


def test_empty_and_missing_bodies(admin_api):
    assert_error(post(admin_api, b"\n\n"), 400, "empty")
    # A body-less POST carries no content type: the answer says how to send the file.
    error = assert_error(post(admin_api, b""), 400, "invalid")
    assert "application/x-ndjson" in error["details"]["file"][0]
    assert_error(admin_api.multipart(URL, {"note": "no file"}), 400, "invalid")
    assert_error(post(admin_api, b"{}", content_type="application/xml"), 415)


def test_only_admins_import(researcher_api, admin_api):
    assert_error(post(researcher_api, body(line())), 403)
    assert Conversation.objects.count() == 0


def test_import_page_shows_every_error_and_imports_nothing(client, admin, researcher):
    client.force_login(admin)
    bad = SimpleUploadedFile("bad.jsonl", body(line(external_id="p-1"), {"messages": [{"role": "tool"}]}))
    response = client.post("/exports/import/", {"file": bad, "source": "page", "on_duplicate": "error"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "nothing was imported" in page and "messages[0].role" in page and "<td>2</td>" in page
    assert Conversation.objects.count() == 0
    good = SimpleUploadedFile("good.jsonl", body(line(external_id="p-1"), line(external_id="p-2")))
    response = client.post("/exports/import/", {"file": good, "source": "page", "on_duplicate": "error"})
    assert response.status_code == 200
    assert "2 conversations imported" in response.content.decode()
    assert set(Conversation.objects.values_list("source_label", flat=True)) == {"page"}
    client.force_login(researcher)
    assert client.get("/exports/import/").status_code == 403


def test_import_page_refuses_oversized_uploads(client, admin, settings):
    settings.API_IMPORT_MAX_BYTES = 500
    client.force_login(admin)
    big = SimpleUploadedFile("big.jsonl", body(*[line(external_id=f"b{i}") for i in range(10)]))
    response = client.post("/exports/import/", {"file": big, "on_duplicate": "error"})
    assert response.status_code == 413 and "limit of" in response.content.decode()
    assert Conversation.objects.count() == 0
