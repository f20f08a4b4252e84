"""Signing in and out, and setting a password from a one-time link."""

from __future__ import annotations

import hashlib
import math

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.db.users import (
    delete_expired_sessions,
    delete_session,
    find_password_link,
    find_user,
    insert_session,
    set_password,
)
from phonewagon_server.passwords import (
    hash_password as hash_new_password,
)
from phonewagon_server.passwords import (
    normalize_email,
    password_problem,
    verify_password,
)
from phonewagon_server.web.context import web_context
from phonewagon_server.web.render import render, see_other
from phonewagon_server.web.sessions import (
    SESSION_COOKIE,
    SESSION_MS,
    SIGN_IN_COOKIE,
    SignedIn,
    clear_cookie,
    hash_token,
    new_session_id,
    new_sign_in_token,
    session_cookie,
    set_cookie,
)

HOME = "/app/calls"
SET_PASSWORD_PREFIX = "pwst_"  # noqa: S105 - a prefix; masked in log lines like secrets
NOTICES = {"password-set": "Your password is set: sign in with it.", "signed-out": "Signed out."}


def sign_in_page(request: Request) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    next_path = _safe_next(request.query_params.get("next"))
    return _sign_in_form(request, next_path=next_path, notice=notice)


def _sign_in_form(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    token = new_sign_in_token(request)
    response = render(
        request,
        "login.html",
        status=status,
        csrf_token=token,
        next_path=next_path,
        email=email,
        error=error,
        notice=notice,
    )
    set_cookie(request, response, SIGN_IN_COOKIE, token)
    return response


def sign_in(request: Request, form: dict[str, str]) -> Response:
    """Check the throttles, then the password; on success a new session (never one the browser
    brought: no fixation), and the old one, if any, ended."""
    context, web = context_of(request), web_context(request)
    typed = form.get("email", "")[:300]
    email = normalize_email(typed) or typed.strip().lower()
    next_path = _safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    by_email = web.sign_ins_by_email.hit(
        "sign-in-email:" + hashlib.sha256(email.encode()).hexdigest()[:32]
    )
    by_address = web.sign_ins_by_address.hit(f"sign-in-address:{address}")
    if not (by_email.allowed and by_address.allowed):
        wait = max(d.reset for d in (by_email, by_address) if not d.allowed)
        minutes = max(1, math.ceil(wait / 60))
        error = (
            "Too many sign-in attempts. For your account's safety, wait"
            f" {minutes} minute{'s' if minutes > 1 else ''} and try again."
        )
        response = _sign_in_form(request, next_path=next_path, email=typed, error=error, status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    with context.database.transaction() as tx:
        user = find_user(tx, email)
    stored = user.password_hash if user is not None and user.active else None
    if user is None or not verify_password(form.get("password", "")[:1024], stored):
        error = "That email and password do not match an account. Check them and try again."
        return _sign_in_form(request, next_path=next_path, email=typed, error=error, status=400)
    session_id = new_session_id()
    now = context.now_ms()
    with context.database.transaction(write=True) as tx:
        if (brought := session_cookie(request)) is not None:
            delete_session(tx, hash_token(brought))
        delete_expired_sessions(tx, user.id, now=now)
        insert_session(
            tx,
            id_hash=hash_token(session_id),
            user_id=user.id,
            now=now,
            expires_at=now + SESSION_MS,
        )
    response = see_other(next_path)
    set_cookie(request, response, SESSION_COOKIE, session_id, max_age=SESSION_MS // 1000)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


def sign_out(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    with context_of(request).database.transaction(write=True) as tx:
        delete_session(tx, person.session_hash)
    response = see_other("/app/login?notice=signed-out")
    clear_cookie(request, response, SESSION_COOKIE)
    return response


def set_password_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    return _set_password_form(request, token=token)


def _set_password_form(
    request: Request, *, token: str, error: str = "", status: int = 200
) -> Response:
    context = context_of(request)
    with context.database.transaction() as tx:
        user = find_password_link(tx, hash_token(token), now=context.now_ms()) if token else None
    if user is None:
        return render(
            request,
            "error.html",
            status=404,
            title="This link has expired",
            detail="Links to set a password work once, for 72 hours. Ask your operator for"
            " a new one.",
        )
    csrf = new_sign_in_token(request)
    response = render(
        request,
        "set_password.html",
        status=status,
        csrf_token=csrf,
        token=token,
        email=user.email,
        error=error,
    )
    set_cookie(request, response, SIGN_IN_COOKIE, csrf)
    return response


def set_password_from_link(request: Request, form: dict[str, str]) -> Response:
    token, password = form.get("token", ""), form.get("password", "")
    if password != form.get("confirm", ""):
        return _set_password_form(
            request, token=token, error="The two passwords differ.", status=400
        )
    if (problem := password_problem(password)) is not None:
        return _set_password_form(request, token=token, error=problem, status=400)
    context = context_of(request)
    password_hash = hash_new_password(password)
    with context.database.transaction(write=True) as tx:
        user = find_password_link(tx, hash_token(token), now=context.now_ms()) if token else None
        if user is not None:
            set_password(tx, user.id, password_hash)  # the link is used up with it
    if user is None:
        return _set_password_form(request, token=token)
    response = see_other("/app/login?notice=password-set")
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


def _safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of the web app, never another site."""
    if (
        path
        and path.startswith("/app/")
        and not path.startswith("/app//")
        and "\\" not in path
        and all(ch.isprintable() for ch in path)
    ):
        return path
    return HOME
