"""Rubric uploads (the Rubrics page, `manage.py load_rubric`) go through rubric_files.load_rubric, which
writes the audit trail: who loaded which version from where, and which rubric became the default."""
import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.roles import Role
from audit.models import AuditEvent
from rating.models import Rubric
from rating.rubric_files import DEFAULT_RUBRIC_FILE
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def rubric_file(tmp_path, name="small.json", **changes):
    data = {"slug": "small", "name": "Small", "axes": [
        {"key": "flow", "name": "Flow", "kind": "ordinal", "scale": [1, 4]}], **changes}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_the_command_records_each_new_version_and_a_new_default(tmp_path):
    path = rubric_file(tmp_path)
    out = StringIO()
    call_command("load_rubric", str(path), stdout=out)
    assert "Loaded: " in out.getvalue()
    rubric = Rubric.objects.get(slug="small")
    [loaded] = events("rubric.load")
    assert loaded.actor is None and loaded.object_id == str(rubric.pk)
    assert loaded.data["origin"] == f"manage.py load_rubric {path}"
    assert loaded.data["new"]["version"] == 1 and loaded.data["new"]["axes"] == ["flow"]
    assert loaded.data["new"]["default"] is False

    call_command("load_rubric", str(path), stdout=StringIO())  # same content: nothing changes
    assert len(events("rubric.load")) == 1 and not events("rubric.make_default")
    call_command("load_rubric", str(path), "--default", stdout=StringIO())  # same content, now the default
    [made_default] = events("rubric.make_default")
    assert made_default.object_id == str(rubric.pk) and Rubric.objects.get(is_default=True) == rubric

    call_command("load_rubric", str(rubric_file(tmp_path, name="v2.json", description="v2")),
                 stdout=StringIO())
    assert [e.data["new"]["version"] for e in events("rubric.load")] == [1, 2]


def test_a_refused_file_records_nothing(tmp_path):
    path = rubric_file(tmp_path, axes=[{"key": "flow", "kind": "likert"}])
    with pytest.raises(CommandError, match="'kind' must be one of"):
        call_command("load_rubric", str(path), stdout=StringIO())
    assert not Rubric.objects.filter(slug="small").exists() and not events("rubric.load")


def test_an_upload_on_the_rubrics_page_is_recorded_with_its_uploader(client):
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    data = json.loads(DEFAULT_RUBRIC_FILE.read_text())
    data["slug"] = "uploaded"
    upload = SimpleUploadedFile("mine.json", json.dumps(data).encode(), content_type="application/json")
    response = client.post(reverse("campaigns:rubrics"), {"file": upload, "make_default": "on"})
    assert response.status_code == 302
    [loaded] = events("rubric.load")
    assert loaded.actor == admin and loaded.data["origin"] == "upload mine.json"
    assert loaded.data["new"]["slug"] == "uploaded" and loaded.data["new"]["default"] is True
    assert Rubric.objects.get(is_default=True).slug == "uploaded"
