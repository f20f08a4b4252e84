"""Connections and transactions on SQLite (default) or PostgreSQL, behind one small interface."""

from __future__ import annotations

import contextlib
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

from phonewagon_server.errors import ConfigurationError, DatabaseTimeout, DatabaseUnavailable

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]

POOL_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 30_000


class Connection(Protocol):
    """What query modules may do inside a transaction. SQL uses `?` placeholders on both."""

    dialect: Dialect

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

    def transaction(self, *, write: bool = False) -> contextlib.AbstractContextManager[Connection]:
        """A connection in a transaction; `write=True` takes SQLite's write lock up front."""
        ...

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        ...

    def close(self) -> None: ...


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


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """`sqlite:///relative.db`, `sqlite:////absolute.db`, a plain file path, or `postgresql://`."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url, pool_size=pool_size)
    if scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigurationError(f"SQLite URL {url!r} needs a file: sqlite:///phonewagon.db")
        return SqliteDatabase(Path(path), pool_size=pool_size)
    if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return SqliteDatabase(Path(url), pool_size=pool_size)
    raise ConfigurationError(
        f"database URL scheme {scheme!r} is not supported: use sqlite:///FILE or postgresql://..."
    )


class _SqliteConnection:
    dialect: Dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

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

    def __init__(self, path: Path, *, pool_size: int) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)

    def _connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=POOL_TIMEOUT_SECONDS
        )
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA synchronous = NORMAL")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("PRAGMA temp_store = MEMORY")  # an import's staging batch never touches disk
        return raw

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        if not self._slots.acquire(timeout=POOL_TIMEOUT_SECONDS):
            raise DatabaseUnavailable()
        try:
            try:
                raw = self._idle.get_nowait()
            except queue.Empty:
                raw = self._connect()
            try:
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield _SqliteConnection(raw)
                raw.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            finally:
                self._idle.put(raw)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "").split("_")[:2] not in _SQLITE_UNAVAILABLE:
                raise  # a query bug ("no such column"), not an outage: a 500, logged
            raise DatabaseUnavailable(reason=_sqlite_reason(exc)) from exc
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

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.raw.execute(_pg(sql), params).rowcount

    def load_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        with (
            self.raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.raw.execute(_pg(sql), params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.raw.execute(_pg(sql), params).fetchone()


_PG_SQL: dict[str, str] = {}


def _pg(sql: str) -> str:
    """Our SQL uses `?` placeholders and never a literal `?` or `%`; psycopg wants `%s`."""
    translated = _PG_SQL.get(sql)
    if translated is None:
        translated = _PG_SQL[sql] = sql.replace("?", "%s")
    return translated


def _configure_postgres(raw: psycopg.Connection[Any]) -> None:
    """A slow query must not hold a pooled connection forever."""
    raw.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    raw.commit()


class _Outage:
    """While the database is down, one request at a time waits to find out if it is back.

    Without this, every request would hold a worker thread for the whole pool timeout before
    its 503, until the threads run out and even `/healthz` queues behind them.
    """

    FAIL_FAST_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._probe_running = False

    def admit(self, now: float) -> bool:
        """Whether this request is the one probing; raise at once if another one should."""
        with self._lock:
            if self._failed_at is None:
                return False
            if self._probe_running or now - self._failed_at < self.FAIL_FAST_SECONDS:
                raise DatabaseUnavailable()
            self._probe_running = True
            return True

    def failed(self, now: float, *, probing: bool) -> None:
        with self._lock:
            self._failed_at = now
            if probing:
                self._probe_running = False

    def recovered(self, *, probing: bool) -> None:
        with self._lock:
            self._failed_at = None
            if probing:
                self._probe_running = False


class PostgresDatabase:
    """A bounded pool of psycopg connections, checked before use so it heals after an outage."""

    dialect: Dialect = "postgresql"

    def __init__(
        self, url: str, *, pool_size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self._clock = clock
        self._outage = _Outage()
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=POOL_TIMEOUT_SECONDS,
            kwargs={"connect_timeout": 5},
            configure=_configure_postgres,
            check=psycopg_pool.ConnectionPool.check_connection,
            reconnect_timeout=0,
            open=False,
        )
        self._pool.open(wait=False)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        probing = self._outage.admit(self._clock())
        try:
            with self._pool.connection() as raw:
                if write:
                    with raw.transaction():
                        yield _PostgresConnection(raw)
                else:
                    # Reads run statement by statement: no BEGIN and COMMIT round trips.
                    raw.autocommit = True
                    try:
                        yield _PostgresConnection(raw)
                    finally:
                        raw.autocommit = False
        except psycopg.errors.QueryCanceled as exc:
            # A statement past `statement_timeout`: the database answered, so it is no outage.
            self._outage.recovered(probing=probing)
            raise DatabaseTimeout() from exc
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            self._outage.failed(self._clock(), probing=probing)
            raise DatabaseUnavailable() from exc
        except BaseException:
            self._outage.recovered(probing=probing)  # it answered; the error is the caller's
            raise
        self._outage.recovered(probing=probing)

    def ping(self) -> None:
        with self.transaction() as tx:
            tx.fetchone("SELECT 1")

    def close(self) -> None:
        self._pool.close()
