"""Versioned schema migrations: each runs once, in its own transaction, in order.

Each lives in a module of its own (`v1_tables`, `v2_call_documents`, ...), its statements and
data steps written out as they were on its day and never changed after: they import nothing of
today's models or documents, so a database of any version upgrades to the latest.

`schema_migrations` records what has been applied. On PostgreSQL an advisory lock makes workers
that start together apply each migration once; on SQLite the write lock does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phonewagon_server.db.engine import Connection, Database, Dialect
from phonewagon_server.db.migrations import (
    v1_tables,
    v2_call_documents,
    v3_call_changes,
    v4_live_calls,
    v5_people_and_sessions,
    v6_website_visits,
    v7_pool_holds_up_front,
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    then: Callable[[Connection], None] | None = None  # a data step, after the statements

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        name="accounts, credentials, companies, campaigns, calls",
        sqlite=v1_tables.SQLITE,
        postgresql=v1_tables.POSTGRESQL,
    ),
    Migration(
        version=2,
        name="calls stored as rendered JSON documents",
        sqlite=v2_call_documents.STATEMENTS,
        postgresql=v2_call_documents.STATEMENTS,
        then=v2_call_documents.render_stored_calls,
    ),
    Migration(
        version=3,
        name="updated_at on every call, and the leases of the writers changing calls",
        sqlite=v3_call_changes.SQLITE,
        postgresql=v3_call_changes.POSTGRESQL,
        then=v3_call_changes.cut_stored_tails,
    ),
    Migration(
        version=4,
        name="live calls: tracking numbers, callers, webhook states, recordings, the work queue",
        sqlite=v4_live_calls.SQLITE,
        postgresql=v4_live_calls.POSTGRESQL,
        then=v4_live_calls.remember_callers,
    ),
    Migration(
        version=5,
        name="the web app: users, sessions, set-password links, named and rolled credentials",
        sqlite=v5_people_and_sessions.SQLITE,
        postgresql=v5_people_and_sessions.POSTGRESQL,
        then=v5_people_and_sessions.make_sign_in_key,
    ),
    Migration(
        version=6,
        name="website visits: pools, site keys, number holds, visits",
        sqlite=v6_website_visits.SQLITE,
        postgresql=v6_website_visits.POSTGRESQL,
        then=v6_website_visits.make_visit_key,
    ),
    Migration(
        version=7,
        name="a row of number_holds for every pool number, added with it; free numbers in order",
        sqlite=v7_pool_holds_up_front.STATEMENTS,
        postgresql=v7_pool_holds_up_front.STATEMENTS,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(database: Database) -> int:
    with database.transaction() as tx:
        return _applied_version(tx)


def upgrade(database: Database, *, to_version: int = LATEST_VERSION) -> list[Migration]:
    """Apply every pending migration up to `to_version`; return those applied.

    A database already there is only read: no write lock, so a command (`serve` among them)
    starts while an import holds SQLite's.
    """
    if current_version(database) >= to_version:
        return []
    applied: list[Migration] = []
    for migration in MIGRATIONS[:to_version]:
        with database.transaction(write=True) as tx:
            if tx.dialect == "postgresql":
                # One lock per schema: deployments (and tests) sharing a database in several
                # schemas do not wait for each other's migrations.
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':migrations'))"
                )
            if _applied_version(tx, create=True) >= migration.version:
                continue
            for statement in migration.statements(tx.dialect):
                tx.execute(statement)
            if migration.then is not None:
                migration.then(tx)
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                (migration.version, migration.name),
            )
            applied.append(migration)
    return applied


def _applied_version(tx: Connection, *, create: bool = False) -> int:
    if create:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
        )
    elif not _has_migrations_table(tx):
        return 0
    row = tx.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return int(row[0]) if row else 0


def _has_migrations_table(tx: Connection) -> bool:
    if tx.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    else:
        sql = (
            "SELECT 1 FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
        )
    return tx.fetchone(sql) is not None
