"""PostgreSQL going away: 503 with Retry-After while it is gone, and recovery without a restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.engine import PostgresDatabase
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.errors import DatabaseTimeout, DatabaseUnavailable
from server_testkit import POSTGRES_URL, PUBLIC_URL, FakeClock, World


@pytest.fixture
def named_postgres_url(postgres_url: str) -> str:
    """The test schema's URL, with an application name that marks its connections."""
    return f"{postgres_url}&application_name=pw_outage_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(named_postgres_url: str, clock: FakeClock) -> Iterator[tuple[TestClient, World]]:
    database = open_database(named_postgres_url)
    upgrade(database)
    settings = Settings(database_url=named_postgres_url, public_url=PUBLIC_URL)
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as test_client:
        yield test_client, World(database)
    database.close()


def test_the_pool_heals_after_its_connections_are_killed(
    client: tuple[TestClient, World], named_postgres_url: str
) -> None:
    api, world = client
    tenant = world.tenant()
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    application_name = named_postgres_url.rsplit("application_name=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    assert api.get("/readyz").status_code == 200


def test_an_unreachable_postgresql_is_a_503_with_retry_after(clock: FakeClock) -> None:
    url = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"
    database = open_database(url)
    app = create_app(Settings(database_url=url, public_url=PUBLIC_URL), database, wall_clock=clock)
    try:
        with TestClient(app) as api:
            for path in ("/readyz", "/companies"):
                response = api.get(path, auth=("pwid_x", "pwsk_y"))
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) > 0
                assert "psycopg" not in response.text
                assert "127.0.0.1" not in response.text
            assert api.get("/healthz").status_code == 200
    finally:
        database.close()


def test_while_postgresql_is_down_one_request_probes_and_the_rest_fail_at_once(
    clock: FakeClock,
) -> None:
    """No request holds a worker thread for the pool timeout while another is already finding
    out whether the database is back."""
    database = PostgresDatabase(
        "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1", pool_size=2, clock=clock
    )
    try:
        outcomes = []
        for advance in (0.0, 0.0, 0.5, 0.6):
            clock.advance(advance)
            with pytest.raises(DatabaseUnavailable) as refused, database.transaction():
                pass
            outcomes.append("probed" if refused.value.__cause__ else "at once")
        assert outcomes == ["probed", "at once", "at once", "probed"]
    finally:
        database.close()


def test_a_statement_past_its_time_limit_is_a_503_but_no_outage(postgres_url: str) -> None:
    """The database answered: the next request goes to it at once instead of failing fast."""
    database = open_database(postgres_url)
    try:
        with pytest.raises(DatabaseTimeout) as refused:
            _sleep_past_the_time_limit(database)
        assert refused.value.status == 503
        assert "too long" in refused.value.detail
        with database.transaction() as tx:
            assert tx.fetchone("SELECT 1") == (1,)
    finally:
        database.close()


def _sleep_past_the_time_limit(database: Database) -> None:
    with database.transaction(write=True) as tx:
        tx.execute("SET LOCAL statement_timeout = 50")
        tx.execute("SELECT pg_sleep(2)")
