"""The work queue takes a batch of jobs in one statement: each (kind, key) waits once."""

from __future__ import annotations

from phonewagon_server.db import Database
from phonewagon_server.queue import JobQueue


def test_a_batch_queues_each_kind_and_key_once_and_counts_the_new_ones(
    database: Database,
) -> None:
    queue = JobQueue.beside(database)
    try:
        assert queue.put("event", "a", {"n": 1})
        batch = [
            ("event", "a", {"n": 2}),  # waiting already: left as it is
            ("event", "b", {"n": 3}),
            ("event", "b", {"n": 4}),  # twice in the batch: the first is kept
            ("recording", "a", {"n": 5}),  # another kind, the same key
        ]
        assert queue.put_many(batch) == 2
        assert queue.put_many([]) == 0
        jobs = queue.claim(["event", "recording"], limit=10, lease_ms=60_000)
        assert [(job.kind, job.key, job.payload) for job in jobs] == [
            ("event", "a", {"n": 1}),
            ("event", "b", {"n": 3}),
            ("recording", "a", {"n": 5}),
        ]
        assert queue.depth().waiting == 3
    finally:
        queue.close()
