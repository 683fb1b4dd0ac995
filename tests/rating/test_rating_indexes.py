"""The hot path's written tables carry no index that another one already leads with (each index is one
more write on next's INSERT and on every submission), and every foreign key is still covered by an index
that leads with it (deletes of the referenced rows, and joins, find their rows by it)."""
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

HOT_TABLES = ["rating_assignment", "rating_axisscore", "rating_pairshare"]


def _index_columns(table: str) -> list[tuple[str, list[str]]]:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT i.relname, array_agg(a.attname ORDER BY k.ord)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid,
                 unnest(x.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attnum = k.attnum
            WHERE t.relname = %s AND a.attrelid = t.oid AND x.indpred IS NULL
            GROUP BY i.relname""", [table])
        return cursor.fetchall()


@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_is_the_leading_part_of_another(table):
    indexes = _index_columns(table)
    redundant = [(name, columns, other) for name, columns in indexes for other, longer in indexes
                 if other != name and len(longer) > len(columns) and longer[:len(columns)] == columns]
    assert redundant == []


# Not rating_pairshare: its rater and partner lead no index by design (rating/models.py: deleting a user,
# which is rare, may scan it).
@pytest.mark.parametrize("table", ["rating_assignment", "rating_axisscore"])
def test_every_foreign_key_leads_an_index(table):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    fk_columns = {info["columns"][0] for info in constraints.values() if info["foreign_key"]}
    leading = {columns[0] for _, columns in _index_columns(table)}
    assert fk_columns and fk_columns <= leading, fk_columns - leading
