"""Who is signed in: server-side sessions behind an HttpOnly cookie, and the CSRF tokens of forms.

A session id (`pwss_` + 256 random bits) lives in the `pw_session` cookie and, as a SHA-256 hash
only, in the database: signing out or `users disable` deletes the row, which ends the session
everywhere at once. Every form of a signed-in page carries the session's CSRF token, derived
from the session id (a synchronizer token that needs no storage: unguessable without the
id). The sign-in form, before any session, carries a signed double-submit token: a random nonce
and its HMAC under the deployment's key, in a cookie and in the form, which must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from phonewagon_server.api.context import AppContext

from phonewagon_server.db.users import find_session_user
from phonewagon_server.web.context import web_context

SESSION_COOKIE = "pw_session"
SIGN_IN_COOKIE = "pw_sign_in"
SESSION_PREFIX = "pwss_"  # masked in every log line, as client secrets are (`logs.redact`)
SESSION_DAYS = 7
SESSION_MS = SESSION_DAYS * 86_400_000
COOKIE_PATH = "/app"
CSRF_FIELD = "csrf_token"
_MAX_COOKIE = 128


def context_of(request: Request) -> AppContext:
    """`api.context.context_of`, imported when first used: the `api` package imports the route
    table, which imports this module."""
    from phonewagon_server.api.context import context_of as app_context

    return app_context(request)


class SignInRequired(Exception):
    """No live session: a browser is sent to the sign-in page (`web.errors`)."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person a request is from, and their account."""

    user_id: int
    account_id: int
    email: str
    session_hash: str
    csrf_token: str  # to put in every form the page shows


def new_session_id() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _csrf_token(session_id: str) -> str:
    return hashlib.sha256(f"csrf:{session_id}".encode()).hexdigest()


def session_cookie(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE, "")
    if not value.startswith(SESSION_PREFIX) or len(value) > _MAX_COOKIE:
        return None
    return value


def require_session(request: Request) -> SignedIn:
    """The signed-in person of the request, or SignInRequired. Reads the database: call it in
    a worker thread."""
    session_id = session_cookie(request)
    if session_id is None:
        raise SignInRequired()
    context = context_of(request)
    id_hash = hash_token(session_id)
    with context.database.transaction() as tx:
        user = find_session_user(tx, id_hash, now=context.now_ms())
    if user is None:
        raise SignInRequired()
    request.state.account_id = user.account_id  # for the access log
    return SignedIn(user.id, user.account_id, user.email, id_hash, _csrf_token(session_id))


def check_session_csrf(person: SignedIn, form: dict[str, str]) -> None:
    if not hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), person.csrf_token.encode()):
        raise HTTPException(403, "This form has expired or was not sent from our page.")


def new_sign_in_token(request: Request) -> str:
    """A fresh token for the sign-in form and its cookie (`set_sign_in_cookie`)."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(request, nonce)}"


def check_sign_in_csrf(request: Request, form: dict[str, str]) -> None:
    """The form's token is the cookie's, and the cookie's was signed by us. Reads the
    database once per process (the key): call it in a worker thread."""
    sent, kept = form.get(CSRF_FIELD, ""), request.cookies.get(SIGN_IN_COOKIE, "")
    nonce, _, signature = kept.partition(".")
    valid = hmac.compare_digest(sent.encode(), kept.encode()) and hmac.compare_digest(
        signature.encode(), _sign(request, nonce).encode()
    )
    if not (valid and nonce and len(kept) <= _MAX_COOKIE):
        raise HTTPException(403, "This form has expired: reload the page and try again.")


def _sign(request: Request, nonce: str) -> str:
    key = web_context(request).sign_in_key(context_of(request).database)
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def set_cookie(request: Request, response: Response, name: str, value: str, **kwargs: int) -> None:
    """A cookie of the web app: HttpOnly, SameSite=Lax, Secure behind https, under /app."""
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=web_context(request).secure_cookies,
        **kwargs,  # type: ignore[arg-type]
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=web_context(request).secure_cookies,
    )
