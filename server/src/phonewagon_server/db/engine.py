"""Connections and transactions on SQLite (default) or PostgreSQL, behind one small interface."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import psycopg
import psycopg_pool

from phonewagon_server.db.outages import Outage, RoundTripDeadlines, reason_of
from phonewagon_server.errors import (
    ConfigurationError,
    DatabaseTimeout,
    DatabaseUnavailable,
    WriteConflict,
)

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


def _sweep_dead_leases(tx: Connection, account_id: int) -> None:
    rows = tx.fetchall("SELECT id, holder FROM change_leases WHERE account_id = ?", (account_id,))
    live = live_lease_holders(tx, {int(holder) for _, holder in rows})
    for lease_id, holder in rows:
        if int(holder) not in live:
            tx.execute("DELETE FROM change_leases WHERE id = ?", (lease_id,))


def _insert_lease(tx: Connection, account_id: int, holder: str) -> tuple[int, int]:
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


class _SqliteConnection:
    dialect: Dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection, *, change_floor: int | None = None) -> None:
        self.raw = raw
        self.change_floor = change_floor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.raw.execute(sql, params).rowcount

    def load_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" for _ in columns)
        self.raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.raw.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.raw.execute(sql, params).fetchone()
        return row


class SqliteDatabase:
    """A SQLite file in WAL mode: readers never wait for a writer, writers take turns."""

    dialect: Dialect = "sqlite"

    def __init__(
        self, path: Path, *, pool_size: int, on_lock_wait: WaitNotice | None = None
    ) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._on_lock_wait = on_lock_wait
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._outage = Outage(fail_fast=False)

    def _connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=POOL_TIMEOUT_SECONDS
        )
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA synchronous = NORMAL")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("PRAGMA temp_store = MEMORY")  # an import's staging batch never touches disk
        raw.execute("PRAGMA query_only = ON")  # off only while a write transaction runs
        return raw

    @contextlib.contextmanager
    def transaction(
        self, *, write: bool = False, changing: int | None = None
    ) -> Iterator[Connection]:
        try:
            with self._connection() as raw:
                if write:
                    refuse_writes_on_the_event_loop()
                    raw.execute("PRAGMA query_only = OFF")
                lease = None
                try:
                    if write and changing is not None:
                        lease = self._take_lease(raw, changing)
                    if write:
                        self._begin_writing(raw)
                    else:
                        raw.execute("BEGIN")
                    yield _SqliteConnection(raw, change_floor=lease[1] if lease else None)
                    if lease:  # gone in the same commit as the changes it announced
                        raw.execute("DELETE FROM change_leases WHERE id = ?", (lease[0],))
                    raw.execute("COMMIT")
                except BaseException:
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
                    if lease:
                        self._drop_lease(raw, lease[0])
                    raise
                finally:
                    if write:
                        raw.execute("PRAGMA query_only = ON")
        except DatabaseUnavailable as exc:
            self._outage.failed(exc.reason)
            raise
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "").split("_")[:2] not in _SQLITE_UNAVAILABLE:
                raise  # a query bug ("no such column"), not an outage: a 500, logged
            self._outage.failed(_sqlite_reason(exc))
            raise DatabaseUnavailable(reason=_sqlite_reason(exc)) from exc
        self._outage.recovered()

    def _take_lease(self, raw: sqlite3.Connection, account_id: int) -> tuple[int, int]:
        """A lease held by this process, in a transaction of its own: committed first."""
        self._begin_writing(raw)
        try:
            tx = _SqliteConnection(raw)
            _sweep_dead_leases(tx, account_id)
            lease = _insert_lease(tx, account_id, str(os.getpid()))
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        return lease

    def _drop_lease(self, raw: sqlite3.Connection, lease_id: int) -> None:
        """After a rollback: its lease would hold every reader of the feed back while this
        process lives. Tried for a while, as other writers may hold the lock."""
        for _ in range(12):
            try:
                raw.execute("DELETE FROM change_leases WHERE id = ?", (lease_id,))
                return
            except sqlite3.OperationalError:
                continue
        logger.error("change lease %d could not be dropped: the feed waits for a restart", lease_id)

    def _begin_writing(self, raw: sqlite3.Connection) -> None:
        if self._on_lock_wait is None:
            raw.execute("BEGIN IMMEDIATE")
            return
        # Short tries in a loop rather than one long busy timeout: Ctrl-C works between them.
        raw.execute(f"PRAGMA busy_timeout = {LOCK_TRY_MS}")
        try:
            for attempt in itertools.count():
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
                        raise
                    if attempt == 0:
                        self._on_lock_wait()
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(POOL_TIMEOUT_SECONDS * 1000)}")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if not self._slots.acquire(timeout=POOL_TIMEOUT_SECONDS):
            raise DatabaseUnavailable(reason=f"no connection free in {POOL_TIMEOUT_SECONDS:.0f} s")
        try:
            try:
                raw = self._idle.get_nowait()
            except queue.Empty:
                raw = self._connect()
            try:
                yield raw
            finally:
                self._idle.put(raw)
        finally:
            self._slots.release()

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.fetchone("SELECT 1")

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


# Primary result codes that mean "the file cannot be used now", whatever the extended code.
_SQLITE_UNAVAILABLE = [["SQLITE", code] for code in ("BUSY", "LOCKED", "CANTOPEN", "IOERR", "FULL")]


def _sqlite_reason(exc: sqlite3.OperationalError) -> str:
    if "locked" in str(exc):
        return f"{exc}: another writer, such as a running import, holds the database"
    return str(exc)


class _PostgresConnection:
    dialect: Dialect = "postgresql"

    def __init__(
        self,
        raw: psycopg.Connection[Any],
        answers_within: _Bound,
        *,
        change_floor: int | None = None,
    ) -> None:
        self.raw = raw
        self._answers_within = answers_within
        self.change_floor = change_floor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._answers_within(self.raw):
            return self.raw.execute(_pg(sql), params).rowcount

    def load_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with (
            self._answers_within(self.raw),
            self.raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._answers_within(self.raw):
            return self.raw.execute(_pg(sql), params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self._answers_within(self.raw):
            return self.raw.execute(_pg(sql), params).fetchone()


_Bound = Callable[[psycopg.Connection[Any]], contextlib.AbstractContextManager[None]]


_PG_SQL: dict[str, str] = {}


def _pg(sql: str) -> str:
    """Our SQL uses `?` placeholders and never a literal `?` or `%`; psycopg wants `%s`."""
    translated = _PG_SQL.get(sql)
    if translated is None:
        translated = _PG_SQL[sql] = sql.replace("?", "%s")
    return translated


class PostgresDatabase:
    """A bounded pool of psycopg connections, checked before use so it heals after an outage.

    The server ends a statement at `statement_timeout_ms`; if it has not answered
    `ANSWER_GRACE_SECONDS` later (a silent server, proxy or network), the client gives up on the
    connection: every round trip is bounded, and none waits forever for a socket that stays open.
    """

    dialect: Dialect = "postgresql"
    ANSWER_GRACE_SECONDS = 5.0

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._statement_timeout_ms = statement_timeout_ms
        self._answer_seconds = statement_timeout_ms / 1000 + self.ANSWER_GRACE_SECONDS
        self._deadlines = RoundTripDeadlines()
        self._outage = Outage(clock=clock)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=POOL_TIMEOUT_SECONDS,
            kwargs={"connect_timeout": 5},
            configure=self._configure,
            check=self._check,
            reconnect_timeout=0,
            open=False,
        )
        self._pool.open(wait=False)

    def _answers_within(
        self, raw: psycopg.Connection[Any]
    ) -> contextlib.AbstractContextManager[None]:
        return self._deadlines.bound(raw, self._answer_seconds)

    def _configure(self, raw: psycopg.Connection[Any]) -> None:
        """A slow query must not hold a pooled connection forever; what reads cannot write.

        Reads run in autocommit, each statement a transaction of the session's default kind:
        read only. A write transaction says `BEGIN READ WRITE` (psycopg's `read_only = False`).
        """
        with self._answers_within(raw):
            raw.execute(f"SET statement_timeout = {int(self._statement_timeout_ms)}")
            raw.execute("SET default_transaction_read_only = on")
            raw.commit()
        raw.read_only = False

    def _check(self, raw: psycopg.Connection[Any]) -> None:
        with self._deadlines.bound(raw, POOL_TIMEOUT_SECONDS):
            psycopg_pool.ConnectionPool.check_connection(raw)

    @contextlib.contextmanager
    def transaction(
        self, *, write: bool = False, changing: int | None = None
    ) -> Iterator[Connection]:
        probing = self._outage.admit()
        try:
            with self._pool.connection() as raw:
                if write:
                    yield from self._writing(raw, changing)
                else:
                    yield from self._reading(raw)
        except psycopg.errors.QueryCanceled as exc:
            # A statement past `statement_timeout`: the database answered, so it is no outage.
            self._outage.recovered(probing=probing)
            raise DatabaseTimeout() from exc
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if (getattr(exc, "sqlstate", None) or "").startswith("40"):
                # A deadlock or serialization failure (class 40, not all of them subclasses of
                # TransactionRollback): the database answered, so it is no outage.
                self._outage.recovered(probing=probing)
                raise WriteConflict(reason=reason_of(exc)) from exc
            self._outage.failed(reason_of(exc), probing=probing)
            raise DatabaseUnavailable() from exc
        except BaseException:
            self._outage.recovered(probing=probing)  # it answered; the error is the caller's
            raise
        self._outage.recovered(probing=probing)

    def _writing(self, raw: psycopg.Connection[Any], changing: int | None) -> Iterator[Connection]:
        """BEGIN goes with the first statement; COMMIT and ROLLBACK are bounded like it. A
        lease is held by this session: if the session dies, so does the lease."""
        refuse_writes_on_the_event_loop()
        tx = _PostgresConnection(raw, self._answers_within)
        lease = None
        if changing is not None:
            _sweep_dead_leases(tx, changing)
            lease = _insert_lease(tx, changing, "pg_backend_pid()")
            with self._answers_within(raw):
                raw.commit()
        try:
            yield _PostgresConnection(
                raw, self._answers_within, change_floor=lease[1] if lease else None
            )
            if lease:  # gone in the same commit as the changes it announced
                tx.execute("DELETE FROM change_leases WHERE id = ?", (lease[0],))
        except BaseException:
            if not raw.closed:
                with contextlib.suppress(psycopg.Error):
                    with self._answers_within(raw):
                        raw.rollback()
                    if lease:
                        tx.execute("DELETE FROM change_leases WHERE id = ?", (lease[0],))
                        with self._answers_within(raw):
                            raw.commit()
            raise
        with self._answers_within(raw):
            raw.commit()

    def _reading(self, raw: psycopg.Connection[Any]) -> Iterator[Connection]:
        """Statement by statement: no BEGIN and COMMIT round trips."""
        raw.autocommit = True
        try:
            yield _PostgresConnection(raw, self._answers_within)
        finally:
            if not raw.closed:  # a lost connection has no transaction state to set
                raw.autocommit = False

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.fetchone("SELECT 1")

    def close(self) -> None:
        self._pool.close()
        self._deadlines.close()
