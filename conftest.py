"""Database fixtures for every test folder: each database test runs on SQLite and on the
machine's real PostgreSQL (a fresh schema of the `test` database, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.migrations import upgrade
from server_testkit import postgres_schema


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema of the test database, dropped afterwards."""
    with postgres_schema() as url:
        yield url


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
    yield from _migrated(database_url)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """PostgreSQL alone, migrated: for what only it can show (sessions, several processes)."""
    yield from _migrated(postgres_url)


def _migrated(url: str) -> Iterator[Database]:
    db = open_database(url)
    upgrade(db)
    yield db
    db.close()
