"""Many visitors at once, over real HTTP to a real `serve`, against a pool smaller than they are:
no number is ever held by two visitors, nobody holds two, and a visitor keeps theirs."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dni_kit import TARGET, page_view, swapped, visitor_id
from phonewagon_server.db import open_database
from server_testkit import clean_env
from test_cli import run_json
from test_e2e_serve import Server

REDIS_URL = "redis://127.0.0.1:6379/0"
NUMBERS = [f"+1844555{n:04d}" for n in range(201, 207)]  # a pool of 6
VISITORS = 20


def deployment(database_url: str, **variables: str) -> tuple[dict[str, str], str]:
    """A company with a pool of NUMBERS, set up with the CLI; its environment and site key."""
    env = clean_env() | {"PHONEWAGON_DATABASE_URL": database_url} | variables
    account = run_json(database_url, "accounts", "create", "Agency")
    company = run_json(
        database_url, "companies", "create", "--account", str(account["account_id"]), "Co"
    )
    run_json(database_url, "campaigns", "create", "--company", str(company["id"]), "Website",
             "--id", "web", "--swap-target", TARGET)  # fmt: skip
    for number in NUMBERS:
        run_json(
            database_url, "numbers", "add", number, "--campaign", "web", "--forward-to", TARGET
        )
    key = run_json(database_url, "dni", "snippet", "--company", str(company["id"]))["key"]
    return env, str(key)


def at_once(url: str, key: str, visitors: list[str]) -> list[tuple[str, list[str]]]:
    """One page view per entry of `visitors`, all sent at once, each on its own connection."""

    def one(visitor: str) -> tuple[str, list[str]]:
        with httpx.Client(base_url=url, timeout=60) as client:
            return visitor, swapped(page_view(client, key, visitor=visitor))

    with ThreadPoolExecutor(len(visitors)) as pool:
        return list(pool.map(one, visitors))


@pytest.mark.parametrize(("backend", "workers"), [("sqlite", 1), ("postgres", 1), ("postgres", 2)])
def test_simultaneous_visitors_never_share_a_number_and_keep_theirs(
    request: pytest.FixtureRequest, backend: str, workers: int
) -> None:
    database_url: str = request.getfixturevalue(f"{backend}_url")
    shared = {
        "PHONEWAGON_REDIS_URL": REDIS_URL,
        "PHONEWAGON_REDIS_PREFIX": f"pw-{uuid.uuid4().hex}",
    }
    env, key = deployment(
        database_url,
        PHONEWAGON_DNI_HOLDS_PER_ADDRESS="1000",  # every visitor comes from 127.0.0.1 here
        **(shared if workers > 1 else {}),
    )
    server = Server(["serve", "--workers", str(workers)], env)
    try:
        visitors = [visitor_id(n) for n in range(VISITORS)]
        # Each visitor's page twice at once (two tabs), every visitor at once.
        first = at_once(server.url, key, visitors * 2)
        given: dict[str, list[str]] = {}
        for visitor, numbers in first:
            assert len(numbers) <= 1
            assert given.setdefault(visitor, numbers) == numbers  # both tabs: one number
        holders = {visitor: numbers[0] for visitor, numbers in given.items() if numbers}
        assert sorted(holders.values()) == NUMBERS  # each number to exactly one visitor
        again = dict(at_once(server.url, key, visitors))  # their next page views
        assert again == given
        with open_database(database_url).transaction() as tx:
            now = int(time.time() * 1000)
            rows = tx.fetchall(
                "SELECT visitor, number FROM number_holds WHERE held_until > ?", (now,)
            )
        assert sorted(rows) == sorted(holders.items())  # held in the database as answered
        # Every worker's counts, summed: 60 page views, of which 42 found the pool full.
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert "phonewagon_dni_visits_total 60.0" in text
        assert "phonewagon_dni_fallbacks_total 42.0" in text
    finally:
        _, _, stderr = server.stop()
    assert "Traceback" not in stderr


def test_two_workers_share_the_address_limit_through_redis(postgres_url: str) -> None:
    env, key = deployment(
        postgres_url,
        PHONEWAGON_REDIS_URL=REDIS_URL,
        PHONEWAGON_REDIS_PREFIX=f"pw-{uuid.uuid4().hex}",
        PHONEWAGON_DNI_VISIT_LIMIT="25/minute",
    )
    server = Server(["serve", "--workers", "2"], env)
    try:

        def one(n: int) -> int:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return page_view(client, key, visitor=visitor_id(n)).status_code

        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(one, range(50)))
    finally:
        server.stop()
    assert (statuses.count(200), statuses.count(429)) == (25, 25)
