"""Account Settings → Credentials: the seed's tab. Create, roll and revoke API credentials."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.models import Credential
from phonewagon_server.web.render import render, see_other
from phonewagon_server.web.sessions import SignedIn

MAX_NAME = 100
HOUR_MS = 3_600_000
# How long the old secret keeps working after a roll: the choices the page offers.
GRACE_PERIODS = {"now": 0, "1h": HOUR_MS, "24h": 24 * HOUR_MS, "7d": 7 * 24 * HOUR_MS}
GRACE_LABELS = {"now": "End it now", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}
NOTICES = {"revoked": "The credential is revoked: requests made with it are refused."}


def credentials_page(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    return _page(request, person, notice=notice)


def _page(request: Request, person: SignedIn, *, status: int = 200, **values: Any) -> Response:
    with context_of(request).database.transaction() as tx:
        found = account_rows.list_credentials(tx, person.account_id)
    values.setdefault("notice", "")
    values.setdefault("revealed", None)
    values.setdefault("error", "")
    return render(
        request,
        "credentials.html",
        status=status,
        person=person,
        section="settings",
        credentials=sorted(found, key=lambda c: (not c.active, -c.created_at, c.client_id)),
        grace_labels=GRACE_LABELS,
        now_ms=context_of(request).now_ms(),
        **values,
    )


def create_credential(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    name = " ".join(form.get("name", "").split())
    if len(name) > MAX_NAME:
        error = f"A name is at most {MAX_NAME} characters."
        return _page(request, person, status=400, error=error)
    context = context_of(request)
    with context.database.transaction(write=True) as tx:
        credential, secret = account_rows.issue_credential(
            tx, person.account_id, now=context.now_ms(), name=name
        )
    revealed = {"credential": credential, "secret": secret, "rolled": None}
    return _page(request, person, revealed=revealed)


def roll_credential(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    client_id = request.path_params["client_id"]
    keep = form.get("keep", "")
    if keep not in GRACE_PERIODS:
        return _page(request, person, status=400, error="Choose how long the old secret works.")
    context = context_of(request)
    with context.database.transaction(write=True) as tx:
        rolled = account_rows.roll_credential(
            tx,
            account_id=person.account_id,
            client_id=client_id,
            grace_ms=GRACE_PERIODS[keep],
            now=context.now_ms(),
        )
    if rolled is None:
        raise _no_such_credential()
    credential, secret = rolled
    revealed = {"credential": credential, "secret": secret, "rolled": keep}
    return _page(request, person, revealed=revealed)


def confirm_revoke_page(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    credential = _owned(request, person)
    return render(
        request,
        "revoke.html",
        person=person,
        section="settings",
        credential=credential,
    )


def revoke_credential(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    context = context_of(request)
    with context.database.transaction(write=True) as tx:
        revoked = account_rows.revoke_credential(
            tx,
            request.path_params["client_id"],
            now=context.now_ms(),
            account_id=person.account_id,
        )
    if revoked is None:
        raise _no_such_credential()
    return see_other("/app/settings/credentials?notice=revoked")


def _owned(request: Request, person: SignedIn) -> Credential:
    with context_of(request).database.transaction() as tx:
        credential = account_rows.find_credential(
            tx, request.path_params["client_id"], account_id=person.account_id
        )
    if credential is None or not credential.active:
        raise _no_such_credential()
    return credential


def _no_such_credential() -> HTTPException:
    return HTTPException(404, "This account has no active credential with that client id.")
