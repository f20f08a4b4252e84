"""Website visits: the page views that carry a touch, kept for the attribution window."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from phonewagon_server.db.engine import Connection


@dataclass(frozen=True, slots=True)
class StoredVisit:
    id: int
    created_at: int
    paid: bool
    fields: dict[str, str]  # the call fields it gives, `user_source` among them


def insert_visit(
    tx: Connection,
    *,
    company_id: int,
    visitor: str,
    now: int,
    paid: bool,
    fields: dict[str, str],
) -> None:
    tx.execute(
        "INSERT INTO dni_visits (company_id, visitor, created_at, paid, fields)"
        " VALUES (?, ?, ?, ?, ?)",
        (company_id, visitor, now, int(paid), orjson.dumps(fields).decode()),
    )


def has_visit_since(tx: Connection, company_id: int, visitor: str, since: int) -> bool:
    row = tx.fetchone(
        "SELECT 1 FROM dni_visits WHERE company_id = ? AND visitor = ? AND created_at >= ? LIMIT 1",
        (company_id, visitor, since),
    )
    return row is not None


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
