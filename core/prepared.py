"""Fixed SQL of the rater hot path, PREPAREd once per database connection.

For the short statements of "next", the rating page and "submit", PostgreSQL's parse and plan cost as much
as the run or more (own_assignment_or_none's five-table join by primary key: 0.39 ms to plan, 0.12 ms to
run). A prepared statement is planned once per connection and then only executed (the settings' connection
option plan_cache_mode=force_generic_plan: by default PostgreSQL would plan its first five runs afresh on
every connection); PostgreSQL re-plans it by itself if a table it reads changes (an ALTER, an ANALYZE).

`Prepared` takes SQL written as for `cursor.execute` with named parameters (``%(name)s``), one statement or
several separated by ``;``, and the PostgreSQL type of every parameter. Each statement is PREPAREd under
its own name the first time a connection runs it; a call sends ``EXECUTE name_0 (...); EXECUTE name_1
(...)``, one round trip as before, with the same values, the same order and the same locks (each EXECUTE
is still a statement of its own, with its own snapshot). Statements PostgreSQL cannot prepare (SAVEPOINT,
SET) stay as written.

The set of names prepared on a connection lives on Django's per-thread DatabaseWrapper and is emptied when
it reconnects (`connection_created`); a PREPARE is not undone by a rollback, so the set stays exact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

_NAMED = re.compile(r"%\((\w+)\)s")
# Utility statements PREPARE does not accept; they are sent as written.
_NOT_PREPARABLE = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|SET|BEGIN|COMMIT)\b", re.IGNORECASE)


def prepared_names() -> set[str]:
    """Names PREPAREd on this thread's current connection (`django.db.connection` is a proxy shared by all
    threads, so the set is kept on the thread's own DatabaseWrapper)."""
    return connections[DEFAULT_DB_ALIAS].__dict__.setdefault("_mhsd_prepared", set())


@receiver(connection_created, dispatch_uid="core.prepared.forget")
def _forget_prepared(sender, connection, **kwargs):
    connection.__dict__["_mhsd_prepared"] = set()


def _split(sql: str) -> list[str]:
    """The statements of `sql`: split at semicolons outside quotes (our SQL has no dollar quoting)."""
    parts, current, quote = [], [], False
    for ch in sql:
        if ch == "'":
            quote = not quote
        if ch == ";" and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


@dataclass
class Prepared:
    """`sql` (named %(x)s parameters; one or more statements) prepared under `name` (short: PostgreSQL cuts
    names at 63 bytes). `types` gives each parameter's PostgreSQL type, e.g. {"campaign": "bigint"}."""

    name: str
    sql: str
    types: dict[str, str]
    _statements: list[tuple[str | None, str, list[str]]] = field(init=False, repr=False)
    _execute: str = field(init=False, repr=False)

    def __post_init__(self):
        assert len(self.name) <= 40 and re.fullmatch(r"[a-z_][a-z0-9_]*", self.name), self.name
        self._statements, calls = [], []
        for i, statement in enumerate(_split(self.sql)):
            if _NOT_PREPARABLE.match(statement):
                self._statements.append((None, statement, []))
                calls.append(statement)
                continue
            order: list[str] = []
            for param in _NAMED.findall(statement):
                if param not in order:
                    order.append(param)
            missing = [p for p in order if p not in self.types]
            assert not missing, f"no type for {missing} in {self.name}"
            position = {p: i for i, p in enumerate(order, 1)}
            body = _NAMED.sub(lambda m, position=position: f"${position[m.group(1)]}", statement)
            name = f"{self.name}_{i}"
            self._statements.append((name, body, order))
            args = ", ".join(f"%({p})s::{self.types[p]}" for p in order)
            calls.append(f"EXECUTE {name}" + (f" ({args})" if order else ""))
        self._execute = "; ".join(calls)

    def execute(self, cursor, params: dict) -> None:
        """Run the statements on `cursor` (a Django cursor) in one round trip, preparing them first on a
        connection that has not seen them. Read the last statement's rows from the cursor as usual."""
        done = prepared_names()
        for name, body, order in self._statements:
            if name is not None and name not in done:
                types = ", ".join(self.types[p] for p in order)
                cursor.execute(f"PREPARE {name}" + (f" ({types})" if order else "") + f" AS {body}")
                done.add(name)
        cursor.execute(self._execute, params)


def insert_sql(model, rows: int = 1, *, prefix: str = "", fixed: dict[str, str] | None = None,
               select_tail: str | None = None) -> tuple[str, dict[str, str]]:
    """An INSERT of `rows` rows into `model`'s table (every concrete field but the primary key, as
    bulk_create writes them) for `Prepared`: each value the named parameter ``{prefix}{row}_{attname}``,
    unless `fixed` gives SQL for that field (e.g. the id inserted just before). Returns the SQL and the
    parameters' PostgreSQL types; `insert_params` gives the values.

    With `select_tail` (one row only), ``INSERT ... SELECT <values> <select_tail>`` instead of VALUES, for
    an insert that depends on a condition or takes a value from another row (``FROM x WHERE ...``)."""
    from django.db import connection

    fixed = fixed or {}
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    types, tuples = {}, []
    for row in range(rows):
        values = []
        for f in fields:
            if f.attname in fixed:
                values.append(fixed[f.attname])
                continue
            param = f"{prefix}{row}_{f.attname}"
            types[param] = f.db_type(connection)
            values.append(f"%({param})s")
        tuples.append("(" + ", ".join(values) + ")")
    columns = ", ".join(f'"{f.column}"' for f in fields)
    if select_tail is not None:
        assert rows == 1, "a conditional insert is of one row"
        return f'INSERT INTO "{model._meta.db_table}" ({columns}) SELECT {tuples[0][1:-1]} {select_tail}', types  # noqa: S608
    return f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES {", ".join(tuples)}', types  # noqa: S608


def insert_params(model, objs, *, prefix: str = "", fixed=()) -> dict:
    """The values of `insert_sql`'s parameters for `objs`, as bulk_create would write them: defaults and
    auto_now applied (and set on the objects), prepared for the database."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in fixed]
    params = {}
    for row, obj in enumerate(objs):
        for f in fields:
            value = f.pre_save(obj, add=True)
            setattr(obj, f.attname, value)
            params[f"{prefix}{row}_{f.attname}"] = f.get_db_prep_save(value, connection)
    return params


def as_bigint(value) -> int | None:
    """`value` (e.g. an id from a URL or a session) as an int a bigint parameter accepts, or None when it
    cannot be one (not an integer, or out of range: psycopg2 would raise rather than find nothing)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -2**63 <= number < 2**63 else None
