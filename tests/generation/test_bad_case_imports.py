"""Issue 14's 17 bad case-study imports (scripts/bad_inputs.py) through the real import page: each
answers with its error in the page, never a 5xx, and commits nothing."""
import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from generation.models import CaseStudy
from scripts.bad_inputs import BAD_CASE_IMPORTS, HEADER, ROW
from tests.factories import make_case, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bad", BAD_CASE_IMPORTS, ids=[b.kind for b in BAD_CASE_IMPORTS])
def test_each_bad_import_gets_a_clear_error_and_commits_nothing(client, bad):
    client.force_login(make_user(Role.ADMIN))
    make_case(external_id="already-there")
    before = list(CaseStudy.objects.values_list("external_id", "text"))
    upload = SimpleUploadedFile(bad.filename, bad.make(), content_type="application/octet-stream")
    response = client.post(reverse("generation:case_import"), {"file": upload})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert bad.expect in page, page[page.find("<main"):][:2000]
    assert list(CaseStudy.objects.values_list("external_id", "text")) == before


def test_the_count_is_seventeen_and_a_utf8_bom_is_simply_accepted(client):
    assert len(BAD_CASE_IMPORTS) == 17
    client.force_login(make_user(Role.ADMIN))
    upload = SimpleUploadedFile("cases.csv", ("\ufeff" + HEADER + f"bom-1,{ROW},MDD\n").encode())
    client.post(reverse("generation:case_import"), {"file": upload})
    assert CaseStudy.objects.filter(external_id="bom-1").exists()


def test_markup_in_a_case_text_is_stored_as_text_and_shown_escaped(client):
    client.force_login(make_user(Role.ADMIN))
    upload = SimpleUploadedFile("cases.csv", (HEADER + "xss-1,<script>alert(1)</script> BP < 90,MDD\n").encode())
    client.post(reverse("generation:case_import"), {"file": upload})
    case = CaseStudy.objects.get(external_id="xss-1")
    assert case.text == "<script>alert(1)</script> BP < 90"
    page = client.get(reverse("generation:case_review", args=[case.pk])).content
    assert b"<script>alert(1)</script>" not in page and b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
