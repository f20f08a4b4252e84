"""The work queue: what the webhooks have accepted and the recordings still to fetch.

At least once, never lost: a job is claimed for a while (`lease_ms`) rather than taken, so a
worker that dies holding it lets it go when the claim runs out, and another does it. Jobs are
idempotent for that reason. A job that keeps failing is retried later and later, then kept as
failed with its last error (decision 13).

On PostgreSQL the queue is the `jobs` table of the deployment's database, claimed with `FOR
UPDATE SKIP LOCKED` by every worker of every machine. On SQLite it is a file of its own beside
the database (`phonewagon.queue.db` beside `phonewagon.db`): an import holds the database's one
write lock for minutes, and a webhook must still be accepted meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.engine import NOW_MS_SQL, Connection
from phonewagon_server.db.sqlite import SqliteDatabase

logger = logging.getLogger(__name__)

# The SQLite queue file's table: the same as PostgreSQL's `jobs` of migration 4, which stays
# written out there as it was (migrations import nothing of today's code). Change both together.
_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    failed_at BIGINT,
    last_error TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (kind, job_key)
)""",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_after) WHERE failed_at IS NULL",
)
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int  # this claim included


@dataclass(frozen=True, slots=True)
class QueueDepth:
    waiting: int
    failed: int


class JobQueue:
    """Jobs of several kinds, each unique by (kind, key) while it waits."""

    def __init__(self, storage: Database, *, owned: bool) -> None:
        self._storage = storage
        self._owned = owned  # a SQLite file of its own, its table made on first use
        self._made = not owned
        self._making = threading.Lock()
        self.arrived = threading.Event()  # set when this process queues a job: workers wake

    @classmethod
    def beside(cls, database: Database) -> JobQueue:
        """The queue of `database`'s deployment (see the module's docstring). Opening it
        touches nothing: a server starts (and answers 503s) while its database is away."""
        if not isinstance(database, SqliteDatabase):
            return cls(database, owned=False)
        path = database.path
        storage = open_database(str(path.with_name(f"{path.stem}.queue{path.suffix or '.db'}")))
        return cls(storage, owned=True)

    @property
    def storage(self) -> Database:
        if not self._made:
            with self._making:
                if not self._made:
                    with self._storage.transaction(write=True) as tx:
                        for statement in _SQLITE_SCHEMA:
                            tx.execute(statement)
                    self._made = True
        return self._storage

    @property
    def path(self) -> Path | None:
        return self._storage.path if isinstance(self._storage, SqliteDatabase) else None

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> bool:
        """Queue a job; False if one of that kind and key is already waiting."""
        return self.put_many([(kind, key, payload)]) == 1

    def put_many(self, jobs: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
        """Queue (kind, key, payload) jobs in one statement; how many were not waiting yet."""
        if not jobs:
            return 0
        now = NOW_MS_SQL[self.storage.dialect]
        rows = ", ".join("(?, ?, ?)" for _ in jobs)
        params = [
            value
            for kind, key, payload in jobs
            for value in (kind, key, orjson.dumps(payload).decode())
        ]
        with self.storage.transaction(write=True) as tx:
            # `WHERE true`: SQLite's parser would read ON CONFLICT as part of the SELECT's join.
            queued = tx.execute(
                "INSERT INTO jobs (kind, job_key, payload, run_after, created_at)"
                " SELECT column1, column2, column3, clock.now, clock.now"
                f" FROM (VALUES {rows}) AS v, (SELECT {now} AS now) AS clock"
                " WHERE true ON CONFLICT (kind, job_key) DO NOTHING",
                params,
            )
        self.arrived.set()
        return queued

    def claim(self, kinds: Sequence[str], *, limit: int, lease_ms: int) -> list[Job]:
        """Up to `limit` jobs of `kinds` that are due, claimed for `lease_ms`, oldest first."""
        marks = ", ".join("?" for _ in kinds)
        with self.storage.transaction(write=True) as tx:
            now = _now(tx)
            # SKIP LOCKED: a job another worker is claiming right now is not waited for.
            skip = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
            rows = tx.fetchall(
                "UPDATE jobs SET claimed_until = ?, attempts = attempts + 1 WHERE id IN"
                f" (SELECT id FROM jobs WHERE kind IN ({marks}) AND failed_at IS NULL"
                " AND run_after <= ? AND claimed_until <= ? ORDER BY run_after, id LIMIT ?"
                f"{skip}) RETURNING id, kind, job_key, payload, attempts",
                (now + lease_ms, *kinds, now, now, limit),
            )
        jobs = [Job(int(r[0]), r[1], r[2], orjson.loads(r[3]), int(r[4])) for r in rows]
        return sorted(jobs, key=lambda job: job.id)

    def done(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        marks = ", ".join("?" for _ in jobs)
        with self.storage.transaction(write=True) as tx:
            tx.execute(f"DELETE FROM jobs WHERE id IN ({marks})", [job.id for job in jobs])

    def retry(self, job: Job, error: str, *, delay_ms: int) -> None:
        """Let `job` go, to be claimed again in `delay_ms`."""
        with self.storage.transaction(write=True) as tx:
            tx.execute(
                "UPDATE jobs SET claimed_until = 0, run_after = ?, last_error = ? WHERE id = ?",
                (_now(tx) + delay_ms, error[:_MAX_ERROR_CHARS], job.id),
            )

    def fail(self, job: Job, error: str) -> None:
        """Keep `job` as failed, never claimed again (an operator may look at it)."""
        with self.storage.transaction(write=True) as tx:
            tx.execute(
                "UPDATE jobs SET failed_at = ?, last_error = ? WHERE id = ?",
                (_now(tx), error[:_MAX_ERROR_CHARS], job.id),
            )

    def depth(self) -> QueueDepth:
        with self.storage.transaction() as tx:
            row = tx.fetchone("SELECT COUNT(*) - COUNT(failed_at), COUNT(failed_at) FROM jobs")
        return QueueDepth(int(row[0]), int(row[1])) if row else QueueDepth(0, 0)

    def close(self) -> None:
        if self._owned:
            self._storage.close()


def _now(tx: Connection) -> int:
    row = tx.fetchone(f"SELECT {NOW_MS_SQL[tx.dialect]}")
    return int(row[0]) if row else 0
