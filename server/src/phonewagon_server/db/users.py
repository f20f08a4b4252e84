"""The people of an account who sign in to the web app, their sessions and set-password links.

Session ids and link tokens are stored as SHA-256 hashes only: whoever reads the database
cannot sign in with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from phonewagon_server.db.engine import Connection, Row, insert_returning_id


@dataclass(frozen=True, slots=True)
class User:
    id: int
    account_id: int
    email: str
    password_hash: str  # "": no password set yet
    disabled_at: int | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


_COLUMNS = "id, account_id, email, password_hash, disabled_at"
_USER_OF_JOIN = ", ".join(f"u.{column}" for column in _COLUMNS.split(", "))  # joined as `u`


def create_user(
    tx: Connection, *, account_id: int, email: str, password_hash: str, now: int
) -> User | None:
    """A new user of the account; None, changing nothing, if the email is taken."""
    if find_user(tx, email) is not None:
        return None
    user_id = insert_returning_id(
        tx,
        "INSERT INTO users (account_id, email, password_hash, created_at)"
        " VALUES (?, ?, ?, ?) RETURNING id",
        (account_id, email, password_hash, now),
    )
    return User(user_id, account_id, email, password_hash, None)


def find_user(tx: Connection, email: str) -> User | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM users WHERE email = ?", (email,))
    return _user(row) if row else None


def disable_user(tx: Connection, email: str, *, now: int) -> User | None:
    """Disable the user and end every session and link of theirs; None if there is no such user."""
    user = find_user(tx, email)
    if user is None:
        return None
    if user.disabled_at is None:
        tx.execute("UPDATE users SET disabled_at = ? WHERE id = ?", (now, user.id))
    tx.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
    tx.execute("DELETE FROM password_links WHERE user_id = ?", (user.id,))
    return find_user(tx, email)


def set_password(tx: Connection, user_id: int, password_hash: str) -> None:
    """Set the user's password and end their other ways in: sessions and links."""
    tx.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
    tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    tx.execute("DELETE FROM password_links WHERE user_id = ?", (user_id,))


def insert_password_link(tx: Connection, user_id: int, token_hash: str, *, expires_at: int) -> None:
    tx.execute(
        "INSERT INTO password_links (token_hash, user_id, expires_at) VALUES (?, ?, ?)",
        (token_hash, user_id, expires_at),
    )


def find_password_link(tx: Connection, token_hash: str, *, now: int) -> User | None:
    """The active user a live link is for, or None (unknown, used, expired, user disabled)."""
    row = tx.fetchone(
        f"SELECT {_USER_OF_JOIN}"
        " FROM password_links l JOIN users u ON u.id = l.user_id"
        " WHERE l.token_hash = ? AND l.expires_at > ? AND u.disabled_at IS NULL",
        (token_hash, now),
    )
    return _user(row) if row else None


def insert_session(
    tx: Connection, *, id_hash: str, user_id: int, now: int, expires_at: int
) -> None:
    tx.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (id_hash, user_id, now, expires_at),
    )


def find_session_user(tx: Connection, id_hash: str, *, now: int) -> User | None:
    """The active user of a live session, or None."""
    row = tx.fetchone(
        f"SELECT {_USER_OF_JOIN}"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
        (id_hash, now),
    )
    return _user(row) if row else None


def delete_session(tx: Connection, id_hash: str) -> None:
    tx.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))


def delete_expired_sessions(tx: Connection, user_id: int, *, now: int) -> None:
    tx.execute("DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?", (user_id, now))


def read_web_key(tx: Connection, name: str) -> str:
    row = tx.fetchone("SELECT secret FROM web_keys WHERE name = ?", (name,))
    if row is None:
        raise RuntimeError(f"the web key {name!r} is missing: run `phonewagon-server db upgrade`")
    return str(row[0])


def _user(row: Row) -> User:
    return User(
        id=int(row[0]),
        account_id=int(row[1]),
        email=row[2],
        password_hash=row[3],
        disabled_at=None if row[4] is None else int(row[4]),
    )
