"""Several workers applying one call's webhooks at once, on PostgreSQL where they truly run side
by side: one call in the right final state, and one first-time caller per company."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from live_kit import ACCOUNT_SID, TRACKING, Live, live_deployment, live_settings
from phonewagon_server.db import Database
from phonewagon_server.queue import JobQueue
from phonewagon_server.twilio.simulator import events, random_call
from phonewagon_server.twilio.workers import LiveWorkers


@pytest.fixture
def live(postgres_database: Database, tmp_path: Path) -> Iterator[Live]:
    yield from live_deployment(postgres_database, live_settings(tmp_path / "recordings"))


def apply_side_by_side(live: Live, workers: int = 4) -> None:
    """`workers` workers, each with a pool of its own, draining the queue at once."""
    crew = [
        LiveWorkers(live.database, JobQueue.beside(live.database), live.workers.settings)
        for _ in range(workers)
    ]
    start = threading.Barrier(workers)

    def drain(worker: LiveWorkers) -> None:
        start.wait()
        worker.run_until_idle()

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in crew]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live.workers.run_until_idle()  # what a conflict sent back for a retry


def test_one_calls_events_applied_by_four_workers_at_once(live: Live) -> None:
    rng = random.Random(11)
    calls = [
        random_call(rng, to_number=TRACKING, final_status="completed", duration=20 + n)
        for n in range(12)
    ]
    webhooks = [
        webhook
        for call in calls
        for webhook in events(call, account_sid=ACCOUNT_SID, api_base="https://api.twilio.com")[:4]
    ]
    # Shuffled together, so each worker's share holds events of every call.
    live.twilio.deliver(webhooks, rng=rng, shuffle=True, repeat=3, concurrency=4)
    apply_side_by_side(live)
    stored = {c["sid"]: c for c in live.calls()}
    assert len(stored) == len(calls)
    for call in calls:
        assert (stored[call.sid]["status"], stored[call.sid]["duration"]) == (
            "completed",
            call.duration,
        )
    assert live.queued() == 0


def test_two_calls_from_one_number_at_once_make_one_first_time_caller(live: Live) -> None:
    rng = random.Random(12)
    caller = "+12125550177"
    calls = [random_call(rng, to_number=TRACKING, from_number=caller) for _ in range(8)]
    voices = [
        events(c, account_sid=ACCOUNT_SID, api_base="https://api.twilio.com")[0] for c in calls
    ]
    live.twilio.deliver(voices, concurrency=8)
    apply_side_by_side(live, workers=8)
    flags = [c["is_first_time_caller"] for c in live.calls()]
    assert len(flags) == 8
    assert flags.count(True) == 1
