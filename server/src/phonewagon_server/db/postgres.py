"""PostgreSQL: a bounded pool of psycopg connections, every round trip bounded, outages told."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool

from phonewagon_server.db.engine import (
    POOL_TIMEOUT_SECONDS,
    STATEMENT_TIMEOUT_MS,
    Connection,
    Dialect,
    Row,
    insert_lease,
    refuse_writes_on_the_event_loop,
    sweep_dead_leases,
)
from phonewagon_server.db.outages import Outage, RoundTripDeadlines, reason_of
from phonewagon_server.errors import DatabaseTimeout, DatabaseUnavailable, WriteConflict


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
            sweep_dead_leases(tx, changing)
            lease = insert_lease(tx, changing, "pg_backend_pid()")
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
