"""Fixtures: the real server on a real port, in this process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from live_server import LiveServer
from phonewagon_server.db import Database
from server_testkit import World, every_field


@pytest.fixture
def world(database: Database) -> World:
    """Calls with every field filled in: the client must carry each of them through."""
    return World(database, call_fields=every_field)


@pytest.fixture
def server(database: Database) -> Iterator[LiveServer]:
    with LiveServer(database) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_phonewagon_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own PHONEWAGON_* variables must not leak into a test's client."""
    for name in list(os.environ):
        if name.startswith("PHONEWAGON_") and name != "PHONEWAGON_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
