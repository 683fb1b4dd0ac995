"""core/prepared.py: fixed SQL PREPAREd once per connection, on the real PostgreSQL."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from core.prepared import Prepared, insert_params, insert_sql, prepared_names

pytestmark = pytest.mark.django_db

TWO_STATEMENTS = Prepared(
    "test_two_statements",
    "SELECT pg_advisory_xact_lock(%(key)s::int, 1); SELECT %(key)s + 1, %(label)s || '; not a split'",
    {"key": "bigint", "label": "text"},
)


def _run(statement, **params):
    with connection.cursor() as cursor:
        statement.execute(cursor, params)
        return cursor.fetchall()


def test_prepares_once_per_connection_and_then_only_executes_in_one_round_trip():
    with CaptureQueriesContext(connection) as first:
        assert _run(TWO_STATEMENTS, key=41, label="x") == [(42, "x; not a split")]
    assert [q["sql"].split(" ")[0] for q in first.captured_queries] == ["PREPARE", "PREPARE", "EXECUTE"]
    with CaptureQueriesContext(connection) as again:
        assert _run(TWO_STATEMENTS, key=1, label="y") == [(2, "y; not a split")]
    assert len(again.captured_queries) == 1
    assert again.captured_queries[0]["sql"].startswith("EXECUTE test_two_statements_0 (")


@pytest.mark.django_db(transaction=True)  # outside the test's transaction: the connection really closes
def test_a_rollback_keeps_the_statements_and_a_new_connection_prepares_them_again():
    _run(TWO_STATEMENTS, key=1, label="a")
    with pytest.raises(RuntimeError), transaction.atomic():
        _run(TWO_STATEMENTS, key=2, label="b")
        raise RuntimeError("roll back")
    # PREPARE is not transactional: still there, and still known to be there.
    assert {"test_two_statements_0", "test_two_statements_1"} <= prepared_names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'test_two%%'")
        assert {r[0] for r in cursor.fetchall()} == {"test_two_statements_0", "test_two_statements_1"}
    connection.close()
    connection.ensure_connection()
    assert not any(n.startswith("test_two") for n in prepared_names())
    assert _run(TWO_STATEMENTS, key=5, label="c") == [(6, "c; not a split")]


@pytest.mark.django_db(transaction=True)  # a real new connection, as after DB_CONN_MAX_AGE runs out
def test_a_new_connection_runs_prepared_statements_on_their_generic_plan_from_the_first_run():
    connection.close()
    for key in range(3):
        _run(TWO_STATEMENTS, key=key, label="x")
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)  # the settings' connection option
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE name LIKE 'test_two%%' ORDER BY name")
        # PostgreSQL's default (auto) would have planned each of the first five runs afresh: 0 generic, 3 custom.
        assert cursor.fetchall() == [("test_two_statements_0", 3, 0), ("test_two_statements_1", 3, 0)]


def test_utility_statements_pass_through_unprepared():
    statement = Prepared("test_savepoint", "SAVEPOINT t_sp; SELECT %(n)s * 2; RELEASE SAVEPOINT t_sp", {"n": "integer"})
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with connection.cursor() as cursor:
            statement.execute(cursor, {"n": 3})
    sql = queries.captured_queries[-1]["sql"]
    assert sql.startswith("SAVEPOINT t_sp; EXECUTE test_savepoint_1 (3::integer); RELEASE SAVEPOINT t_sp")


def test_every_parameter_needs_a_type():
    with pytest.raises(AssertionError, match="no type for"):
        Prepared("test_untyped", "SELECT %(a)s, %(b)s", {"a": "integer"})


def test_insert_writes_the_row_the_orm_would_write():
    sql, types = insert_sql(AuditEvent, prefix="e")
    statement = Prepared("test_audit_insert", sql + " RETURNING id", types)
    event = AuditEvent(action="test.prepared", object_type="x", object_id="7", data={"k": [1, "two"]})
    row = _run(statement, **insert_params(AuditEvent, [event], prefix="e"))
    saved = AuditEvent.objects.get(pk=row[0][0])
    assert (saved.action, saved.object_type, saved.object_id) == ("test.prepared", "x", "7")
    assert saved.data == {"k": [1, "two"]}
    # Defaults were applied as bulk_create applies them, on the object too.
    assert saved.created_at == event.created_at and abs(timezone.now() - saved.created_at).total_seconds() < 60
