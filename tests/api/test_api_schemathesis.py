"""Schemathesis against the OpenAPI schema, in process (Django's WSGI handler), as an admin: no
operation answers any generated request with a 5xx, and the answers conform to the schema.

Every generated request is also resent with unstorable text (NUL, lone surrogates) and, once per
operation, with an oversized body (see below): neither may get a 5xx either.

Bounded for CI: SCHEMATHESIS_MAX_EXAMPLES examples per operation (default 25, derandomised; set
SCHEMATHESIS_RANDOM=1 to explore new examples). Path ids are sometimes swapped for real objects' ids
so that the code behind a 404 is exercised too. Measured on the shared 2-core machine (2026-12-06, load
from other work): 401 s without the bad-text resend, 450 s with it.
"""
import json
import os

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import build_world
from tests.security.url_access import _probe_run

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
KNOWN: dict = {}


def _raw_schema() -> dict:
    # The same generator that serves /api/v1/schema/; JSON round trip turns lazy strings into str.
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


schema = schemathesis.openapi.from_dict(_raw_schema())
schema.app = WSGIHandler()


@schema.hook
def map_path_parameters(context, path_parameters):
    """Every other generated id becomes the id of a real object of the right kind."""
    value = (path_parameters or {}).get("id")
    if isinstance(value, int) and value % 2 == 0 and KNOWN:
        path = context.operation.path
        kind = ("campaign" if "/campaigns/" in path else "job" if "/jobs/" in path
                else "probe_run" if "/probe-runs/" in path else "conversation")
        path_parameters["id"] = KNOWN[kind]
    return path_parameters


# Import bodies are JSONL text: send the generated strings as they are, like text/plain.
schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")


@pytest.fixture
def admin_headers(db):
    world = build_world()
    KNOWN.update(campaign=world.objects["campaign"].pk, job=world.objects["job"].pk,
                 conversation=world.objects["conversation"].pk, probe_run=_probe_run(world).pk)
    # The WSGI handler would close the test's connection (and its transaction) after every request;
    # Django's own test client disconnects these handlers for the same reason.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {world.tokens['admin']}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    KNOWN.clear()


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=os.environ.get("SCHEMATHESIS_RANDOM") != "1", print_blob=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_operation_answers_with_a_server_error(case, admin_headers, settings):
    # Smaller limits so "too large" is reached quickly: Django's for form and JSON bodies, the import's own.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = settings.API_IMPORT_MAX_BYTES = 1024 * 1024
    case.call_and_validate(
        headers=admin_headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    # The same request again with unstorable text, then (once per operation) an oversized body.
    _call_with_bad_text_then_oversized(case, admin_headers)


# --- Bad text and oversized bodies (issue 14) ------------------------------------------------------
# Every generated request is sent a second time with every string of the body made unstorable (a NUL,
# and in JSON a lone surrogate too, sent as the "\ud800" escape JSON allows) and a NUL in every query
# parameter; then each operation that takes a body gets one larger than the server accepts. None may
# answer 5xx.
NUL, SURROGATE = "\x00", "\ud800"


def _poison(value, bad: str):
    if isinstance(value, str):
        return value + bad
    if isinstance(value, dict):
        return {key: _poison(item, bad) for key, item in value.items()}
    if isinstance(value, list):
        return [_poison(item, bad) for item in value]
    return value


def _oversized(case) -> None:
    too_big = "a" * int(1.5 * 1024 * 1024)
    if isinstance(case.body, str):  # JSONL import text
        case.body = json.dumps({"external_id": "big", "messages": [{"role": "user", "content": too_big}]})
    else:
        case.body = json.dumps({"name": too_big}).encode()


OVERSIZED_DONE: set[str] = set()


def _call_with_bad_text_then_oversized(case, headers) -> None:
    has_body = case.body is not NOT_SET and case.body is not None and not isinstance(case.body, bytes)
    if case.query:
        case.query = _poison(case.query, NUL)
    if isinstance(case.body, str):
        # JSONL text is sent as UTF-8, which cannot carry a lone surrogate at all: NUL only.
        case.body = _poison(case.body, NUL)
    elif has_body:
        # Pre-encoded (ASCII JSON, so the surrogate travels as the "\ud800" escape a client may send).
        case.body = json.dumps(_poison(case.body, NUL + SURROGATE)).encode()
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.operation.label, "bad text", response.status_code, response.text[:300])
    if has_body and case.operation.label not in OVERSIZED_DONE:
        OVERSIZED_DONE.add(case.operation.label)
        _oversized(case)
        response = case.call(headers=headers)
        assert 400 <= response.status_code < 500, (case.operation.label, "oversized", response.status_code)
