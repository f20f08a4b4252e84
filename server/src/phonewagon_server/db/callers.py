"""Who has called each company: what makes a live call's `is_first_time_caller`."""

from __future__ import annotations

import time
from collections.abc import Collection

from phonewagon_server.db.engine import Connection, Database
from phonewagon_server.errors import WriteConflict

_STAGING = "callers_batch"
_BATCH = 5_000
_TRIES = 5


def remember_callers(tx: Connection, callers: Collection[tuple[int, str]]) -> None:
    """Record that each (company id, from number) has called, if not already known. For calls
    written other than live (imports, the demo): their first call is not a live one (`''`)."""
    known = [(company_id, number) for company_id, number in callers if number.startswith("+")]
    if not known:
        return
    tx.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (company_id BIGINT, from_number TEXT)")
    tx.execute(f"{'TRUNCATE' if tx.dialect == 'postgresql' else 'DELETE FROM'} {_STAGING}")
    tx.load_rows(_STAGING, ("company_id", "from_number"), known)
    tx.execute(
        "INSERT INTO callers (company_id, from_number, first_sid)"
        f" SELECT DISTINCT company_id, from_number, '' FROM {_STAGING} WHERE true"
        " ON CONFLICT (company_id, from_number) DO NOTHING"
    )


def remember_callers_after(database: Database, callers: Collection[tuple[int, str]]) -> None:
    """`remember_callers` after an import, in short transactions of their own, in one order.

    Inside the import's transaction, its callers' rows would stay locked until it commits, and a
    webhook's worker inserting some of the same callers in another order would deadlock with it:
    the database would roll one back, maybe the import of a million calls. A batch rolled back
    here for another writer is simply done again.
    """
    ordered = sorted(callers)
    for start in range(0, len(ordered), _BATCH):
        for attempt in range(_TRIES):
            try:
                with database.transaction(write=True) as tx:
                    remember_callers(tx, ordered[start : start + _BATCH])
                break
            except WriteConflict:
                if attempt == _TRIES - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
