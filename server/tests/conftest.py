"""Fixtures: every database test runs on SQLite and on the machine's real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.migrations import upgrade
from server_testkit import (
    POSTGRES_URL,
    PUBLIC_URL,
    FakeClock,
    Tenant,
    World,
    postgres_schema_url,
    with_rate,
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema of the test database, dropped afterwards."""
    schema = f"pw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_schema_url(schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'phonewagon.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    upgrade(db)
    yield db
    db.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(database: Database) -> World:
    return World(database)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, public_url=PUBLIC_URL)


@pytest.fixture
def api(database: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """The API over HTTP semantics, in process, with a clock the test controls."""
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def roomy_api(database: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """The API with a rate limit that never interferes, for tests that page a lot."""
    roomy = with_rate(settings, "100000/minute")
    app = create_app(roomy, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def tenant(world: World) -> Tenant:
    return world.tenant()
