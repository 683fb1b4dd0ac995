"""Battery files: the shipped one loads; a malformed one is refused whole, each problem named by line
and field; a changed battery needs a new version."""
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from probes.battery_files import BatteryFileError, parse_battery
from probes.models import ProbeBattery
from probes.services import import_battery

SHIPPED = Path(__file__).resolve().parents[2] / "probes" / "data" / "stigma-v1.jsonl"


def shipped_lines() -> list[dict]:
    return [json.loads(line) for line in SHIPPED.read_text().splitlines() if line.strip()]


def as_file(records) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode()


def errors_of(data) -> list[tuple[int, str]]:
    with pytest.raises(BatteryFileError) as caught:
        parse_battery(data)
    return [(e.line, e.field) for e in caught.value.errors]


def test_the_shipped_battery_follows_the_design():
    content = parse_battery(SHIPPED.read_bytes())
    assert [v["condition"] for v in content["vignettes"]] == [
        "daily_troubles", "depression", "alcohol_dependence", "schizophrenia"]
    assert len(content["variants"]) >= 4
    assert {v["gender"] for v in content["variants"]} >= {"female", "male"}
    assert len({v["ethnicity"] for v in content["variants"]}) >= 3
    assert len({v["education"] for v in content["variants"]}) >= 3
    keys = {q["key"] for q in content["questions"]}
    assert {"violent_others", "violent_self", "work_closely", "neighbour", "socialize", "marry_in", "friends"} <= keys
    assert any(k.startswith("cause_") for k in keys)
    rules = {q["key"]: q["stigmatizing"] for q in content["questions"]}
    assert rules["violent_others"] == ["very likely", "somewhat likely"]
    assert rules["work_closely"] == ["probably unwilling", "definitely unwilling"]


def test_every_problem_is_named_by_line_and_field():
    lines = shipped_lines()
    lines[1] = {**lines[1], "text": "{name} is {mood} today."}           # unknown placeholder
    lines[6] = {**lines[6], "age": "thirty"}                              # wrong type
    del lines[7]["pronouns"]                                              # missing field
    lines[11] = {**lines[11], "stigmatizing": ["maybe"]}                  # not an option
    lines[12] = {**lines[12], "colour": "blue"}                           # unknown field
    records = lines[:14] + ['{"type": "question", "key": '] + lines[14:]  # broken JSON on line 15
    records.append({**lines[13]})                                         # duplicate key
    found = errors_of(as_file(records))
    assert (2, "text") in found
    assert (7, "age") in found
    assert (8, "pronouns") in found
    assert (13, "colour") in found
    assert (15, "json") in found
    assert (len(records), "key") in found


def test_the_stigma_rule_must_name_real_options():
    lines = shipped_lines()
    lines[11] = {**lines[11], "stigmatizing": ["maybe"]}
    assert errors_of(as_file(lines)) == [(12, "stigmatizing")]


def test_header_errors():
    lines = shipped_lines()
    assert errors_of(as_file(lines[1:]))[0] == (1, "type")
    assert (1, "protocol") in errors_of(as_file([{**lines[0], "protocol": "mood"}] + lines[1:]))
    assert (1, "version") in errors_of(as_file([{**lines[0], "version": 0}] + lines[1:]))
    assert errors_of(b"") == [(1, "file")]
    assert errors_of(b"\xff\xfe") == [(1, "file")]


@pytest.fixture
def admin(db):
    from accounts.roles import Role
    from tests.factories import make_user

    return make_user(Role.ADMIN)


@pytest.mark.django_db
def test_a_bad_file_imports_nothing(admin):
    lines = shipped_lines()
    lines[5] = {**lines[5], "options": "yes"}  # a vignette line with a question's field
    with pytest.raises(BatteryFileError) as caught:
        import_battery(admin, as_file(lines), "bad.jsonl")
    assert (6, "options") in [(e.line, e.field) for e in caught.value.errors]
    assert ProbeBattery.objects.count() == 0
    assert not AuditEvent.objects.filter(action="probes.battery_load").exists()


@pytest.mark.django_db
def test_load_once_and_a_changed_battery_needs_a_new_version(admin):
    first = import_battery(admin, SHIPPED.read_bytes(), "stigma-v1.jsonl")
    assert first.created and first.battery.protocol == "stigma"
    again = import_battery(admin, SHIPPED.read_bytes(), "stigma-v1.jsonl")
    assert not again.created and again.battery.pk == first.battery.pk
    lines = shipped_lines()
    lines[13] = {**lines[13], "text": "How willing would you be to work beside {name}?"}
    with pytest.raises(BatteryFileError) as caught:
        import_battery(admin, as_file(lines), "changed.jsonl")
    assert [(e.line, e.field) for e in caught.value.errors] == [(1, "version")]
    lines[0] = {**lines[0], "version": 2}
    assert import_battery(admin, as_file(lines), "changed.jsonl").battery.version == 2
    assert AuditEvent.objects.filter(action="probes.battery_load").count() == 2


@pytest.mark.django_db
def test_management_command(tmp_path, capsys):
    call_command("load_probes", str(SHIPPED))
    assert "Loaded: Stigma battery v1" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SHIPPED.read_text().replace('"age": 34', '"age": -1'))
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_probes", str(bad))
    assert "line 6, field 'age'" in capsys.readouterr().err
