"""Generate, hash and verify client credentials.

Secrets are 256 random bits made by the server, so a fast hash is enough: nobody can guess one,
and a slow password hash would cost 50-300 ms on every request. Both halves carry a prefix that
secret scanners can match (`pwid_`, `pwsk_`). A verified credential is then trusted for a few
seconds (`VerifiedCredentials`), which spares a client's following requests the database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable

CLIENT_ID_PREFIX = "pwid_"
SECRET_PREFIX = "pwsk_"  # noqa: S105 - a prefix, not a secret
# A credential's `last_used_at` is the start of the hour it was last used in: coarse enough that
# recording it is one write per credential an hour, not one per request (decision 14).
USE_PERIOD_MS = 3_600_000
logger = logging.getLogger(__name__)

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


class VerifiedCredentials:
    """Credentials verified in the last `ttl` seconds, so a client's next requests skip the
    database: a revoked credential is refused at most `ttl` seconds after its revocation.

    Keyed by a SHA-256 of the client id and secret as decoded, never the secret itself, so the
    spellings of one `Authorization` header (`basic`, extra spaces) are one entry: the cache holds
    at most one entry per credential in use. Only what the caller remembers is kept (a success
    that the quota admitted), so a new credential works at once and a failure is never
    remembered. At `max_entries` the expired entries go, and if that is not enough, all of them.
    Threads share it: lookups read one dict, changes take a lock.
    """

    def __init__(
        self, ttl: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[int, float]] = {}  # key -> (account id, expiry)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def account_of(self, client_id: str, secret: str) -> int | None:
        entry = self._entries.get(_key(client_id, secret)) if self.ttl > 0 else None
        return entry[0] if entry is not None and self._clock() < entry[1] else None

    def remember(self, client_id: str, secret: str, account_id: int) -> None:
        if self.ttl <= 0:
            return
        key = _key(client_id, secret)
        with self._lock:
            now = self._clock()
            if len(self._entries) >= self._max_entries and key not in self._entries:
                # A new dict, never one being changed, for the lookups that read it meanwhile.
                live = {k: e for k, e in self._entries.items() if e[1] > now}
                self._entries = live if len(live) < self._max_entries else {}
            self._entries[key] = (account_id, now + self.ttl)


def _key(client_id: str, secret: str) -> bytes:
    return hashlib.sha256(f"{client_id}:{secret}".encode()).digest()


class CredentialUses:
    """Records that credentials were used: at most once per credential and hour in a process,
    only when the database was asked anyway (a cache hit records nothing), and off the
    request's path, in a short thread of its own, so no request waits on a write.

    `record(client_id, period_start)` writes it (`db.accounts.record_credential_use`), which
    leaves a row already marked for that hour alone, so several workers write it about once.
    """

    def __init__(
        self,
        record: Callable[[str, int], None],
        *,
        start: Callable[[Callable[[], None]], None] | None = None,
        max_entries: int = 10_000,
    ) -> None:
        self._record = record
        self._start = start or _in_a_thread
        self._noted: set[tuple[str, int]] = set()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def note(self, client_id: str, last_used_at: int | None, now_ms: int) -> None:
        period = now_ms - now_ms % USE_PERIOD_MS
        if last_used_at is not None and last_used_at >= period:
            return
        with self._lock:
            if (client_id, period) in self._noted:
                return
            if len(self._noted) >= self._max_entries:
                self._noted = {entry for entry in self._noted if entry[1] >= period}
            self._noted.add((client_id, period))

        def record() -> None:
            try:
                self._record(client_id, period)
            except Exception:
                logger.warning("could not record that %s was used", client_id, exc_info=True)
                with self._lock:
                    self._noted.discard((client_id, period))

        self._start(record)


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="credential-use", daemon=True).start()
