"""Group commit of many requests' writes (`db.group_writes`): each request gets its own result
or error, and a request that fails leaves nothing of its own while the others commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from phonewagon_server.db import Connection, Database
from phonewagon_server.db.group_writes import GroupWrites

Work = Callable[[Connection], object]


def each(tx: Connection, works: list[Work]) -> list[object]:
    """The batch written as its items say, one after another."""
    return [work(tx) for work in works]


def _account_names(database: Database) -> set[str]:
    with database.transaction() as tx:
        return {str(row[0]) for row in tx.fetchall("SELECT name FROM accounts")}


def test_a_failing_request_fails_alone_and_the_others_commit(database: Database) -> None:
    writes = GroupWrites(database, each)

    def add(name: str) -> Work:
        def work(tx: Connection) -> str:
            tx.execute("INSERT INTO accounts (name, created_at) VALUES (?, 0)", (name,))
            if name == "bad":
                raise ValueError("this request's data is wrong")
            return name.upper()

        return work

    async def together() -> list[object]:
        names = ["a", "b", "bad", "c", "d"]
        runs = [writes.run(add(name), key=(name,)) for name in names]
        return await asyncio.gather(*runs, return_exceptions=True)

    answers = asyncio.run(together())
    assert answers[:2] == ["A", "B"]
    assert isinstance(answers[2], ValueError)
    assert answers[3:] == ["C", "D"]
    assert _account_names(database) >= {"a", "b", "c", "d"}
    assert "bad" not in _account_names(database)
    writes.close()


def test_a_batch_runs_in_the_order_of_its_keys(database: Database) -> None:
    """Requests that arrive while a batch is being written are written next, together, sorted."""
    writes = GroupWrites(database, each)
    gate = threading.Event()
    seen: list[int] = []

    async def together() -> None:
        first = asyncio.ensure_future(writes.run(lambda tx: gate.wait(10), key=(0,)))
        await asyncio.sleep(0.05)  # the writer is in the first batch, held at the gate
        rest = [
            asyncio.ensure_future(writes.run(lambda tx, n=n: seen.append(n), key=(n,)))  # type: ignore[misc]
            for n in (5, 3, 9, 1)
        ]
        await asyncio.sleep(0)  # each queued
        gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(together())
    assert seen == [1, 3, 5, 9]
    writes.close()


@pytest.mark.parametrize("count", [1, 40])
def test_every_request_gets_its_own_result(database: Database, count: int) -> None:
    def squares(tx: Connection, numbers: list[int]) -> list[int]:
        return [n * n for n in numbers]

    writes = GroupWrites(database, squares)

    async def together() -> list[int]:
        return await asyncio.gather(*(writes.run(n, key=(n,)) for n in range(count)))

    assert asyncio.run(together()) == [n * n for n in range(count)]
    writes.close()
