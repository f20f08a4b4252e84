"""Fixtures: every database test runs on SQLite and on the machine's real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from browser_kit import browser  # noqa: F401 - the browser tests' Chromium, one per module
from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from server_testkit import (
    PUBLIC_URL,
    FakeClock,
    Tenant,
    World,
    with_rate,
)


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
def web(database: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """A browser of the web app: https, as the public URL is, so its Secure cookies come back."""
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app, base_url="https://testserver") as client:
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
