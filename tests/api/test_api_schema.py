"""The OpenAPI schema is complete and valid: drf-spectacular's own validation (against the OpenAPI 3.0
JSON Schema) with warnings as failures, so an undocumented parameter or response fails the build."""
import json
import re

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from api import urls as api_urls

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.0")
    documented = {(path, method) for path, ops in schema["paths"].items() for method in ops}
    # Every resource route is in the schema (docs, schema and the catch-all 404 are not operations).
    for pattern in api_urls.urlpatterns:
        if pattern.name in ("docs", "schema", "not_found"):
            continue
        # <int:pk> is documented as {id}; other path parameters keep their names (e.g. {run_pk}).
        route = "/api/v1/" + re.sub(r"<int:(\w+)>", lambda m: "{id}" if m.group(1) == "pk" else f"{{{m.group(1)}}}",
                                    str(pattern.pattern))
        assert any(path == route for path, _ in documented), route
    for (path, method) in documented:
        operation = schema["paths"][path][method]
        assert operation.get("summary") or operation.get("description"), (path, method)


def test_schema_is_served_as_json_to_api_users(client):
    from accounts.roles import Role
    from tests.factories import make_user

    client.force_login(make_user(Role.RESEARCHER))
    response = client.get(reverse("api:schema") + "?format=json")
    assert response.status_code == 200
    assert json.loads(response.content)["info"]["title"] == "MHSD rating platform API"
