"""Calls: the keyset page query and the idempotent bulk upsert that imports use.

Each call is stored as its rendered JSON document (see `documents`), beside the few columns that
find it: account, company, campaign, start time, id and sid.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from phonewagon_server.db.callers import remember_callers
from phonewagon_server.db.engine import NOW_MS_SQL, Connection, Row, live_lease_holders
from phonewagon_server.documents import read_document, render_call
from phonewagon_server.models import Call, CallQuery, Campaign, ChangeQuery

# What an import writes for each call, after (account_id, sid) identifies it.
STORED_FIELDS: tuple[str, ...] = (
    "company_id",
    "campaign_id",
    "start_time",
    "sid",
    "head",
    "middle",
    "tail",
)
# A call as the API shows it: its stored document with its id and `updated_at` spliced in.
DOCUMENT = "c.head || c.id || c.middle || c.updated_at || c.tail"


@dataclass(frozen=True, slots=True)
class Page:
    documents: bytes  # the page's calls as JSON, newest first, separated by commas
    count: int
    resume_after: tuple[int, int] | None  # (start_time, id) of its last call, if more match


def read_page(tx: Connection, query: CallQuery) -> Page:
    """The page `query` asks for, its documents joined by the engine that joins them fastest.

    SQLite first finds the page's last call and the one after it (are there more?) from the
    index alone, then joins the same calls' documents itself, as both reads share the read
    transaction's snapshot: Python handles one value per page. PostgreSQL sends a large
    aggregate slower than the rows it is made of (string_agg: 3.3 ms against 1.5 ms a page), so
    it sends rows.
    """
    if tx.dialect == "postgresql":
        rows = tx.fetchall(*page_query(query, query.page_size + 1, documents=True))
        shown = rows[: query.page_size]
        documents = ",".join([row[2] for row in shown]).encode()
        count, more = len(shown), len(rows) > query.page_size
        last = shown[-1] if shown else None
    else:
        boundary = tx.fetchall(*page_query(query, 2, offset=query.page_size - 1))
        last = boundary[0] if boundary else None
        joined = tx.fetchone(*_joined_documents(query))
        documents, count = (joined[0] or b"", joined[1]) if joined else (b"", 0)
        more = len(boundary) > 1
    resume_after = (last[0], last[1]) if more and last else None
    return Page(documents, count, resume_after)


def change_horizon(tx: Connection, account_id: int) -> int:
    """Below which `updated_at` every change of the account is committed, and will stay so: the
    database's clock now, or the start of the oldest live lease of a writer of its calls.

    The first reads of their read transaction, the clock before the leases: a lease committed
    after they were read stamps above the clock (decision 12).
    """
    now = tx.fetchone(f"SELECT {NOW_MS_SQL[tx.dialect]}")
    leases = tx.fetchall(
        "SELECT since_ms, holder FROM change_leases WHERE account_id = ?", (account_id,)
    )
    live = live_lease_holders(tx, {int(holder) for _, holder in leases})
    return min([int(now[0]) if now else 0, *(int(s) for s, h in leases if int(h) in live)])


def read_changes(tx: Connection, query: ChangeQuery, *, horizon: int) -> Page:
    """The feed page `query` asks for, below `horizon`: calls in the order of their last change,
    joined as `read_page` joins them on each engine.

        updated_at ↑ … | updated_since, after_id | … later changes | horizon: not yet
    """
    where, params = _change_conditions(query, horizon)
    if tx.dialect == "postgresql":
        rows = tx.fetchall(
            f"SELECT c.updated_at, c.id, {DOCUMENT} FROM calls c WHERE {where}"
            " ORDER BY c.updated_at, c.id LIMIT ?",
            [*params, query.page_size + 1],
        )
        shown = rows[: query.page_size]
        documents = ",".join([row[2] for row in shown]).encode()
        count, more = len(shown), len(rows) > query.page_size
        last = shown[-1] if shown else None
    else:
        boundary = tx.fetchall(
            f"SELECT c.updated_at, c.id FROM calls c WHERE {where}"
            " ORDER BY c.updated_at, c.id LIMIT 2 OFFSET ?",
            [*params, query.page_size - 1],
        )
        joined = tx.fetchone(
            "SELECT CAST(group_concat(document, ',') AS BLOB), count(*) FROM"
            f" (SELECT {DOCUMENT} AS document FROM calls c WHERE {where}"
            " ORDER BY c.updated_at, c.id LIMIT ?)",  # rule 16, as in `_joined_documents`
            [*params, query.page_size],
        )
        documents, count = (joined[0] or b"", joined[1]) if joined else (b"", 0)
        last = boundary[0] if boundary else None
        more = len(boundary) > 1
    resume_after = (int(last[0]), int(last[1])) if more and last else None
    return Page(documents, count, resume_after)


def _change_conditions(query: ChangeQuery, horizon: int) -> tuple[str, list[Any]]:
    where = ["c.account_id = ?", "c.updated_at < ?"]
    params: list[Any] = [query.account_id, horizon]
    if query.after_id is None:
        where.append("c.updated_at >= ?")
        params.append(query.updated_since)
    else:
        where.append("(c.updated_at, c.id) > (?, ?)")
        params += [query.updated_since, query.after_id]
    for condition, value in (
        ("c.company_id = ?", query.company_id),
        ("c.campaign_id = ?", query.campaign_id),
        ("c.start_time >= ?", query.start_time),
        ("c.start_time <= ?", query.end_time),
    ):
        if value is not None:
            where.append(condition)
            params.append(value)
    return " AND ".join(where), params


def list_calls(tx: Connection, query: CallQuery, *, limit: int) -> list[Row]:
    """The (start_time, id) of up to `limit` calls matching `query`, newest first."""
    return tx.fetchall(*page_query(query, limit))


def explain_read_page(tx: Connection, query: CallQuery) -> list[list[str]]:
    """The engine's plan for each read of `read_page(query)`, one line per step (for tests and
    docs)."""
    if tx.dialect == "postgresql":
        return [_explain(tx, *page_query(query, query.page_size + 1, documents=True))]
    boundary = page_query(query, 2, offset=query.page_size - 1)
    return [_explain(tx, *boundary), _explain(tx, *_joined_documents(query))]


def _explain(tx: Connection, sql: str, params: list[Any]) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if tx.dialect == "sqlite" else "EXPLAIN "
    return [str(row[-1]) for row in tx.fetchall(prefix + sql, params)]


def _conditions(query: CallQuery) -> tuple[list[str], list[Any]]:
    """The WHERE clause of `query`'s calls, the cursor included."""
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
    return where, params


def page_query(
    query: CallQuery, limit: int, *, offset: int = 0, documents: bool = False
) -> tuple[str, list[Any]]:
    """The keys of `limit` calls of the page in page order, from `offset`: an index-only range
    read (with `documents`, each call's document too)."""
    where, params = _conditions(query)
    columns = f"c.start_time, c.id, {DOCUMENT}" if documents else "c.start_time, c.id"
    sql = (
        f"SELECT {columns} FROM calls c WHERE {' AND '.join(where)}"
        " ORDER BY c.start_time DESC, c.id DESC LIMIT ? OFFSET ?"
    )
    return sql, [*params, limit, offset]


def _joined_documents(query: CallQuery) -> tuple[str, list[Any]]:
    """SQLite: the page's documents joined in page order, and how many they are."""
    where, params = _conditions(query)
    # An ordered subquery is never flattened into an aggregate (rule 16 of SQLite's query
    # flattener), so group_concat takes the rows in this order.
    sql = (
        "SELECT CAST(group_concat(document, ',') AS BLOB), count(*) FROM"
        f" (SELECT {DOCUMENT} AS document FROM calls c"
        f" WHERE {' AND '.join(where)} ORDER BY c.start_time DESC, c.id DESC LIMIT ?)"
    )
    return sql, [*params, query.page_size]


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


_STAGING = "import_batch"
_LOCK_RETRY_SECONDS = 0.25


def lock_account_imports(
    tx: Connection,
    account_id: int,
    *,
    on_wait: Callable[[], None],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Make the imports into one account take turns, for as long as this transaction lasts.

    On PostgreSQL two imports that touch the same calls in opposite orders would lock each
    other's rows and deadlock; one lock per account, taken first, gives them one order. Tried in
    short turns rather than waited on, so `statement_timeout` does not end the wait and Ctrl-C
    works; `on_wait` is told once. (SQLite's one write lock already makes every writer wait.)
    """
    if tx.dialect != "postgresql":
        return
    # Two int4 keys, a key space apart from the migrations' single bigint key: the schema's and
    # the account's, as deployments (and tests) may share one database in several schemas.
    attempt = (
        "SELECT pg_try_advisory_xact_lock("
        "hashtext(current_schema() || ':imports'), CAST(mod(?, 2147483647) AS INTEGER))"
    )
    for turn in itertools.count():
        row = tx.fetchone(attempt, (account_id,))
        if row is not None and row[0]:
            return
        if turn == 0:
            on_wait()
        sleep(_LOCK_RETRY_SECONDS)


_SQLITE_DEFAULT_CACHE_KIB = 2000
_SQLITE_BULK_CACHE_KIB = 128 * 1024


@contextlib.contextmanager
def bulk_writes(tx: Connection) -> Iterator[None]:
    """A large page cache for SQLite while `upsert_calls` runs many batches: the indexes,
    the sid index above all (written in random order), stay in memory. Halves an import's
    time in the database; the pool's connection gets its usual cache back afterwards."""
    if tx.dialect != "sqlite":
        yield
        return
    tx.execute(f"PRAGMA cache_size = -{_SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        tx.execute(f"PRAGMA cache_size = -{_SQLITE_DEFAULT_CACHE_KIB}")


_COLUMNS = ", ".join(STORED_FIELDS)
_DIFFERS = " OR ".join(f"calls.{f} <> excluded.{f}" for f in STORED_FIELDS if f != "sid")
_UPDATES = ", ".join(f"{f} = excluded.{f}" for f in (*STORED_FIELDS, "updated_at") if f != "sid")


def _stamp(tx: Connection) -> tuple[str, int]:
    """The SQL of a changed call's `updated_at`, and its parameter: the database's clock, never
    below the lease this transaction holds (decision 12)."""
    if tx.change_floor is None:
        raise RuntimeError(
            "calls are written in a transaction that holds their account's change lease:"
            " database.transaction(write=True, changing=account_id)"
        )
    largest = "max" if tx.dialect == "sqlite" else "greatest"
    return f"{largest}(?, {NOW_MS_SQL[tx.dialect]})", tx.change_floor


def stamp_calls_of_a_new_account(tx: Connection) -> None:
    """Let `tx`, which created the account it writes calls for, stamp them without a lease:
    nobody can read that account's feed before the transaction commits."""
    if tx.change_floor is None:
        tx.change_floor = 0


Outcome = Literal["inserted", "updated", "unchanged"]


def write_call(tx: Connection, call: Call, campaign: Campaign) -> Outcome:
    """Insert `call` into its campaign's account, or update the call with its sid, leaving an
    identical one alone; say which. The way one call is written, its document rendered here.
    A call inserted or changed is stamped `updated_at`: it goes to the end of the change feed."""
    document = render_call(call, campaign)
    stamp, floor = _stamp(tx)
    values = (campaign.company_id, campaign.id, call.start_time, call.sid, *document)
    upsert = (
        f"INSERT INTO calls (account_id, {_COLUMNS}, updated_at)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, {stamp})"
        f" ON CONFLICT (account_id, sid) DO UPDATE SET {_UPDATES} WHERE {_DIFFERS}"
    )
    params = (campaign.account_id, *values, floor)
    if tx.dialect == "postgresql":
        written = tx.fetchone(upsert + " RETURNING xmax = 0", params)
        fresh = written[0] if written else None
    else:  # one writer at a time: what is stored cannot change between the two statements
        existed = _stored_id(tx, campaign.account_id, call.sid) is not None
        written = tx.fetchone(upsert + " RETURNING id", params)
        fresh = None if written is None else not existed
    return "unchanged" if fresh is None else "inserted" if fresh else "updated"


def write_calls(
    tx: Connection, calls: Iterable[Call], campaigns: Mapping[str, Campaign]
) -> UpsertCounts:
    """`write_call` for many calls of one account at once (the demo, test worlds), each in its
    campaign of `campaigns`, merged by `upsert_calls`; their callers remembered."""
    rows: dict[str, tuple[Any, ...]] = {}
    account_ids = set()
    callers = set()
    for call in calls:
        campaign = campaigns[call.campaign_id]
        account_ids.add(campaign.account_id)
        callers.add((campaign.company_id, call.from_number))
        document = render_call(call, campaign)
        rows[call.sid] = (campaign.company_id, campaign.id, call.start_time, call.sid, *document)
    if len(account_ids) > 1:
        raise ValueError("write_calls writes the calls of one account at a time")
    if not rows:
        return UpsertCounts()
    remember_callers(tx, callers)
    return upsert_calls(tx, account_ids.pop(), list(rows.values()))


def read_call(tx: Connection, account_id: int, sid: str) -> Call | None:
    """The account's call with this sid, as the record it was written from."""
    row = tx.fetchone(
        f"SELECT {DOCUMENT} FROM calls c WHERE c.account_id = ? AND c.sid = ?", (account_id, sid)
    )
    return read_document(row[0]) if row else None


def read_campaign_calls(
    tx: Connection, campaign: Campaign, *, after: tuple[int, int] | None, limit: int
) -> tuple[list[Call], tuple[int, int] | None]:
    """Up to `limit` calls of the campaign, newest first from just past `after` (a start time
    and id: one index range read at any depth), and where the next batch starts."""
    sql = (
        f"SELECT c.start_time, c.id, {DOCUMENT} FROM calls c"
        " WHERE c.account_id = ? AND c.campaign_id = ?"
    )
    params: list[Any] = [campaign.account_id, campaign.id]
    if after is not None:
        sql += " AND (c.start_time, c.id) < (?, ?)"
        params += list(after)
    rows = tx.fetchall(sql + " ORDER BY c.start_time DESC, c.id DESC LIMIT ?", [*params, limit])
    resume = (int(rows[-1][0]), int(rows[-1][1])) if len(rows) == limit else None
    return [read_document(row[2]) for row in rows], resume


def _stored_id(tx: Connection, account_id: int, sid: str) -> int | None:
    row = tx.fetchone("SELECT id FROM calls WHERE account_id = ? AND sid = ?", (account_id, sid))
    return int(row[0]) if row else None


def upsert_calls(tx: Connection, account_id: int, rows: Sequence[Sequence[Any]]) -> UpsertCounts:
    """Insert or update calls keyed by (account, sid); each row holds `STORED_FIELDS` in order.

    Rows must have distinct sids. Rows identical to what is stored are left alone. The batch is
    staged in a temporary table (COPY on PostgreSQL) and merged by one set-based statement.
    """
    if not rows:
        return UpsertCounts()
    stage_calls(tx, rows)
    changed = merge_staged_calls(tx, account_id)
    inserted = sum(inserted for _, inserted in changed)
    return UpsertCounts(
        inserted=inserted, updated=len(changed) - inserted, unchanged=len(rows) - len(changed)
    )


def stage_calls(tx: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Put a batch of rows (`STORED_FIELDS` in order) in the staging table, for the next merge."""
    tx.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} AS SELECT {_COLUMNS} FROM calls WHERE 1 = 0"
    )
    # On PostgreSQL, DELETE would keep every earlier batch of the import's one transaction as
    # dead rows, which each merge would scan again: the import slowed with its size.
    tx.execute(f"{'TRUNCATE' if tx.dialect == 'postgresql' else 'DELETE FROM'} {_STAGING}")
    tx.load_rows(_STAGING, STORED_FIELDS, rows)


def merge_staged_calls(tx: Connection, account_id: int) -> list[Row]:
    """Upsert the staging table's rows into the account's calls: (sid, inserted) of each call it
    inserted or changed. A call identical to its staged row is left alone and not listed."""
    # `WHERE true` settles SQLite's parse of INSERT ... SELECT ... ON CONFLICT; the DO UPDATE
    # condition leaves identical rows alone, so only inserted and updated rows are changed.
    stamp, floor = _stamp(tx)
    merge = (
        f"INSERT INTO calls (account_id, {_COLUMNS}, updated_at)"
        f" SELECT ?, {_COLUMNS}, {stamp} FROM {_STAGING} WHERE true"
        f" ON CONFLICT (account_id, sid) DO UPDATE SET {_UPDATES} WHERE {_DIFFERS}"
    )
    if tx.dialect == "postgresql":
        # xmax is 0 only on a row version this statement inserted. (Counting the stored sids
        # first, as below, makes PostgreSQL hash the account's every call for each batch.)
        return tx.fetchall(merge + " RETURNING sid, xmax = 0", (account_id, floor))
    # A new row's id is above every id before it (the write transaction is the only one).
    top = tx.fetchone("SELECT max(id) FROM calls")
    before = int(top[0]) if top and top[0] is not None else 0
    return tx.fetchall(merge + " RETURNING sid, id > ?", (account_id, floor, before))


def count_calls(tx: Connection, account_id: int) -> int:
    row = tx.fetchone("SELECT COUNT(*) FROM calls WHERE account_id = ?", (account_id,))
    return int(row[0]) if row else 0
