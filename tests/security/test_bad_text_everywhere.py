"""Text PostgreSQL cannot store (NUL, lone surrogates) sent to every form of every page and to every
writable field of the API: never a 5xx, and the API's refusal names the field in its JSON error shape.

Forms are found, not listed: every page of url_access.py is fetched as a role that may see it, each
<form method="post"> in it is parsed and posted back with NUL in every text field (form-encoded bodies
cannot carry a lone surrogate: Django decodes those bytes to U+FFFD) and a bad file in every file field.
API bodies come from the OpenAPI schema. Each attempt runs in a savepoint that is rolled back, so one
form's effect (a deactivated user, a closed campaign) cannot hide another's failure."""
import json
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse

from .url_access import OK, URL_ACCESS

NUL = "bad\x00text"
SURROGATE = "bad\ud800text"
BAD_FILE_LINES = (b'{"id": "x1", "text": "a\\u0000b", "ground_truth_diagnosis": "d", "external_id": "e1", '
                  b'"messages": [{"role": "user", "content": "hi\\ud800"}]}\n')
TEXT_INPUTS = {"text", "search", "email", "url", "tel", "password", "hidden", "number", "date", "datetime-local", ""}


class _Forms(HTMLParser):
    """Collect POST forms: action and fields (name, kind, a valid default for selects/checkboxes)."""

    def __init__(self):
        super().__init__()
        self.forms, self._form, self._select = [], None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._form = {"action": a.get("action") or "", "fields": []}
        elif self._form is None or not a.get("name"):
            return
        elif tag == "input":
            kind = (a.get("type") or "").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            self._form["fields"].append((a["name"], kind, a.get("value") or "on"))
        elif tag == "textarea":
            self._form["fields"].append((a["name"], "textarea", ""))
        elif tag == "select":
            self._select = [a["name"], "select", None]
        elif tag == "option" and self._select is not None and self._select[2] is None:
            self._select[2] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self._form is not None:
            name, kind, first = self._select
            self._form["fields"].append((name, kind, first or ""))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def _bad_form_data(fields):
    data = {}
    for name, kind, default in fields:
        if name == "csrfmiddlewaretoken":
            continue
        if kind == "file":
            data[name] = SimpleUploadedFile("bad.jsonl", BAD_FILE_LINES, content_type="application/x-ndjson")
        elif kind in ("select", "checkbox", "radio"):
            data[name] = default
        elif kind in TEXT_INPUTS or kind == "textarea":
            data[name] = NUL
    return data


def _viewer(access):
    return next((r for r in ("admin", "researcher", "rater") if access.expect.get(r) == OK), None)


def _attempt(client, method, url, **kwargs):
    with transaction.atomic():
        response = getattr(client, method)(url, **kwargs)
        transaction.set_rollback(True)
    return response


@pytest.mark.django_db
def test_nul_in_every_form_field_of_every_page_is_never_a_server_error(world):
    failures, posted = [], 0
    for name, access in URL_ACCESS.items():
        role = _viewer(access)
        if access.method != "GET" or role is None or name.startswith("api:") or name == "logout":
            continue
        client = Client(raise_request_exception=False)
        client.force_login(world.user(role))
        page_url = reverse(name, kwargs=access.kwargs(world))
        page = client.get(page_url)
        if "html" not in page.headers.get("Content-Type", ""):
            continue
        parser = _Forms()
        parser.feed(page.content.decode())
        for form in parser.forms:
            action = form["action"] or page_url
            if action.endswith("/logout/"):
                continue
            client.force_login(world.user(role))
            response = _attempt(client, "post", action, data=_bad_form_data(form["fields"]))
            posted += 1
            if response.status_code >= 500:
                failures.append(f"{name} -> POST {action}: {response.status_code}")
        # Query strings too: every page with a NUL in a parameter.
        response = client.get(page_url, {"q": NUL, "page": NUL, "status": NUL})
        if response.status_code >= 500:
            failures.append(f"{name} ?q=NUL: {response.status_code}")
    assert posted >= 20, f"only {posted} forms found: the form discovery is broken"
    assert not failures, failures


def _json_operations(client):
    schema = client.get(reverse("api:schema"), {"format": "json"}).json()
    components = schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if method in ("post", "put", "patch") and body:
                ref = body.get("$ref", "").rsplit("/", 1)[-1]
                yield path, method, components.get(ref, body).get("properties", {})


def _fill(path, world):
    for prefix, obj in (("/api/v1/campaigns/", "campaign"), ("/api/v1/jobs/", "job"),
                        ("/api/v1/conversations/", "conversation")):
        if path.startswith(prefix):
            return path.replace("{id}", str(world.objects[obj].pk)).replace("{pk}", str(world.objects[obj].pk))
    return path


@pytest.mark.django_db
def test_every_writable_api_field_refuses_bad_text_with_a_4xx_naming_the_field(world):
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {world.tokens['admin']}")
    failures, tried = [], 0
    for path, method, properties in _json_operations(client):
        url = _fill(path, world)
        for field_name in properties:
            for bad in (NUL, SURROGATE, [NUL], {"k": SURROGATE}):
                body = json.dumps({field_name: bad})  # ASCII-escaped: "\u0000", "\ud800" as JSON allows
                response = _attempt(client, method, url, data=body, content_type="application/json")
                tried += 1
                error = response.json().get("error", {}) if "json" in response.headers.get("Content-Type", "") else {}
                if response.status_code >= 500 or not 400 <= response.status_code < 500:
                    failures.append(f"{method.upper()} {url} {field_name}={bad!r}: {response.status_code}")
                elif not any(str(key).startswith(field_name) for key in error.get("details", {})):
                    failures.append(f"{method.upper()} {url} {field_name}: error does not name the field: {error}")
        # A bad key, too.
        response = _attempt(client, method, url, data=json.dumps({NUL: 1}), content_type="application/json")
        if response.status_code != 400:
            failures.append(f"{method.upper()} {url} bad key: {response.status_code}")
    assert tried >= 10, f"only {tried} API fields tried: schema discovery is broken"
    assert not failures, failures


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [b'"a\\u0000b"', b'"a\\ud800b"', b'"a\x00b"'])
def test_conversation_import_refuses_bad_text_naming_the_line(world, bad):
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {world.tokens['admin']}")
    turns = b'[{"role": "user", "content": "hello"}, {"role": "assistant", "content": '
    good = b'{"external_id": "ok-1", "messages": ' + turns + b'"How are you?"}]}\n'
    line = b'{"external_id": "bad-1", "messages": ' + turns + bad + b"}]}\n"
    response = client.post(reverse("api:conversation_import"), data=good + line,
                           content_type="application/x-ndjson")
    assert 400 <= response.status_code < 500, response.content[:500]
    errors = response.json()["error"]["details"]["errors"]
    assert [(e["line"], e["field"]) for e in errors] in ([(2, "messages[1].content")], [(2, "")]), errors
    from generation.models import Conversation

    assert not Conversation.objects.filter(external_id__in=["ok-1", "bad-1"]).exists()


# --- JSON carried inside forms and files: the escapes "\u0000" and "\ud800" decode to unstorable text -----
@pytest.mark.django_db
@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_json_escapes_in_model_extra_params_are_a_form_error(world, escape):
    from generation.models import ModelConfig

    client = Client(raise_request_exception=False)
    client.force_login(world.admin)
    response = client.post(reverse("generation:model_create"), {
        "name": "escaped", "model": "openai/gpt-4o-mini", "temperature": "0.7", "max_tokens": "512",
        "extra_params": '{"top_p": 1, "stop": ["a' + escape + 'b"]}', "is_active": "on",
    })
    assert response.status_code == 200
    assert "extra_params" in response.context["form"].errors
    assert "stop[0]" in response.context["form"].errors["extra_params"][0]
    assert not ModelConfig.objects.filter(name="escaped").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_json_escapes_in_an_uploaded_rubric_are_a_form_error_naming_the_field(world, escape):
    from rating.models import Rubric
    from rating.rubric_files import DEFAULT_RUBRIC_FILE

    data = json.loads(DEFAULT_RUBRIC_FILE.read_text())
    data["slug"] = "escaped-rubric"
    text = json.dumps(data).replace('"label": "', '"label": "x' + escape, 1)
    client = Client(raise_request_exception=False)
    client.force_login(world.admin)
    upload = SimpleUploadedFile("rubric.json", text.encode(), content_type="application/json")
    response = client.post(reverse("campaigns:rubrics"), {"file": upload})
    assert response.status_code == 200
    error = response.context["form"].errors["file"][0]
    assert ".label" in error and ("NUL" in error or "surrogate" in error), error
    assert not Rubric.objects.filter(slug="escaped-rubric").exists()


@pytest.mark.django_db
def test_a_rating_comment_with_nul_is_refused_beside_its_field_and_nothing_is_saved(world):
    from rating.models import Rating

    client = Client(raise_request_exception=False)
    client.force_login(world.rater)
    assignment = world.objects["assignment"]
    response = client.post(reverse("rating:save", args=[assignment.pk]),
                           {"overall_comment": NUL, "note__1": NUL})
    assert response.status_code == 422
    assert b'id="err-overall_comment"' in response.content and b"NUL character" in response.content
    rating = Rating.objects.filter(assignment=assignment).first()
    assert rating is None or "\x00" not in (rating.overall_comment or "")
