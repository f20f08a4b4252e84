"""Website visits: the page views that carry a touch, kept for the attribution window."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import orjson

from phonewagon_server.db.batches import among, rows_table
from phonewagon_server.db.engine import Connection


@dataclass(frozen=True, slots=True)
class StoredVisit:
    id: int
    created_at: int
    paid: bool
    fields: dict[str, str]  # the call fields it gives, `user_source` among them


@dataclass(frozen=True, slots=True)
class NewVisit:
    company_id: int
    visitor: str
    created_at: int
    paid: bool
    fields: dict[str, str]


def insert_visits(tx: Connection, visits: Sequence[NewVisit]) -> None:
    if not visits:
        return
    new, params = rows_table(
        tx,
        ("BIGINT", "TEXT", "BIGINT", "INTEGER", "TEXT"),
        [
            (v.company_id, v.visitor, v.created_at, int(v.paid), orjson.dumps(v.fields).decode())
            for v in visits
        ],
    )
    tx.execute(
        "INSERT INTO dni_visits (company_id, visitor, created_at, paid, fields)"
        f" SELECT * FROM {new}",
        params,
    )


def insert_visit(
    tx: Connection,
    *,
    company_id: int,
    visitor: str,
    now: int,
    paid: bool,
    fields: dict[str, str],
) -> None:
    insert_visits(tx, [NewVisit(company_id, visitor, now, paid, fields)])


def last_visits(
    tx: Connection, company_ids: Collection[int], visitors: Collection[str]
) -> dict[tuple[int, str], int]:
    """When each of these visitors of these companies (and other pairs of them) last visited."""
    of_companies, company_params = among(tx, "company_id", company_ids, "BIGINT")
    of_visitors, visitor_params = among(tx, "visitor", visitors, "TEXT")
    rows = tx.fetchall(
        "SELECT company_id, visitor, MAX(created_at) FROM dni_visits"
        f" WHERE {of_companies} AND {of_visitors} GROUP BY company_id, visitor",
        [*company_params, *visitor_params],
    )
    return {(int(row[0]), str(row[1])): int(row[2]) for row in rows}


def first_touch(
    tx: Connection, company_id: int, visitor: str, *, since: int, until: int
) -> StoredVisit | None:
    """The visit that gives a call its fields: the visitor's first paid click in the window,
    else their first visit in it."""
    row = tx.fetchone(
        "SELECT id, created_at, paid, fields FROM dni_visits"
        " WHERE company_id = ? AND visitor = ? AND created_at >= ? AND created_at <= ?"
        " ORDER BY paid DESC, created_at, id LIMIT 1",
        (company_id, visitor, since, until),
    )
    if row is None:
        return None
    return StoredVisit(
        id=int(row[0]), created_at=int(row[1]), paid=bool(row[2]), fields=orjson.loads(row[3])
    )


def delete_visits_before(tx: Connection, before: int, *, limit: int) -> int:
    """Up to `limit` visits made before `before`; how many were deleted."""
    return tx.execute(
        "DELETE FROM dni_visits WHERE id IN"
        " (SELECT id FROM dni_visits WHERE created_at < ? LIMIT ?)",
        (before, limit),
    )
