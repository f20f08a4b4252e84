"""Forgetting visits and holds older than the attribution window, a few thousand rows at a time.

Each batch is its own short transaction: page views outnumber calls by far, and one long delete
would hold SQLite's write lock (or PostgreSQL's row locks) while webhooks wait to be written.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from phonewagon_server.config import Settings
from phonewagon_server.db import Connection, Database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db import visits as visit_rows

logger = logging.getLogger(__name__)

BATCH_ROWS = 2000
PURGE_EVERY_SECONDS = 3600
DAY_MS = 86_400_000


class Deletion(Protocol):
    def __call__(self, tx: Connection, before: int, *, limit: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Purged:
    visits: int
    holds: int


def purge_visits(
    database: Database, *, now: int, attribution_days: int, batch: int = BATCH_ROWS
) -> Purged:
    """Delete the visits made, and the holds over, before the window that ends `now`."""
    before = now - attribution_days * DAY_MS
    return Purged(
        visits=_in_batches(database, visit_rows.delete_visits_before, before, batch),
        holds=_in_batches(database, pool_rows.delete_holds_before, before, batch),
    )


def _in_batches(database: Database, delete: Deletion, before: int, batch: int) -> int:
    """`delete` the rows before `before`, `batch` rows a transaction; how many in all."""
    deleted = 0
    while True:
        with database.transaction(write=True) as tx:
            count = delete(tx, before, limit=batch)
        deleted += count
        if count < batch:
            return deleted


class HourlyPurge:
    """`purge_visits` at start and then every hour, in a thread (several processes purging at
    once is harmless: a row is deleted once)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.attribution_days = settings.attribution_days
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phonewagon-dni-purge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                now = int(time.time() * 1000)
                purged = purge_visits(
                    self.database, now=now, attribution_days=self.attribution_days
                )
                logger.info("dni: purged %d visits and %d holds", purged.visits, purged.holds)
            except Exception:  # the database away, or a bug: logged, and tried next hour
                logger.exception("dni purge failed")
            self._stopping.wait(PURGE_EVERY_SECONDS)
