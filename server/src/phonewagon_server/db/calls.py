"""Calls: the keyset page query and the idempotent bulk upsert that imports use.

Each call is stored as its rendered JSON document (see `documents`), beside the few columns that
find it: account, company, campaign, start time, id and sid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phonewagon_server.db.engine import Connection, Row
from phonewagon_server.models import CallQuery

# What an import writes for each call, after (account_id, sid) identifies it.
STORED_FIELDS: tuple[str, ...] = ("company_id", "campaign_id", "start_time", "sid", "head", "tail")


def list_calls(tx: Connection, query: CallQuery, *, limit: int) -> list[Row]:
    """Up to `limit` calls matching `query`, newest first, as (start_time, id, JSON document)."""
    return tx.fetchall(*_page_query(query, limit))


def explain_list_calls(tx: Connection, query: CallQuery, *, limit: int) -> list[str]:
    """The engine's plan for `list_calls(query)`, one line per step (for tests and docs)."""
    sql, params = _page_query(query, limit)
    prefix = "EXPLAIN QUERY PLAN " if tx.dialect == "sqlite" else "EXPLAIN "
    return [str(row[-1]) for row in tx.fetchall(prefix + sql, params)]


def _page_query(query: CallQuery, limit: int) -> tuple[str, list[Any]]:
    where = ["c.account_id = ?"]
    params: list[Any] = [query.account_id]
    if query.company_id is not None:
        where.append("c.company_id = ?")
        params.append(query.company_id)
    if query.campaign_id is not None:
        where.append("c.campaign_id = ?")
        params.append(query.campaign_id)
    if query.before_id is None:
        where.append("c.start_time BETWEEN ? AND ?")
        params += [query.start_time, query.end_time]
    else:
        # Resume after the last row sent: every (start_time, id) below it, in one index range.
        #
        #   start_time ↑ … | end_time, before_id | … older calls
        #                       └ rows at end_time with id < before_id, then everything older
        #
        # Spelled out as `start_time < ? OR (start_time = ? AND id < ?)` the index would no
        # longer bound the scan; the row-value form keeps a page at any depth one range read.
        # It already implies `start_time <= end_time`: repeating that bound made PostgreSQL
        # count it twice, underestimate deep pages and sort instead of reading the index.
        # (SQLite seeks on start_time only, as `id` is the rowid: see docs/query-plans.md.)
        where += ["c.start_time >= ?", "(c.start_time, c.id) < (?, ?)"]
        params += [query.start_time, query.end_time, query.before_id]
    params.append(limit)
    sql = (
        "SELECT c.start_time, c.id, c.head || c.id || c.tail FROM calls c"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY c.start_time DESC, c.id DESC LIMIT ?"
    )
    return sql, params


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


_STAGING = "import_batch"
_COLUMNS = ", ".join(STORED_FIELDS)
_DIFFERS = " OR ".join(f"calls.{f} <> excluded.{f}" for f in STORED_FIELDS if f != "sid")
_UPDATES = ", ".join(f"{f} = excluded.{f}" for f in STORED_FIELDS if f != "sid")


def upsert_calls(tx: Connection, account_id: int, rows: Sequence[Sequence[Any]]) -> UpsertCounts:
    """Insert or update calls keyed by (account, sid); each row holds `STORED_FIELDS` in order.

    Rows must have distinct sids. Rows identical to what is stored are left alone. The batch is
    staged in a temporary table (COPY on PostgreSQL) and merged by one set-based statement.
    """
    if not rows:
        return UpsertCounts()
    tx.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} AS SELECT {_COLUMNS} FROM calls WHERE 1 = 0"
    )
    tx.execute(f"DELETE FROM {_STAGING}")
    tx.load_rows(_STAGING, STORED_FIELDS, rows)
    # `WHERE true` settles SQLite's parse of INSERT ... SELECT ... ON CONFLICT; the DO UPDATE
    # condition leaves identical rows alone, so only inserted and updated rows are changed.
    merge = (
        f"INSERT INTO calls (account_id, {_COLUMNS})"
        f" SELECT ?, {_COLUMNS} FROM {_STAGING} WHERE true"
        f" ON CONFLICT (account_id, sid) DO UPDATE SET {_UPDATES} WHERE {_DIFFERS}"
    )
    if tx.dialect == "postgresql":
        # xmax is 0 only on a row version this statement inserted. (Counting the stored sids
        # first, as below, makes PostgreSQL hash the account's every call for each batch.)
        flags = tx.fetchall(merge + " RETURNING xmax = 0", (account_id,))
        inserted = sum(1 for (fresh,) in flags if fresh)
        updated = len(flags) - inserted
    else:
        stored = tx.fetchone(
            f"SELECT COUNT(*) FROM {_STAGING} b JOIN calls c ON c.account_id = ? AND c.sid = b.sid",
            (account_id,),
        )
        inserted = len(rows) - (int(stored[0]) if stored else 0)
        updated = tx.execute(merge, (account_id,)) - inserted
    return UpsertCounts(
        inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated
    )


def count_calls(tx: Connection, account_id: int) -> int:
    row = tx.fetchone("SELECT COUNT(*) FROM calls WHERE account_id = ?", (account_id,))
    return int(row[0]) if row else 0
