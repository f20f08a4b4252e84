"""Twilio's webhooks authenticate by signature: `X-Twilio-Signature`, an HMAC by our auth token
of the URL Twilio was given (our public URL, never the Host header a proxy passes on) and every
posted field. Checked before the handler runs; a refusal writes nothing and logs why, once."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from phonewagon_server.api.context import context_of
from phonewagon_server.errors import Forbidden, PayloadTooLarge, RateLimited, UnreadableBody
from phonewagon_server.twilio.signature import valid_signature

logger = logging.getLogger("phonewagon_server.webhooks")

Form = list[tuple[str, str]]
MAX_FORM_BYTES = 16 * 1024  # any form: a webhook of Twilio is a few KiB, a sign-in form less
MAX_FORM_FIELDS = 200
FORM_TYPE = "application/x-www-form-urlencoded"


async def signed_form(request: Request) -> Form:
    """The request's form, once its signature is checked; Forbidden if it is not Twilio's."""
    form = await _read_form(request)
    context = context_of(request)
    tokens = context.settings.twilio_auth_tokens
    path, query = request.scope["path"], request.scope["query_string"].decode("latin-1")
    url = f"{context.settings.public_url}{path}{'?' + query if query else ''}"
    given = request.headers.get("x-twilio-signature", "")
    if not tokens:
        reason = "no Twilio auth token is configured (PHONEWAGON_TWILIO_AUTH_TOKEN)"
    elif not given:
        reason = "it carries no X-Twilio-Signature"
    elif not valid_signature(tokens, url, form, given):
        reason = f"its signature is not of any configured token for {url} and its fields"
    else:
        return form
    _count_failure(request)
    logger.warning("webhook %s refused: %s", path, reason)
    raise Forbidden("The request is not signed by this deployment's Twilio account.")


def _count_failure(request: Request) -> None:
    """Forged webhooks count against their address, like failed authentications."""
    context = context_of(request)
    address = request.client.host if request.client else "unknown"
    failures = context.auth_failure_limiter.hit(f"auth-failures:{address}")
    if not failures.allowed:
        raise RateLimited(
            "Too many refused webhooks from your address. "
            f"Retry in {failures.reset} seconds with valid signatures.",
            retry_after=failures.reset,
        )


async def _read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise UnreadableBody(f"Send the fields as {FORM_TYPE}, as Twilio does.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise PayloadTooLarge(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    except ClientDisconnect:
        raise UnreadableBody("The client went away before sending the whole form.") from None
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=MAX_FORM_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise UnreadableBody(
            f"The body is not a form of up to {MAX_FORM_FIELDS} UTF-8 fields."
        ) from None
