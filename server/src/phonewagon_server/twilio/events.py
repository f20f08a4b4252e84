"""What a webhook says of a call, read from its form fields and checked one by one.

Twilio sends many fields and adds new ones without notice: those we do not use are ignored
(though the signature covers them). Each field we use is bounded and of its shape, or the
webhook is refused with the field's name and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["voice", "status"]

# Twilio's call statuses; after the last five nothing more happens to a call.
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "answered")
FINAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
DIRECTIONS = ("inbound", "outbound-api", "outbound-dial", "trunking-originating")
# What Twilio sends as `From` when the caller hides their number.
HIDDEN_CALLERS = ("anonymous", "restricted", "unknown", "private", "unavailable")

MAX_NAME_CHARS = 128  # CallerName, FromCity, FromState
MAX_SEQUENCE = 1_000_000
MAX_DURATION_SECONDS = 7 * 86_400  # Twilio ends a call after 24 hours; a week is ample
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # each shape checked with fullmatch
_CALL_SID = re.compile(r"CA[0-9a-f]{32}")
_RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")


class BadWebhook(ValueError):
    """A field missing or of the wrong shape: answered 400, naming it, and nothing written."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One voice or status webhook of a call, as the queue keeps it until it is applied."""

    kind: EventKind
    call_sid: str
    received_at: int  # epoch ms, by our clock
    to_number: str
    from_number: str
    direction: str
    status: str
    sequence: int = -1  # SequenceNumber of a status callback; the voice webhook has none
    duration: int | None = None  # CallDuration, on a final status
    contact_name: str = ""

    def payload(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CallEvent:
        return cls(**payload)


@dataclass(frozen=True, slots=True)
class RecordingEvent:
    call_sid: str
    recording_sid: str
    url: str
    status: str


def account_sid(form: Mapping[str, str], expected: str) -> None:
    """The webhook is of our Twilio account (a signature by our token says Twilio sent it)."""
    given = _required(form, "AccountSid", _ACCOUNT_SID, "AC and 32 hexadecimal digits")
    if given != expected:
        raise BadWebhook("AccountSid", "is not this deployment's Twilio account")


def call_event(kind: EventKind, form: Mapping[str, str], *, received_at: int) -> CallEvent:
    status = _one_of(form, "CallStatus", (*CALL_STATUSES, *FINAL_STATUSES))
    event = CallEvent(
        kind=kind,
        call_sid=_required(form, "CallSid", _CALL_SID, "CA and 32 hexadecimal digits"),
        received_at=received_at,
        to_number=_required(form, "To", _E164, "a number in E.164 (+ and up to 15 digits)"),
        from_number=_caller(form),
        direction=_one_of(form, "Direction", DIRECTIONS),
        status=status,
        contact_name=_contact_name(form),
    )
    if kind == "voice":
        return event
    sequence = _whole(form, "SequenceNumber", MAX_SEQUENCE, required=False)
    duration = _whole(form, "CallDuration", MAX_DURATION_SECONDS, required=False)
    return dataclasses.replace(
        event,
        sequence=-1 if sequence is None else sequence,
        duration=duration if status in FINAL_STATUSES else None,
    )


def recording_event(form: Mapping[str, str], *, allowed_prefix: str) -> RecordingEvent:
    """A recording callback; its `RecordingUrl` must lie under `allowed_prefix`, our Twilio
    account's part of the configured API base: we fetch from nowhere else."""
    url = _text(form, "RecordingUrl", 2048)
    if not url.startswith(allowed_prefix) or not url_is_plain(url):
        raise BadWebhook("RecordingUrl", f"is not under {allowed_prefix}")
    return RecordingEvent(
        call_sid=_required(form, "CallSid", _CALL_SID, "CA and 32 hexadecimal digits"),
        recording_sid=_required(form, "RecordingSid", _RECORDING_SID, "RE and 32 hex digits"),
        url=url,
        status=_one_of(form, "RecordingStatus", ("in-progress", "completed", "absent", "failed")),
    )


def url_is_plain(url: str) -> bool:
    """No way out of its prefix: no `..`, backslash, userinfo, query, fragment or space."""
    rest = url.split("://", 1)[-1]
    return not any(part in rest for part in ("..", "\\", "@", "?", "#", "%2e", "%2E")) and (
        rest.isprintable() and " " not in rest
    )


def _text(form: Mapping[str, str], field: str, limit: int) -> str:
    value = form.get(field, "")
    if not value:
        raise BadWebhook(field, "is missing")
    if len(value) > limit:
        raise BadWebhook(field, f"is longer than {limit} characters")
    return value


def _required(form: Mapping[str, str], field: str, shape: re.Pattern[str], what: str) -> str:
    value = _text(form, field, 64)
    if not shape.fullmatch(value):
        raise BadWebhook(field, f"must be {what}")
    return value


def _one_of(form: Mapping[str, str], field: str, allowed: tuple[str, ...]) -> str:
    value = _text(form, field, 32)
    if value not in allowed:
        raise BadWebhook(field, f"must be one of {', '.join(allowed)}")
    return value


def _whole(form: Mapping[str, str], field: str, limit: int, *, required: bool) -> int | None:
    value = form.get(field, "")
    if not value:
        if required:
            raise BadWebhook(field, "is missing")
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12 or int(value) > limit:
        raise BadWebhook(field, f"must be a whole number from 0 to {limit}")
    return int(value)


def _caller(form: Mapping[str, str]) -> str:
    value = _text(form, "From", 64)
    if _E164.fullmatch(value):
        return value
    if value.lower() in HIDDEN_CALLERS:
        return value.lower()
    raise BadWebhook("From", "must be a number in E.164 or one of " + ", ".join(HIDDEN_CALLERS))


def _contact_name(form: Mapping[str, str]) -> str:
    """`CallerName` when Twilio sends one, else `FromCity, FromState` (both optional)."""
    parts = {}
    for field in ("CallerName", "FromCity", "FromState"):
        value = form.get(field, "").strip()
        if len(value) > MAX_NAME_CHARS or not value.isprintable():
            raise BadWebhook(field, f"must be up to {MAX_NAME_CHARS} printable characters")
        parts[field] = value
    if parts["CallerName"]:
        return parts["CallerName"]
    return ", ".join(part for part in (parts["FromCity"], parts["FromState"]) if part)
