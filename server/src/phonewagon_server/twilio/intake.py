"""Where accepted webhooks go in: the queue, a batch at a time, and the numbers they ring.

A webhook is answered only once its job is committed, so nothing Twilio was told "yes" to can be
lost. But a commit per webhook made every webhook wait its turn for the queue's write lock (on
SQLite, sleeping in its busy handler) and for a disk flush of its own: the jobs of the webhooks
that arrived meanwhile are queued in one transaction instead (`db.group_writes.GroupCommit`).

The numbers webhooks ring are read from the database once and then kept for a few seconds: a
number added is answered at once (a miss is read), one removed is declined within them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from phonewagon_server.db import Database
from phonewagon_server.db.group_writes import GroupCommit, Pending
from phonewagon_server.db.numbers import TrackingNumber, find_number
from phonewagon_server.queue import JobQueue

NUMBER_SECONDS = 5.0  # how long a number read is trusted

Job = tuple[str, str, dict[str, Any]]  # kind, key, payload


class Intake(GroupCommit[Job]):
    def __init__(
        self, queue: JobQueue, database: Database, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__("phonewagon-intake")
        self.queue = queue
        self.database = database
        self.clock = clock
        self._numbers: dict[str, tuple[float, TrackingNumber | None]] = {}

    async def accept(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        """Queue a job, and return once it is committed (DatabaseUnavailable if it cannot be)."""
        await self.submit((kind, key, payload))

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

    def _commit(self, batch: list[Pending[Job]]) -> None:
        try:
            self.queue.put_many([pending.item for pending in batch])
        except Exception as exc:
            for pending in batch:
                pending.error = exc
