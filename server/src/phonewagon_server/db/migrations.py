"""Versioned schema migrations: each runs once, in its own transaction, in order.

`schema_migrations` records what has been applied. On PostgreSQL an advisory lock makes workers
that start together apply each migration once; on SQLite the write lock does the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phonewagon_server.db.engine import Connection, Database, Dialect
from phonewagon_server.documents import render_call
from phonewagon_server.models import CALL_STRING_FIELDS, Campaign

_MIGRATION_LOCK = 7_406_920_001  # any constant shared by every worker


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    then: Callable[[Connection], None] | None = None  # a data step, after the statements

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


def _tables(identity: str, boolean: str) -> tuple[str, ...]:
    strings = ",\n    ".join(f"{name} TEXT NOT NULL DEFAULT ''" for name in CALL_STRING_FIELDS)
    return (
        f"""CREATE TABLE accounts (
    id {identity},
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
)""",
        """CREATE TABLE credentials (
    client_id TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
)""",
        "CREATE INDEX credentials_by_account ON credentials (account_id)",
        f"""CREATE TABLE companies (
    id {identity},
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
)""",
        "CREATE INDEX companies_by_account ON companies (account_id, id)",
        """CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    company_id BIGINT NOT NULL REFERENCES companies (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
)""",
        "CREATE INDEX campaigns_by_account ON campaigns (account_id, company_id, id)",
        f"""CREATE TABLE calls (
    id {identity},
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    company_id BIGINT NOT NULL REFERENCES companies (id),
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    start_time BIGINT NOT NULL,
    duration BIGINT NOT NULL DEFAULT 0,
    is_first_time_caller {boolean} NOT NULL DEFAULT FALSE,
    {strings},
    UNIQUE (account_id, sid)
)""",
        # One index per query shape of /calls, each ending in the page order, so a page is an
        # index range read: no sort, no scan, at any depth.
        "CREATE INDEX calls_by_account ON calls (account_id, start_time DESC, id DESC)",
        "CREATE INDEX calls_by_company ON calls (account_id, company_id, start_time DESC, id DESC)",
        "CREATE INDEX calls_by_campaign"
        " ON calls (account_id, campaign_id, start_time DESC, id DESC)",
    )


# Version 2 stores each call as its rendered JSON document (documents.py) in place of one column
# per field: the columns that find a call stay, the rest is read back into `head` and `tail`.
_V1_FIELDS = ("duration", "is_first_time_caller", *CALL_STRING_FIELDS)
_V1_DROPPED = tuple(f for f in _V1_FIELDS if f != "sid")
_DOCUMENT_COLUMNS = (
    "ALTER TABLE calls ADD COLUMN head TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE calls ADD COLUMN tail TEXT NOT NULL DEFAULT ''",
)
_RENDER_BATCH = 5000


def _render_stored_calls(tx: Connection) -> None:
    select = (
        "SELECT c.id, c.account_id, c.company_id, k.name, c.campaign_id, c.start_time, "
        + ", ".join(f"c.{f}" for f in _V1_FIELDS)
        + " FROM calls c JOIN campaigns k ON k.id = c.campaign_id"
        " WHERE c.id > ? ORDER BY c.id LIMIT ?"
    )
    tx.execute("CREATE TEMP TABLE rendered_calls (id BIGINT PRIMARY KEY, head TEXT, tail TEXT)")
    last_id = 0
    while rows := tx.fetchall(select, (last_id, _RENDER_BATCH)):
        documents = []
        for call_id, account_id, company_id, name, campaign_id, start_time, *values in rows:
            fields = dict(zip(_V1_FIELDS, values, strict=True))
            fields.update(campaign_id=campaign_id, start_time=start_time)
            fields["is_first_time_caller"] = bool(fields["is_first_time_caller"])
            campaign = Campaign(campaign_id, company_id, account_id, name)
            documents.append((call_id, *render_call(fields, campaign)))
        tx.load_rows("rendered_calls", ("id", "head", "tail"), documents)
        last_id = rows[-1][0]
    tx.execute(
        "UPDATE calls SET head = r.head, tail = r.tail FROM rendered_calls r WHERE calls.id = r.id"
    )
    tx.execute("DROP TABLE rendered_calls")
    for column in _V1_DROPPED:
        tx.execute(f"ALTER TABLE calls DROP COLUMN {column}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        name="accounts, credentials, companies, campaigns, calls",
        sqlite=_tables("INTEGER PRIMARY KEY AUTOINCREMENT", "BOOLEAN"),
        postgresql=(
            *_tables("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BOOLEAN"),
            # A company or campaign implies its account. Without being told, the planner
            # multiplies the two selectivities, expects ~10x too few rows, and sorts a bitmap
            # scan instead of reading calls_by_company / calls_by_campaign in order.
            "CREATE STATISTICS calls_company_implies_account (dependencies)"
            " ON account_id, company_id FROM calls",
            "CREATE STATISTICS calls_campaign_implies_account (dependencies)"
            " ON account_id, campaign_id FROM calls",
        ),
    ),
    Migration(
        version=2,
        name="calls stored as rendered JSON documents",
        sqlite=_DOCUMENT_COLUMNS,
        postgresql=_DOCUMENT_COLUMNS,
        then=_render_stored_calls,
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
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
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
