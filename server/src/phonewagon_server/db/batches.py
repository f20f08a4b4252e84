"""SQL for a batch of values, in one statement whatever the batch's size.

On PostgreSQL the values go as arrays, one per column, so a statement's text is the same for a
batch of 1 or 500: psycopg prepares it after a few runs, and the server stops planning it each
time (planning was most of a small statement's time). SQLite, in the process, plans a statement
in microseconds: it gets plain lists of placeholders.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from phonewagon_server.db.engine import Connection


def among(
    tx: Connection, column: str, values: Collection[Any], sql_type: str
) -> tuple[str, list[Any]]:
    """`column` is one of `values` (of SQL type `sql_type`): a condition and its parameters."""
    if tx.dialect == "postgresql":
        return f"{column} = ANY(CAST(? AS {sql_type}[]))", [list(values)]
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def rows_table(
    tx: Connection, sql_types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """`rows` as a table `v` of columns `column1`, `column2`, ... of `sql_types`, to select
    from (`FROM {table}`); and its parameters."""
    if tx.dialect == "postgresql":
        arrays = ", ".join(f"CAST(? AS {sql_type}[])" for sql_type in sql_types)
        names = ", ".join(f"column{n}" for n in range(1, len(sql_types) + 1))
        columns = [list(column) for column in zip(*rows, strict=True)]
        return f"unnest({arrays}) AS v({names})", columns
    row = f"({', '.join('?' for _ in sql_types)})"
    return f"(VALUES {', '.join(row for _ in rows)}) AS v", [value for r in rows for value in r]
