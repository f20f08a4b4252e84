"""Who has called each company: what makes a live call's `is_first_time_caller`."""

from __future__ import annotations

from collections.abc import Collection

from phonewagon_server.db.engine import Connection

_STAGING = "callers_batch"


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
