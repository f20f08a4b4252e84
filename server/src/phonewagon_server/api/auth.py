"""HTTP Basic authentication and the per-account rate limit, checked before any work."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from phonewagon_server.api.context import AppContext, context_of
from phonewagon_server.credentials import verify_secret
from phonewagon_server.db.accounts import find_secret_hashes
from phonewagon_server.errors import RateLimited, Unauthenticated


def authorize(request: Request) -> int:
    """The account id of the request's credentials, after spending one unit of its quota.

    `api.routing` runs it before the handler of every `Auth.ACCOUNT` route.

    A failed authentication spends nothing of the account it names; it counts against the client
    address instead, which is answered 429 once it fails too often.
    """
    context = context_of(request)
    credentials = _basic_credentials(_authorization(request))
    account_id, verified_now = _authenticate(context, credentials)
    if account_id is None or credentials is None:
        address = request.client.host if request.client else "unknown"
        failures = context.auth_failure_limiter.hit(f"auth-failures:{address}")
        if not failures.allowed:
            raise RateLimited(
                "Too many failed authentications from your address. "
                f"Retry in {failures.reset} seconds with valid credentials.",
                retry_after=failures.reset,
            )
        raise Unauthenticated()
    request.state.account_id = account_id  # for the access log, and to tell the 429s apart
    decision = context.account_limiter.hit(f"account:{account_id}")
    request.state.rate_limit_headers = decision.headers()
    if not decision.allowed:
        rate = decision.rate
        raise RateLimited(
            f"This account may make {rate.limit} requests in any {rate.window} seconds. "
            f"Retry in {decision.reset} seconds.",
            retry_after=decision.reset,
        )
    if verified_now:
        context.verified_credentials.remember(*credentials, account_id)
    return account_id


def _authenticate(
    context: AppContext, credentials: tuple[str, str] | None
) -> tuple[int | None, bool]:
    """The account of `credentials`, and whether the database was asked (not the cache)."""
    if credentials is None:
        return None, False
    if (account_id := context.verified_credentials.account_of(*credentials)) is not None:
        return account_id, False
    client_id, secret = credentials
    with context.database.transaction() as tx:
        found = find_secret_hashes(tx, client_id)
    now = context.now_ms()
    # Both comparisons always run, against a stand-in hash where there is nothing to compare
    # with: the same work for an unknown id, a wrong secret, or a previous one past its grace.
    current = verify_secret(secret, found.secret_hash if found else None)
    previous_hash = None
    if found and found.previous_secret_expires_at and found.previous_secret_expires_at > now:
        previous_hash = found.previous_secret_hash
    previous = verify_secret(secret, previous_hash)
    if found is None or not (current or previous):
        return None, False
    if context.credential_uses is not None:
        context.credential_uses.note(client_id, found.last_used_at, now)
    return found.account_id, True


def _authorization(request: Request) -> str:
    """The first `Authorization` header, read without building all of `request.headers`."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            return header
    return ""


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII input, or not UTF-8 inside
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or len(decoded) > 512 or "\x00" in decoded:
        return None
    return client_id, secret
