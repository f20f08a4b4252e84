"""Generate, hash and verify client credentials.

Secrets are 256 random bits made by the server, so a fast hash is enough: nobody can guess one,
and a slow password hash would cost 50-300 ms on every request. Both halves carry a prefix that
secret scanners can match (`pwid_`, `pwsk_`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CLIENT_ID_PREFIX = "pwid_"
SECRET_PREFIX = "pwsk_"  # noqa: S105 - a prefix, not a secret

# Compared against when the client id is unknown, so every failure costs the same work.
_UNKNOWN_HASH = hashlib.sha256(b"no such credential").hexdigest()


def generate_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(12)


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored_hash: str | None) -> bool:
    """Constant-time check of `secret` against `stored_hash` (None: unknown or revoked id)."""
    matches = hmac.compare_digest(hash_secret(secret), stored_hash or _UNKNOWN_HASH)
    return matches and stored_hash is not None
