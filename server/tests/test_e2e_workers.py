"""`serve --workers 4` sharing the rate limit in Redis: exact under simultaneous requests."""

from __future__ import annotations

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from server_testkit import clean_env
from test_e2e_serve import COMMAND, Server, cli

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    variables = clean_env()
    return variables | {
        "PHONEWAGON_DATABASE_URL": database_url,
        "PHONEWAGON_REDIS_URL": REDIS_URL,
        "PHONEWAGON_REDIS_PREFIX": f"pwtest-{uuid.uuid4().hex}",
    }


def burst(url: str, auth: tuple[str, str], count: int) -> list[int]:
    """`count` requests sent at once over as many connections."""

    def one(_: int) -> int:  # a connection of its own: no pool shared between threads
        return httpx.get(f"{url}/companies", auth=auth, timeout=30).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_four_workers_admit_exactly_fifty_of_two_hundred_simultaneous_requests(
    env: dict[str, str],
) -> None:
    accounts = [cli("accounts", "create", f"Burst {n}", env=env) for n in range(3)]
    server = Server(["serve", "--workers", "4"], env)
    try:
        for account in accounts:
            statuses = burst(server.url, (account["client_id"], account["client_secret"]), 200)
            assert statuses.count(200) == 50
            assert statuses.count(429) == 150
    finally:
        _, _, stderr = server.stop()
    assert "Traceback" not in stderr


def test_several_workers_without_redis_refuse_to_start(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "PHONEWAGON_REDIS_URL"}
    done = subprocess.run(
        [COMMAND, "serve", "--workers", "2", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PHONEWAGON_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr
