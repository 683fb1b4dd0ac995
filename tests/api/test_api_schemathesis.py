"""Schemathesis against the OpenAPI schema, in process (Django's WSGI handler), as an admin: no
operation answers any generated request with a 5xx, and the answers conform to the schema.

Bounded for CI: SCHEMATHESIS_MAX_EXAMPLES examples per operation (default 25, derandomised; set
SCHEMATHESIS_RANDOM=1 to explore new examples). The whole file runs in
about a minute on 2 cores). Path ids are sometimes swapped for real objects' ids so that the code
behind a 404 is exercised too.
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
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import build_world

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
        kind = "campaign" if "/campaigns/" in path else "job" if "/jobs/" in path else "conversation"
        path_parameters["id"] = KNOWN[kind]
    return path_parameters


# Import bodies are JSONL text: send the generated strings as they are, like text/plain.
schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")


@pytest.fixture
def admin_headers(db):
    world = build_world()
    KNOWN.update(campaign=world.objects["campaign"].pk, job=world.objects["job"].pk,
                 conversation=world.objects["conversation"].pk)
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
def test_no_operation_answers_with_a_server_error(case, admin_headers):
    case.call_and_validate(
        headers=admin_headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
