"""People's passwords, hashed with Argon2id (argon2-cffi's defaults, RFC 9106's low-memory
profile), and the rules a new password must meet.

Unlike a client secret (256 random bits: a fast hash is enough), a password is chosen by a
person and may be guessed: a slow, memory-hard hash makes every guess against a stolen hash
cost ~0.1 s and 64 MiB.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_HASHER = PasswordHasher()
# Verified against when the email is unknown or has no password yet, so every failed sign-in
# costs the same work and the time taken tells nothing of which emails exist.
_UNKNOWN_HASH = _HASHER.hash("no such person")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """Whether `password` matches `stored_hash` (None or "": nobody, or no password set yet)."""
    try:
        matches = _HASHER.verify(stored_hash or _UNKNOWN_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(matches and stored_hash)


def password_problem(password: str) -> str | None:
    """Why `password` cannot be used, or None if it can."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if not password.strip():
        return "Use something other than spaces."
    return None


def normalize_email(email: str) -> str | None:
    """The email as it is stored (trimmed, lower case), or None if it is not one."""
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        return None
    return email
