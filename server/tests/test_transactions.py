"""Transactions say what they do: a read cannot write, a write never runs on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest

from phonewagon_server.db import Database
from phonewagon_server.db.accounts import create_account, list_accounts

NOW_MS = 1_700_000_000_000


def account_names(database: Database) -> list[str]:
    with database.transaction() as tx:
        return [account.name for account in list_accounts(tx)]


def test_a_write_inside_a_read_transaction_fails_and_writes_nothing(database: Database) -> None:
    with (
        pytest.raises((sqlite3.OperationalError, psycopg.errors.ReadOnlySqlTransaction)),
        database.transaction() as tx,
    ):
        create_account(tx, "Sneaky", now=NOW_MS)
    assert account_names(database) == []


def test_connections_write_again_after_a_refused_write(database: Database) -> None:
    for _ in range(3):  # more times than the pool has idle connections to hide behind
        with pytest.raises(Exception, match="read"), database.transaction() as tx:
            create_account(tx, "Sneaky", now=NOW_MS)
        with database.transaction(write=True) as tx:
            create_account(tx, "Honest", now=NOW_MS)
    assert account_names(database) == ["Honest"] * 3


def test_a_write_transaction_refuses_to_run_on_the_event_loop(database: Database) -> None:
    async def write_on_the_loop() -> None:
        with database.transaction(write=True) as tx:
            create_account(tx, "Blocking", now=NOW_MS)

    with pytest.raises(RuntimeError, match="event loop"):
        asyncio.run(write_on_the_loop())
    assert account_names(database) == []


def test_a_write_transaction_runs_in_a_worker_thread_of_the_loop(database: Database) -> None:
    def write() -> None:
        with database.transaction(write=True) as tx:
            create_account(tx, "Threaded", now=NOW_MS)

    async def write_from_the_loop() -> None:
        await asyncio.to_thread(write)

    asyncio.run(write_from_the_loop())
    assert account_names(database) == ["Threaded"]
