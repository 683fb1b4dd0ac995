"""The password backend: Django's ModelBackend, reading the user of each signed-in request with a prepared
statement.

Every page a rater opens loads its user from the session's user id. Through the ORM that look-up compiled a
query and built the model the slow way on every request (about a sixth of a submission's time); here the
statement is PREPAREd once per database connection (core/prepared.py) and the row becomes a User with
from_db, as the ORM would make it. What is checked is unchanged: an inactive user gets no session
(user_can_authenticate), and django.contrib.auth still verifies the session's password hash.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connection

from core.prepared import Prepared, as_bigint

_statement: Prepared | None = None
_names: list[str] = []


def user_by_id(user_id):
    """The user with primary key `user_id`, or None; one EXECUTE of a prepared statement."""
    global _statement, _names
    User = get_user_model()
    if _statement is None:
        fields = User._meta.concrete_fields
        columns = ", ".join(f'u."{f.column}"' for f in fields)
        _names = [f.attname for f in fields]
        _statement = Prepared("mhsd_session_user", f"SELECT {columns} FROM {User._meta.db_table} u"  # noqa: S608
                              f" WHERE u.\"{User._meta.pk.column}\" = %(pk)s", {"pk": "bigint"})
    user_id = as_bigint(user_id) if isinstance(user_id, int) else None
    if user_id is None:
        return None
    with connection.cursor() as cursor:
        _statement.execute(cursor, {"pk": user_id})
        row = cursor.fetchone()
    return None if row is None else User.from_db("default", _names, row)


class PasswordBackend(ModelBackend):
    """Signs in with username and password exactly as ModelBackend does."""

    def get_user(self, user_id):
        user = user_by_id(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
