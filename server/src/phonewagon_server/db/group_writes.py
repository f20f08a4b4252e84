"""Many requests' short write transactions, committed together by one thread (group commit).

A page view writes a few rows. In a transaction of its own, on a worker thread of its own, each
paid a commit, and the threads of a process took turns for the interpreter's lock and the
database's write lock at every statement: under load they spent more time handing over locks
than writing. Here requests wait on the event loop while one writer thread runs the work of
every request that arrived meanwhile in one transaction, then wakes them, once per batch and
event loop. Nothing is answered before it is committed.

A batch runs its work in the order of the requests' keys, so two processes' batches take their
locks (a visitor's, a pool's rows) in one order. Should a batch fail anyway (a deadlock, one
request's bad data), each of its requests is run again alone and gets its own result or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from phonewagon_server.db.engine import Connection, Database
from phonewagon_server.errors import DatabaseUnavailable

T = TypeVar("T")
MAX_BATCH = 200  # requests a commit


@dataclass(slots=True)
class _Waiting:
    work: Callable[[Connection], Any]
    key: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class GroupWrites:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._waiting: list[_Waiting] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._writer: threading.Thread | None = None

    async def run(self, work: Callable[[Connection], T], *, key: tuple[Any, ...] = ()) -> T:
        """`work`'s result once the transaction it ran in is committed, or its error
        (DatabaseUnavailable if the database is away)."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(work, key, loop, loop.create_future())
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="phonewagon-group-writes", daemon=True
                )
                self._writer.start()
            self._waiting.append(waiting)
        self._arrived.set()
        result: T = await waiting.future
        return result

    def _write(self) -> None:
        while True:
            self._arrived.wait()
            with self._lock:
                self._arrived.clear()
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                if self._waiting:
                    self._arrived.set()
            if batch:
                batch.sort(key=lambda waiting: waiting.key)
                self._commit(batch)
                self._wake(batch)

    def _commit(self, batch: list[_Waiting]) -> None:
        try:
            with self.database.transaction(write=True) as tx:
                results = [waiting.work(tx) for waiting in batch]
        except DatabaseUnavailable as exc:  # no use trying each: all wait for the database
            for waiting in batch:
                waiting.error = exc
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for waiting in batch:
                    self._commit([waiting])
        else:
            for waiting, result in zip(batch, results, strict=True):
                waiting.result = result

    @staticmethod
    def _wake(batch: list[_Waiting]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        for waiting in batch:
            by_loop.setdefault(waiting.loop, []).append(waiting)
        for loop, waiters in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, waiters)


def _settle(waiters: list[_Waiting]) -> None:
    for waiting in waiters:
        if waiting.future.done():
            continue  # its request went away meanwhile
        if waiting.error is None:
            waiting.future.set_result(waiting.result)
        else:
            waiting.future.set_exception(waiting.error)
