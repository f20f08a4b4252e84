"""Accounts and their API credentials."""

from __future__ import annotations

from dataclasses import dataclass

from phonewagon_server.credentials import generate_client_id, generate_secret, hash_secret
from phonewagon_server.db.engine import Connection, Row, insert_returning_id
from phonewagon_server.models import Account, Credential


def create_account(tx: Connection, name: str, *, now: int) -> Account:
    account_id = insert_returning_id(
        tx, "INSERT INTO accounts (name, created_at) VALUES (?, ?) RETURNING id", (name, now)
    )
    return Account(id=account_id, name=name)


def get_account(tx: Connection, account_id: int) -> Account | None:
    row = tx.fetchone("SELECT id, name FROM accounts WHERE id = ?", (account_id,))
    return Account(id=int(row[0]), name=row[1]) if row else None


def list_accounts(tx: Connection) -> list[Account]:
    rows = tx.fetchall("SELECT id, name FROM accounts ORDER BY id")
    return [Account(id=int(r[0]), name=r[1]) for r in rows]


def insert_credential(
    tx: Connection,
    *,
    account_id: int,
    client_id: str,
    secret_hash: str,
    now: int,
    name: str = "",
) -> Credential:
    columns, values = (
        "client_id, account_id, secret_hash, created_at",
        [
            client_id,
            account_id,
            secret_hash,
            now,
        ],
    )
    if name:  # unnamed, it is the statement of version 1, which tests run on old schemas
        columns, values = columns + ", name", [*values, name]
    marks = ", ".join("?" * len(values))
    tx.execute(f"INSERT INTO credentials ({columns}) VALUES ({marks})", values)
    return Credential(
        client_id=client_id, account_id=account_id, created_at=now, revoked_at=None, name=name
    )


def issue_credential(
    tx: Connection, account_id: int, *, now: int, name: str = ""
) -> tuple[Credential, str]:
    """A new credential for the account and its secret, which is stored only as a hash."""
    secret = generate_secret()
    credential = insert_credential(
        tx,
        account_id=account_id,
        client_id=generate_client_id(),
        secret_hash=hash_secret(secret),
        now=now,
        name=name,
    )
    return credential, secret


def find_active_secret_hash(tx: Connection, client_id: str) -> tuple[int, str] | None:
    """(account id, secret hash) of an active credential, or None if unknown or revoked."""
    row = tx.fetchone(
        "SELECT account_id, secret_hash FROM credentials"
        " WHERE client_id = ? AND revoked_at IS NULL",
        (client_id,),
    )
    return (int(row[0]), row[1]) if row else None


@dataclass(frozen=True, slots=True)
class SecretHashes:
    """What authenticating an active credential needs: its secrets' hashes, and when it was
    last recorded as used."""

    account_id: int
    secret_hash: str
    previous_secret_hash: str | None  # the secret before a roll, while its grace lasts
    previous_secret_expires_at: int | None
    last_used_at: int | None


def find_secret_hashes(tx: Connection, client_id: str) -> SecretHashes | None:
    """The hashes of an active credential's secrets, or None if unknown or revoked."""
    row = tx.fetchone(
        "SELECT account_id, secret_hash, previous_secret_hash, previous_secret_expires_at,"
        " last_used_at FROM credentials WHERE client_id = ? AND revoked_at IS NULL",
        (client_id,),
    )
    if row is None:
        return None
    return SecretHashes(
        account_id=int(row[0]),
        secret_hash=row[1],
        previous_secret_hash=row[2],
        previous_secret_expires_at=None if row[3] is None else int(row[3]),
        last_used_at=None if row[4] is None else int(row[4]),
    )


def record_credential_use(tx: Connection, client_id: str, *, period_start: int) -> None:
    """Mark the credential used in the period starting at `period_start`, unless it already is:
    one write per credential and period, whichever worker gets there first."""
    tx.execute(
        "UPDATE credentials SET last_used_at = ?"
        " WHERE client_id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        (period_start, client_id, period_start),
    )


def roll_credential(
    tx: Connection, *, account_id: int, client_id: str, grace_ms: int, now: int
) -> tuple[Credential, str] | None:
    """A new secret for the account's active credential; the current one keeps working for
    `grace_ms` (0: it ends now), replacing any earlier roll's. None if there is no such active
    credential in the account."""
    row = tx.fetchone(
        "SELECT secret_hash FROM credentials"
        " WHERE client_id = ? AND account_id = ? AND revoked_at IS NULL",
        (client_id, account_id),
    )
    if row is None:
        return None
    secret = generate_secret()
    previous, until = (row[0], now + grace_ms) if grace_ms > 0 else (None, None)
    tx.execute(
        "UPDATE credentials SET secret_hash = ?, previous_secret_hash = ?,"
        " previous_secret_expires_at = ? WHERE client_id = ?",
        (hash_secret(secret), previous, until, client_id),
    )
    credential = find_credential(tx, client_id, account_id=account_id)
    assert credential is not None  # noqa: S101 - updated in this transaction
    return credential, secret


def revoke_credential(
    tx: Connection, client_id: str, *, now: int, account_id: int | None = None
) -> Credential | None:
    """Revoke `client_id` (a no-op if already revoked); None if there is no such credential
    (in `account_id`, when given)."""
    if find_credential(tx, client_id, account_id=account_id) is None:
        return None
    tx.execute(
        "UPDATE credentials SET revoked_at = ?, previous_secret_hash = NULL,"
        " previous_secret_expires_at = NULL WHERE client_id = ? AND revoked_at IS NULL",
        (now, client_id),
    )
    return find_credential(tx, client_id)


_CREDENTIAL = (
    "SELECT client_id, account_id, created_at, revoked_at, name, last_used_at,"
    " previous_secret_expires_at FROM credentials"
)


def find_credential(
    tx: Connection, client_id: str, *, account_id: int | None = None
) -> Credential | None:
    """The credential (of `account_id`, when given), or None."""
    if account_id is None:
        row = tx.fetchone(f"{_CREDENTIAL} WHERE client_id = ?", (client_id,))
    else:
        row = tx.fetchone(
            f"{_CREDENTIAL} WHERE client_id = ? AND account_id = ?", (client_id, account_id)
        )
    return _credential(row) if row else None


def list_credentials(tx: Connection, account_id: int) -> list[Credential]:
    rows = tx.fetchall(
        f"{_CREDENTIAL} WHERE account_id = ? ORDER BY created_at, client_id", (account_id,)
    )
    return [_credential(r) for r in rows]


def _credential(row: Row) -> Credential:
    client_id, account_id, created_at, revoked_at, name, last_used_at, previous_until = row
    return Credential(
        client_id=str(client_id),
        account_id=int(account_id),
        created_at=int(created_at),
        revoked_at=None if revoked_at is None else int(revoked_at),
        name=str(name),
        last_used_at=None if last_used_at is None else int(last_used_at),
        previous_secret_expires_at=None if previous_until is None else int(previous_until),
    )
