"""Where accepted webhooks go in: the queue, a batch at a time, and the numbers they ring.

A webhook is answered only once its job is committed, so nothing Twilio was told "yes" to can be
lost. But a commit per webhook made every webhook wait its turn for the queue's write lock (on
SQLite, sleeping in its busy handler) and for a disk flush of its own: one writer thread instead
commits whatever webhooks arrived meanwhile in one transaction (group commit), and wakes each of
them when it is done. Under load a commit carries many webhooks; alone, one waits for no other.

The numbers webhooks ring are read from the database once and then kept for a few seconds: a
number added is answered at once (a miss is read), one removed is declined within them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonewagon_server.db import Database
from phonewagon_server.db.numbers import TrackingNumber, find_number
from phonewagon_server.queue import JobQueue

NUMBER_SECONDS = 5.0  # how long a number read is trusted
MAX_BATCH = 500  # webhooks a commit


@dataclass(slots=True)
class _Waiting:
    kind: str
    key: str
    payload: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


@dataclass(slots=True)
class Intake:
    queue: JobQueue
    database: Database
    clock: Callable[[], float] = time.monotonic
    _waiting: list[_Waiting] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Event = field(default_factory=threading.Event)
    _writer: threading.Thread | None = None
    _stopping: bool = False
    _numbers: dict[str, tuple[float, TrackingNumber | None]] = field(default_factory=dict)

    async def accept(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        """Queue a job, and return once it is committed (DatabaseUnavailable if it cannot be)."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(kind, key, payload, loop, loop.create_future())
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="phonewagon-intake", daemon=True
                )
                self._writer.start()
            self._waiting.append(waiting)
        self._arrived.set()
        await waiting.done

    async def number(self, number: str, run: Callable[..., Any]) -> TrackingNumber | None:
        """The tracking number `number`, read through `run` (how the app runs a short read)
        unless read in the last few seconds."""
        now = self.clock()
        known = self._numbers.get(number)
        if known is not None and now - known[0] < NUMBER_SECONDS:
            return known[1]
        found: TrackingNumber | None = await run(self._read_number, number)
        if len(self._numbers) > 10_000:
            self._numbers.clear()  # a flood of unknown numbers must not grow it for ever
        self._numbers[number] = (now, found)
        return found

    def _read_number(self, number: str) -> TrackingNumber | None:
        with self.database.transaction() as tx:
            return find_number(tx, number)

    def close(self) -> None:
        """Commit what waits, then stop the writer."""
        with self._lock:
            self._stopping = True
            writer = self._writer
        self._arrived.set()
        if writer is not None:
            writer.join(timeout=30)

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
                self._commit(batch)

    def _commit(self, batch: list[_Waiting]) -> None:
        error: BaseException | None = None
        try:
            self.queue.put_many([(w.kind, w.key, w.payload) for w in batch])
        except Exception as exc:
            error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        for waiting in batch:
            by_loop.setdefault(waiting.loop, []).append(waiting)
        for loop, waiters in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, waiters, error)


def _settle(waiters: list[_Waiting], error: BaseException | None) -> None:
    for waiting in waiters:
        if waiting.done.done():
            continue  # its request went away meanwhile
        if error is None:
            waiting.done.set_result(None)
        else:
            waiting.done.set_exception(error)
