"""Connections and transactions on SQLite (default) or PostgreSQL, behind one small interface.

What both engines share is here: the `Connection` and `Database` protocols, the database's
clock, the change leases (decision 12) and `open_database`; each engine lives in a module of
its own (`sqlite`, `postgres`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import psycopg

from phonewagon_server.errors import ConfigurationError, DatabaseUnavailable

Dialect = Literal["sqlite", "postgresql"]
logger = logging.getLogger(__name__)
Row = tuple[Any, ...]

POOL_TIMEOUT_SECONDS = 5.0
LOCK_TRY_MS = 250
WaitNotice = Callable[[], None]
STATEMENT_TIMEOUT_MS = 30_000


class Connection(Protocol):
    """What query modules may do inside a transaction. SQL uses `?` placeholders on both."""

    dialect: Dialect
    # In a transaction that changes an account's calls (`changing=`): the least `updated_at` it
    # may stamp, its lease's start (decision 12). None elsewhere.
    change_floor: int | None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def load_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Append rows to a (staging) table as fast as the engine takes them."""
        ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Database(Protocol):
    dialect: Dialect
    url: str

    def transaction(
        self, *, write: bool = False, changing: int | None = None
    ) -> contextlib.AbstractContextManager[Connection]:
        """A connection in a transaction that only reads (a write in it fails), or with
        `write=True` one that writes, which takes SQLite's write lock up front and must never
        run on the event loop. One that writes calls names their account (`changing`): it holds
        a change lease meanwhile, which the change feed's readers stop below (decision 12)."""
        ...

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        ...

    def close(self) -> None: ...


# The database's clock in epoch milliseconds: the one clock of stamps, leases and the feed.
NOW_MS_SQL: dict[Dialect, str] = {
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
}


def live_lease_holders(tx: Connection, holders: set[int]) -> set[int]:
    """Which lease holders still live: a process on this machine (SQLite), or a PostgreSQL
    session. A lease whose holder is gone belongs to a transaction that can no longer commit."""
    if not holders:
        return set()
    if tx.dialect == "postgresql":
        rows = tx.fetchall("SELECT pid FROM pg_stat_activity WHERE pid = ANY(?)", (list(holders),))
        return {int(row[0]) for row in rows}
    return {holder for holder in holders if _process_alive(holder)}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process, alive
    return True


def sweep_dead_leases(tx: Connection, account_id: int) -> None:
    rows = tx.fetchall("SELECT id, holder FROM change_leases WHERE account_id = ?", (account_id,))
    live = live_lease_holders(tx, {int(holder) for _, holder in rows})
    for lease_id, holder in rows:
        if int(holder) not in live:
            tx.execute("DELETE FROM change_leases WHERE id = ?", (lease_id,))


def insert_lease(tx: Connection, account_id: int, holder: str) -> tuple[int, int]:
    """A lease of `account_id`'s changes, held by `holder` (SQL); (its id, its start)."""
    row = tx.fetchall(
        f"INSERT INTO change_leases (account_id, since_ms, holder)"
        f" VALUES (?, {NOW_MS_SQL[tx.dialect]}, {holder}) RETURNING id, since_ms",
        (account_id,),
    )[0]
    return int(row[0]), int(row[1])


def refuse_writes_on_the_event_loop() -> None:
    """A write waits for locks: on the event loop it would stall every request meanwhile."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # a worker thread, or a command: no loop here
    raise RuntimeError("a write transaction must run in a worker thread, not on the event loop")


def insert_returning_id(tx: Connection, sql: str, params: Sequence[Any]) -> int:
    """Run an `INSERT ... RETURNING id` and give the id."""
    row = tx.fetchone(sql, params)
    if row is None:
        raise RuntimeError("INSERT ... RETURNING id returned no row")
    return int(row[0])


def check_reachable(url: str) -> None:
    """Connect once, directly, and raise DatabaseUnavailable with the engine's own reason.

    For commands run by a person: the pools retry quietly, this says what is wrong at once.
    """
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        return  # SQLite creates its file; its errors surface with their reason when used
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise DatabaseUnavailable(reason=reason or type(exc).__name__) from exc


def open_database(
    url: str, *, pool_size: int = 10, on_lock_wait: WaitNotice | None = None
) -> Database:
    """`sqlite:///relative.db`, `sqlite:////absolute.db`, a plain file path, or `postgresql://`.

    With `on_lock_wait` (commands run by a person), a SQLite writer waits for as long as another
    writer, such as an import, holds the database, and calls it once when it starts waiting;
    without it (the server), it gives up after `POOL_TIMEOUT_SECONDS`.
    """
    from phonewagon_server.db.postgres import PostgresDatabase
    from phonewagon_server.db.sqlite import SqliteDatabase

    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url, pool_size=pool_size)
    if scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(f"SQLite URL {url!r} needs a file: sqlite:///phonewagon.db")
        return SqliteDatabase(Path(path), pool_size=pool_size, on_lock_wait=on_lock_wait)
    if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return SqliteDatabase(Path(url), pool_size=pool_size, on_lock_wait=on_lock_wait)
    raise ConfigurationError(
        f"database URL scheme {scheme!r} is not supported: use sqlite:///FILE or postgresql://..."
    )
