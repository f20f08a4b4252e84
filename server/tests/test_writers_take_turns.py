"""While a writer such as an import holds the database: commands that only read, and `serve`,
go on; commands that write wait for it, say so, and then do their work."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phonewagon_server.db import Database, open_database
from phonewagon_server.db.calls import lock_account_imports
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.errors import WriteConflict
from server_testkit import NOW_MS, Tenant, World, clean_env
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
    variables = clean_env()
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


# PostgreSQL: imports into one account take turns, in the order they asked.


def write_calls(path: Path, tenant: Tenant, sids: list[str]) -> Path:
    with path.open("w") as out:
        for n, sid in enumerate(sids):
            row = {"sid": sid, "campaign_id": tenant.campaign.id, "start_time": NOW_MS - n}
            out.write(json.dumps(row) + "\n")
    return path


def start_import(postgres_url: str, path: Path, tenant: Tenant) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMAND, "calls", "import", str(path), "--account", str(tenant.account_id), "--json"],
        env=os.environ | {"PHONEWAGON_DATABASE_URL": postgres_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_import_waits_for_another_import_into_the_same_account_and_says_so(
    postgres_url: str, postgres_database: Database, tmp_path: Path
) -> None:
    tenant = World(postgres_database).tenant()
    path = write_calls(tmp_path / "calls.jsonl", tenant, [f"CA{n:032x}" for n in range(10)])
    with postgres_database.transaction(write=True) as tx:
        lock_account_imports(tx, tenant.account_id, on_wait=pytest.fail)
        importing = start_import(postgres_url, path, tenant)
        assert importing.stderr is not None
        assert importing.stderr.readline().startswith("Waiting: another writer")
    stdout, stderr = importing.communicate(timeout=60)
    assert importing.returncode == 0, stderr
    assert json.loads(stdout)["inserted"] == 10


def test_overlapping_imports_in_opposite_orders_both_land(
    postgres_url: str, postgres_database: Database, tmp_path: Path
) -> None:
    """Each touches the other's rows in the opposite order: without turns, a deadlock."""
    tenant = World(postgres_database).tenant()
    sids = [f"CA{n:032x}" for n in range(12_000)]
    rising = write_calls(tmp_path / "rising.jsonl", tenant, sids)
    falling = write_calls(tmp_path / "falling.jsonl", tenant, sids[::-1])
    imports = [start_import(postgres_url, path, tenant) for path in (rising, falling)]
    reports = []
    for importing in imports:
        stdout, stderr = importing.communicate(timeout=120)
        assert importing.returncode == 0, stderr
        reports.append(json.loads(stdout))
    assert sorted(r["inserted"] for r in reports) == [0, 12_000]
    assert sum(r["updated"] for r in reports) == 12_000  # the second wrote other start times


def test_a_deadlock_is_a_write_conflict_that_says_a_rerun_is_safe(
    postgres_database: Database,
) -> None:
    """Two transactions that lock two calls in opposite orders: PostgreSQL rolls one back."""
    database = postgres_database
    world = World(database)
    tenant = world.tenant()
    world.calls(tenant, [NOW_MS, NOW_MS - 1])
    ids = world.call_ids(tenant)
    both_locked_one = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def touch(first: int, second: int) -> None:
        try:
            with database.transaction(write=True) as tx:
                tx.execute("UPDATE calls SET sid = sid WHERE id = ?", (first,))
                both_locked_one.wait()
                tx.execute("UPDATE calls SET sid = sid WHERE id = ?", (second,))
            outcomes.append("committed")
        except WriteConflict as conflict:
            outcomes.append(f"rolled back: {conflict.reason}")

    writers = [
        threading.Thread(target=touch, args=pair) for pair in ((ids[0], ids[1]), (ids[1], ids[0]))
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert sorted(outcomes) == [
        "committed",
        "rolled back: DeadlockDetected: deadlock detected",
    ]
