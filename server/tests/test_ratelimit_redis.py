"""The rate limit shared in the machine's real Redis: exact across processes, and what happens
when Redis goes away and comes back."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.ratelimit import RedisLimiter, build_limiter
from server_testkit import FakeClock, Tenant

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_settings(settings: Settings, redis_url: str = REDIS_URL, **changes: object) -> Settings:
    """Settings sharing the limit in Redis under a namespace no other test uses."""
    return replace(
        settings, redis_url=redis_url, redis_prefix=f"pwtest-{uuid.uuid4().hex}", **changes
    )


def _hit_many(
    settings: Settings, key: str, hits: int, start: float, queue: multiprocessing.Queue[int]
) -> None:
    limiter = build_limiter(settings.rate_limit, settings)
    while time.time() < start:
        time.sleep(0.001)
    queue.put(sum(limiter.hit(key).allowed for _ in range(hits)))


def test_four_processes_hitting_together_admit_exactly_the_limit(settings: Settings) -> None:
    shared = redis_settings(settings)
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = context.Queue()
    start = time.time() + 3
    workers = [
        context.Process(target=_hit_many, args=(shared, "account:1", 50, start, queue))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    admitted = sum(queue.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert admitted == 50


def test_redis_decisions_carry_the_same_headers_as_memory(settings: Settings) -> None:
    limiter = build_limiter(Rate(limit=3, window=60), redis_settings(settings))
    assert isinstance(limiter, RedisLimiter)
    decisions = [limiter.hit("account:7") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0].headers()["RateLimit-Policy"] == '"default";q=3;w=60'
    assert 59 <= decisions[-1].reset <= 60
    assert decisions[-1].headers()["Retry-After"] == str(decisions[-1].reset)


def test_a_retry_one_second_early_is_refused_and_on_time_admitted(settings: Settings) -> None:
    limiter = build_limiter(Rate(limit=2, window=2), redis_settings(settings))
    limiter.hit("k")
    limiter.hit("k")
    refused = limiter.hit("k")
    assert not refused.allowed
    time.sleep(refused.reset - 1)
    assert not limiter.hit("k").allowed
    time.sleep(1)
    assert limiter.hit("k").allowed


def test_several_workers_without_redis_refuse_to_start() -> None:
    with pytest.raises(ConfigurationError, match="PHONEWAGON_REDIS_URL"):
        Settings.from_env({"PHONEWAGON_WORKERS": "4"})
    assert Settings.from_env({"PHONEWAGON_WORKERS": "4", "PHONEWAGON_REDIS_URL": REDIS_URL})


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, on a free port, that the test may stop and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is needed: the machine's Redis comes with it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_for_port(port)
    state = {"process": process}
    yield f"redis://127.0.0.1:{port}/0", process
    state["process"].terminate()


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_redis_down_falls_back_to_a_bounded_limit_and_recovers(
    database: Database,
    settings: Settings,
    tenant: Tenant,
    clock: FakeClock,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, process = private_redis
    configured = redis_settings(settings, url, rate_limit=Rate(limit=4, window=60), workers=2)
    app = create_app(configured, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as api:
        shared = [api.get("/companies", auth=tenant.auth).status_code for _ in range(5)]
        assert shared == [200, 200, 200, 200, 429]

        process.terminate()
        process.wait(timeout=10)
        with caplog.at_level(logging.WARNING):
            alone = [api.get("/companies", auth=tenant.auth).status_code for _ in range(3)]
        assert alone == [200, 200, 429]  # this worker's share of 4 over 2 workers
        assert sum("Redis unreachable" in r.message for r in caplog.records) == 1

        port = int(url.rsplit(":", 1)[1].split("/")[0])
        restarted = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port)
            clock.advance(RedisLimiter.RETRY_REDIS_AFTER)
            again = [api.get("/companies", auth=tenant.auth).status_code for _ in range(5)]
            # The restarted Redis is empty, but the 2 admitted alone are counted there first:
            # 4 in the window, as the limit says.
            assert again == [200, 200, 429, 429, 429]
        finally:
            restarted.terminate()
            restarted.wait(timeout=10)


def test_an_unreachable_redis_never_turns_into_a_500(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    configured = redis_settings(settings, "redis://127.0.0.1:1/0", rate_limit=Rate(3, 60))
    app = create_app(configured, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as api:
        statuses = [api.get("/companies", auth=tenant.auth).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert api.get("/companies", auth=("pwid_x", "pwsk_wrong")).status_code == 401


def test_a_worker_keeps_its_count_while_redis_stays_down(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    """Trying Redis again, and finding it still down, must not give the worker a fresh share."""
    configured = redis_settings(
        settings, "redis://127.0.0.1:1/0", rate_limit=Rate(4, 60), workers=2
    )
    app = create_app(configured, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as api:
        alone = [api.get("/companies", auth=tenant.auth).status_code for _ in range(3)]
        assert alone == [200, 200, 429]
        for _ in range(3):
            clock.advance(RedisLimiter.RETRY_REDIS_AFTER)
            assert api.get("/companies", auth=tenant.auth).status_code == 429


def test_only_an_answer_from_redis_says_it_is_back(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis never reachable and nothing to hand over, a retry must not call it back."""
    never_there = redis_settings(settings, "redis://127.0.0.1:1/0", rate_limit=Rate(5, 60))
    limiter = build_limiter(never_there.rate_limit, never_there, clock=clock)
    with caplog.at_level(logging.WARNING, logger="phonewagon_server.ratelimit"):
        for _ in range(3):
            assert limiter.hit("account:1").allowed
            clock.advance(RedisLimiter.RETRY_REDIS_AFTER)
            limiter.hit("account:2")
            clock.advance(60)  # the fallback log empties: nothing left to hand over
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "Redis is back" in m]
    assert sum("Redis unreachable" in m for m in messages) == 1
