"""The three webhooks Twilio calls: `/twilio/voice`, `/twilio/status`, `/twilio/recording`.

Each answers once its one job is in the work queue (`intake`); the calls themselves are written
in the background (`workers`), so a webhook never waits for the database's write lock, which an
import may hold for minutes. Their signature is checked before they run (`Auth.TWILIO_SIGNATURE`).
They run on the event loop: what may wait (a number not read lately, the queue's commit) is
awaited, not blocked on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.webhook_auth import Form
from phonewagon_server.errors import InvalidField
from phonewagon_server.twilio import events, twiml
from phonewagon_server.twilio.recordings import recordings_prefix
from phonewagon_server.twilio.workers import CALL_EVENT, FETCH_RECORDING

logger = logging.getLogger("phonewagon_server.webhooks")

UNKNOWN_NUMBER = "Sorry, this number is not in service. Goodbye."


async def voice(request: Request, form: Form) -> Response:
    """A call rings one of our numbers: forward it, recorded, if the number is ours."""
    context = context_of(request)
    event = _call_event("voice", request, form)
    number = await context.intake.number(event.to_number, context.run_short)
    if number is None:
        logger.info("call %s to %s: no such number, declined", event.call_sid, event.to_number)
        return _twiml(twiml.decline(UNKNOWN_NUMBER))
    await _queue(request, CALL_EVENT, form, event.payload())
    caller_id = event.from_number if event.from_number.startswith("+") else event.to_number
    answer = twiml.forward(
        number.forward_to,
        caller_id=caller_id,
        recording_callback_url=f"{context.settings.public_url}/twilio/recording",
    )
    return _twiml(answer)


async def status(request: Request, form: Form) -> Response:
    """The call's status moved (ringing, in-progress, completed...)."""
    event = _call_event("status", request, form)
    await _queue(request, CALL_EVENT, form, event.payload())
    return _twiml(twiml.empty())


async def recording(request: Request, form: Form) -> Response:
    """A recording of the call is ready at Twilio: fetch it, in the background."""
    settings = context_of(request).settings
    fields = _fields(form)
    prefix = recordings_prefix(settings.twilio_api_base, settings.twilio_account_sid)
    try:
        events.account_sid(fields, settings.twilio_account_sid)
        ready = events.recording_event(fields, allowed_prefix=prefix)
    except events.BadWebhook as exc:
        raise InvalidField(exc.field, exc.problem) from None
    if ready.status == "completed":
        job = {"call_sid": ready.call_sid, "recording_sid": ready.recording_sid, "url": ready.url}
        await context_of(request).intake.accept(FETCH_RECORDING, ready.recording_sid, job)
    return _twiml(twiml.empty())


def _call_event(kind: events.EventKind, request: Request, form: Form) -> events.CallEvent:
    context = context_of(request)
    fields = _fields(form)
    try:
        events.account_sid(fields, context.settings.twilio_account_sid)
        return events.call_event(kind, fields, received_at=context.now_ms())
    except events.BadWebhook as exc:
        raise InvalidField(exc.field, exc.problem) from None


def _fields(form: Form) -> Mapping[str, str]:
    fields = dict(form)
    if len(fields) != len(form):  # Twilio names each field once: two values mean a forgery
        twice = next(name for name, count in Counter(n for n, _ in form).items() if count > 1)
        raise InvalidField(twice, "is given more than once")
    return fields


async def _queue(request: Request, kind: str, form: Form, payload: dict[str, Any]) -> None:
    """Queue the webhook's job once: a delivery Twilio repeats is the same job."""
    delivery = orjson.dumps([request.scope["path"], sorted(form)])
    key = hashlib.sha256(delivery).hexdigest()
    await context_of(request).intake.accept(kind, key, payload)


def _twiml(body: bytes) -> Response:
    return Response(body, media_type=twiml.CONTENT_TYPE)
