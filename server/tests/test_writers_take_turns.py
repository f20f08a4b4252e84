"""While a writer such as an import holds the database: commands that only read, and `serve`,
go on; commands that write wait for it, say so, and then do their work."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phonewagon_server.db import open_database
from phonewagon_server.db.migrations import upgrade
from server_testkit import World
from test_e2e_serve import Server

COMMAND = str(Path(sys.executable).with_name("phonewagon-server"))


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "busy.db"
    database = open_database(f"sqlite:///{path}")
    upgrade(database)
    World(database).tenant()
    database.close()
    return path


@pytest.fixture
def env(sqlite_file: Path) -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")}
    return variables | {"PHONEWAGON_DATABASE_URL": f"sqlite:///{sqlite_file}"}


@pytest.fixture
def write_lock(sqlite_file: Path) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock, held as a running import holds it, until the test commits."""
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.usefixtures("write_lock")
def test_commands_that_read_run_while_a_writer_holds_sqlite(env: dict[str, str]) -> None:
    listed = run(env, "accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [a["name"] for a in json.loads(listed.stdout)["accounts"]] == ["Acme Agency"]
    status = run(env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "Waiting" not in listed.stderr + status.stderr


@pytest.mark.usefixtures("write_lock")
def test_serve_starts_and_answers_while_a_writer_holds_sqlite(env: dict[str, str]) -> None:
    server = Server(["serve"], env)
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/companies", timeout=10).status_code == 401
    finally:
        server.stop()


def test_a_command_that_writes_waits_for_the_writer_and_says_so(
    env: dict[str, str], write_lock: sqlite3.Connection
) -> None:
    writing = subprocess.Popen(
        [COMMAND, "accounts", "create", "Waiting Agency", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writing.stderr is not None
    notice = writing.stderr.readline()  # blocks until the command says it is waiting
    assert notice.startswith("Waiting: another writer, such as an import")
    assert writing.poll() is None
    write_lock.execute("COMMIT")
    stdout, stderr = writing.communicate(timeout=60)
    assert writing.returncode == 0, stderr
    assert json.loads(stdout)["name"] == "Waiting Agency"
