"""Group commit: one writer thread commits what many requests submitted meanwhile, together.

A request that writes a few rows in a transaction of its own pays a commit (a flush of
PostgreSQL's log), and the threads of one process doing so take turns for the interpreter's lock
and SQLite's write lock at every statement: under load they spend more time handing over locks
than writing. Here requests wait on their event loop while one writer thread commits whatever
arrived meanwhile in one transaction, then wakes them, once per batch and loop. Nothing is
answered before it is committed. Under load a commit carries many requests; alone, one waits for
no other.

`GroupCommit` is the writer; `GroupWrites` writes the batch's items in one transaction (page
views, `dni.page_views`), and `twilio.intake.Intake` queues webhooks' jobs with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from phonewagon_server.db.engine import Connection, Database
from phonewagon_server.errors import DatabaseUnavailable, WriteConflict

I = TypeVar("I")  # noqa: E741 - what a request submits
R = TypeVar("R")  # what a request's item gives once written
MAX_BATCH = 500  # requests a commit


@dataclass(slots=True)
class Pending(Generic[I]):
    item: I
    order: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class GroupCommit(Generic[I]):
    """The writer thread, started on the first request. `_commit` commits a batch, in the order
    of the requests' `order`, and sets each one's result or error."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._waiting: list[Pending[I]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._writer: threading.Thread | None = None
        self._stopping = False

    async def submit(self, item: I, *, order: tuple[Any, ...] = ()) -> Any:
        """The result `_commit` gave `item`, once committed; or its error."""
        loop = asyncio.get_running_loop()
        pending = Pending(item, order, loop, loop.create_future())
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name=self._name, daemon=True)
                self._writer.start()
            self._waiting.append(pending)
        self._arrived.set()
        return await pending.future

    def close(self) -> None:
        """Commit what waits, then stop the writer."""
        with self._lock:
            self._stopping = True
            writer = self._writer
        self._arrived.set()
        if writer is not None:
            writer.join(timeout=30)

    def _commit(self, batch: list[Pending[I]]) -> None:
        raise NotImplementedError

    def _write(self) -> None:
        while True:
            self._arrived.wait()
            with self._lock:
                self._arrived.clear()
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                if self._waiting:
                    self._arrived.set()
                stopping = self._stopping and not batch
            if stopping:
                return
            if batch:
                batch.sort(key=lambda pending: pending.order)
                self._commit(batch)
                _wake(batch)


def _wake(batch: list[Pending[Any]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[Pending[Any]]] = {}
    for pending in batch:
        by_loop.setdefault(pending.loop, []).append(pending)
    for loop, waiters in by_loop.items():
        with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, waiters)


def _settle(waiters: list[Pending[Any]]) -> None:
    for pending in waiters:
        if pending.future.done():
            continue  # its request went away meanwhile
        if pending.error is None:
            pending.future.set_result(pending.result)
        else:
            pending.future.set_exception(pending.error)


class GroupWrites(GroupCommit[I], Generic[I, R]):
    """Requests' items written together: `write` takes a batch of them, in one transaction, and
    gives each its result, in order (in as few statements as it can: not one per request).

    A batch is in the order of the requests' keys, so two processes' batches take their locks
    (a visitor's, a pool's) in one order. Should a batch fail anyway (a deadlock, one request's
    bad data), each of its requests is written again alone and gets its own result or error.
    """

    def __init__(self, database: Database, write: Callable[[Connection, list[I]], list[R]]) -> None:
        super().__init__("phonewagon-group-writes")
        self.database = database
        self._write_batch = write

    async def run(self, item: I, *, key: tuple[Any, ...] = ()) -> R:
        """`item`'s result once the transaction it was written in is committed, or its error
        (DatabaseUnavailable if the database is away)."""
        result: R = await self.submit(item, order=key)
        return result

    def _commit(self, batch: list[Pending[I]]) -> None:
        try:
            with self.database.transaction(write=True) as tx:
                results = self._write_batch(tx, [pending.item for pending in batch])
        except Exception as exc:
            # The database away: no use trying each. A deadlock, or one request's error: each
            # alone, so that only that request fails.
            away = isinstance(exc, DatabaseUnavailable) and not isinstance(exc, WriteConflict)
            if away or len(batch) == 1:
                for pending in batch:
                    pending.error = exc
            else:
                for pending in batch:
                    self._commit([pending])
        else:
            for pending, result in zip(batch, results, strict=True):
                pending.result = result
