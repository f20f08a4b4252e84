"""SQLite: a file in WAL mode, readers never waiting for the writer, writers taking turns."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from phonewagon_server.db.engine import (
    LOCK_TRY_MS,
    POOL_TIMEOUT_SECONDS,
    Connection,
    Dialect,
    Row,
    WaitNotice,
    insert_lease,
    refuse_writes_on_the_event_loop,
    sweep_dead_leases,
)
from phonewagon_server.db.outages import Outage
from phonewagon_server.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)


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
        # This process's writers take turns here, woken the moment the one before commits;
        # SQLite's busy handler would have them sleep and poll (1, 2, 5 ... 100 ms), so that under
        # load the write lock stood idle most of the time. Other processes still meet it there.
        self._writing = threading.Lock()
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
            with self._turn(write), self._connection() as raw:
                if write:
                    raw.execute("PRAGMA query_only = OFF")
                lease = None
                try:
                    if write and changing is not None:
                        lease = self._take_lease(raw, changing)
                    if write:
                        self._begin_writing(raw)
                    else:
                        raw.execute("BEGIN")
                    if lease:
                        raw.execute("SAVEPOINT changes")
                    yield _SqliteConnection(raw, change_floor=lease[1] if lease else None)
                    if lease:  # gone in the same commit as the changes it announced
                        raw.execute("DELETE FROM change_leases WHERE id = ?", (lease[0],))
                    raw.execute("COMMIT")
                except BaseException:
                    if lease and not self._end_with_lease_dropped(raw, lease[0]):
                        self._drop_lease(raw, lease[0])
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
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
            sweep_dead_leases(tx, account_id)
            lease = insert_lease(tx, account_id, str(os.getpid()))
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        return lease

    @staticmethod
    def _end_with_lease_dropped(raw: sqlite3.Connection, lease_id: int) -> bool:
        """Undo the changes but keep the write lock to drop their lease: no other writer can
        come between, so a failed write never leaves a lease that holds the feed back."""
        try:
            raw.execute("ROLLBACK TO changes")
            raw.execute("DELETE FROM change_leases WHERE id = ?", (lease_id,))
            raw.execute("COMMIT")
        except sqlite3.Error:
            return False
        return True

    def _drop_lease(self, raw: sqlite3.Connection, lease_id: int) -> None:
        """When even that failed: its lease would hold every reader of the feed back while this
        process lives. Tried for a while, as other writers may hold the lock."""
        for _ in range(12):
            try:
                raw.execute("DELETE FROM change_leases WHERE id = ?", (lease_id,))
                return
            except sqlite3.OperationalError:
                continue
        logger.error("change lease %d could not be dropped: the feed waits for a restart", lease_id)

    @contextlib.contextmanager
    def _turn(self, write: bool) -> Iterator[None]:
        if not write:
            yield
            return
        refuse_writes_on_the_event_loop()
        if not self._writing.acquire(timeout=POOL_TIMEOUT_SECONDS):
            reason = (
                f"another writer of this process held the database for {POOL_TIMEOUT_SECONDS:.0f} s"
            )
            raise DatabaseUnavailable(reason=reason)
        try:
            yield
        finally:
            self._writing.release()

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
