"""Accounts and their API credentials."""

from __future__ import annotations

from phonewagon_server.credentials import generate_client_id, generate_secret, hash_secret
from phonewagon_server.db.engine import Connection, insert_returning_id
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
    tx: Connection, *, account_id: int, client_id: str, secret_hash: str, now: int
) -> Credential:
    tx.execute(
        "INSERT INTO credentials (client_id, account_id, secret_hash, created_at)"
        " VALUES (?, ?, ?, ?)",
        (client_id, account_id, secret_hash, now),
    )
    return Credential(client_id=client_id, account_id=account_id, created_at=now, revoked_at=None)


def issue_credential(tx: Connection, account_id: int, *, now: int) -> tuple[Credential, str]:
    """A new credential for the account and its secret, which is stored only as a hash."""
    secret = generate_secret()
    credential = insert_credential(
        tx,
        account_id=account_id,
        client_id=generate_client_id(),
        secret_hash=hash_secret(secret),
        now=now,
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


def revoke_credential(tx: Connection, client_id: str, *, now: int) -> Credential | None:
    """Revoke `client_id` (a no-op if already revoked); None if there is no such credential."""
    tx.execute(
        "UPDATE credentials SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
        (now, client_id),
    )
    row = tx.fetchone(
        "SELECT client_id, account_id, created_at, revoked_at FROM credentials WHERE client_id = ?",
        (client_id,),
    )
    return _credential(row) if row else None


def list_credentials(tx: Connection, account_id: int) -> list[Credential]:
    rows = tx.fetchall(
        "SELECT client_id, account_id, created_at, revoked_at FROM credentials"
        " WHERE account_id = ? ORDER BY created_at, client_id",
        (account_id,),
    )
    return [_credential(r) for r in rows]


def _credential(row: tuple[object, ...]) -> Credential:
    client_id, account_id, created_at, revoked_at = row
    return Credential(
        client_id=str(client_id),
        account_id=int(str(account_id)),
        created_at=int(str(created_at)),
        revoked_at=None if revoked_at is None else int(str(revoked_at)),
    )
