"""Forgetting visits and holds older than the attribution window, a few thousand rows at a time.

Each batch is its own short transaction: page views outnumber calls by far, and one long delete
would hold SQLite's write lock (or PostgreSQL's row locks) while webhooks wait to be written.
"""

from __future__ import annotations

from dataclasses import dataclass

from phonewagon_server.db import Database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db import visits as visit_rows

BATCH_ROWS = 2000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Purged:
    visits: int
    holds: int


def purge_visits(
    database: Database, *, now: int, attribution_days: int, batch: int = BATCH_ROWS
) -> Purged:
    """Delete the visits made, and the holds over, before the window that ends `now`."""
    before = now - attribution_days * DAY_MS
    visits = holds = 0
    while True:
        with database.transaction(write=True) as tx:
            deleted = visit_rows.delete_visits_before(tx, before, limit=batch)
        visits += deleted
        if deleted < batch:
            break
    while True:
        with database.transaction(write=True) as tx:
            deleted = pool_rows.delete_holds_before(tx, before, limit=batch)
        holds += deleted
        if deleted < batch:
            break
    return Purged(visits=visits, holds=holds)
