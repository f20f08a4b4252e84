"""Fixtures: the one fake API (`fakes.FakeAPI`), scripted, and clients that talk to it.

Tests reach the fake through fixtures or `from fakes import`, never `from conftest import`: with
several conftest.py files in one run, that name means whichever was loaded last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fakes import FakeAPI, FakeTime
from phonewagon import Client, Wait


@pytest.fixture
def api() -> FakeAPI:
    """Answers only what the test queues with `api.answer(...)`."""
    return FakeAPI(scripted=True)


@pytest.fixture
def fake_time(api: FakeAPI) -> FakeTime:
    return api.time


@pytest.fixture
def waits() -> list[Wait]:
    """Every `Wait` announced to `on_wait` by clients made with `make_client`."""
    return []


@pytest.fixture
def make_client(api: FakeAPI, waits: list[Wait]) -> Iterator[Callable[..., Client]]:
    """Clients talking to `api` on its fake time, with jitter fixed at 0.5; keywords override."""
    made: list[Client] = []

    def make(**overrides: Any) -> Client:
        client = api.client(**({"on_wait": waits.append} | overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
