"""A live call, folded from its webhooks in whatever order and how often they arrive.

`merge` is a join: merging an event twice, or two events either way round, gives the same state.
So the queue may deliver at least once and in any order, and every worker may apply what it
claims. What decides each field:

- the status: the later one in the call's life, a final status (completed, busy...) above any
  other, then the higher `SequenceNumber`: a late `ringing` never undoes `completed`;
- the duration: the final status's `CallDuration`;
- the start time: when the voice webhook arrived, else the earliest webhook of the call;
- the rest (numbers, caller name): the voice webhook's, else any webhook's, as all carry them;
- the website visit's fields (a call to a pool number): decided once, when the call is first
  stored, and kept through every later webhook and redelivery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from phonewagon_server.db.engine import Connection
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.models import Call, Campaign
from phonewagon_server.twilio.events import FINAL_STATUSES, CallEvent


@dataclass(frozen=True, slots=True)
class LiveCall:
    sid: str
    account_id: int
    campaign_id: str
    company_id: int
    source: str  # the number's source; '' for the campaign's name
    from_number: str
    to_number: str
    direction: str
    contact_name: str
    status: str
    status_rank: tuple[int, int]  # (final?, SequenceNumber): the higher wins
    duration: int
    voice_at: int | None  # when the voice webhook arrived
    first_seen_at: int  # the earliest webhook of the call
    is_first_time_caller: bool | None  # decided once, when the call is first stored
    recording_url: str = ""
    # The call fields of the visit that held the number when the call began (`dni.attribution`).
    visit: dict[str, str] = field(default_factory=dict)

    @property
    def start_time(self) -> int:
        return self.voice_at if self.voice_at is not None else self.first_seen_at


def rank(event: CallEvent) -> tuple[int, int]:
    return (int(event.status in FINAL_STATUSES), event.sequence)


def start(event: CallEvent, number: TrackingNumber) -> LiveCall:
    """The call as its first event applied tells it."""
    return LiveCall(
        sid=event.call_sid,
        account_id=number.account_id,
        campaign_id=number.campaign_id,
        company_id=number.company_id,
        source=number.source,
        from_number=event.from_number,
        to_number=event.to_number,
        direction=event.direction,
        contact_name=event.contact_name,
        status=event.status,
        status_rank=rank(event),
        duration=event.duration or 0,
        voice_at=event.received_at if event.kind == "voice" else None,
        first_seen_at=event.received_at,
        is_first_time_caller=None,
    )


def merge(call: LiveCall, event: CallEvent) -> LiveCall:
    changes: dict[str, Any] = {"first_seen_at": min(call.first_seen_at, event.received_at)}
    if event.kind == "voice":
        voice_at = event.received_at
        if call.voice_at is not None:
            voice_at = min(call.voice_at, voice_at)  # a redelivery arrives later
        changes |= {
            "voice_at": voice_at,
            "from_number": event.from_number,
            "to_number": event.to_number,
            "direction": event.direction,
            "contact_name": event.contact_name or call.contact_name,
        }
    elif not call.contact_name and event.contact_name:
        changes["contact_name"] = event.contact_name
    if rank(event) > call.status_rank:
        changes |= {
            "status": event.status,
            "status_rank": rank(event),
            "duration": event.duration or 0,
        }
    return dataclasses.replace(call, **changes)


# What a visit may fill: the web fields of a call (`dni.visits` builds them), nothing else.
VISIT_FIELDS = frozenset(
    {"landing_page", "referral_value", "gclid", "fbclid", "msclkid", "keyword", "match_type"}
    | {"network", "device", "ad_position", "user_source"}
    | {f"utm_{part}" for part in ("source", "medium", "campaign", "term", "content")}
    | {f"unbounce_{part}" for part in ("page_id", "variant_id", "visitor_id")}
)


def as_call(call: LiveCall, campaign: Campaign) -> Call:
    visit: dict[str, Any] = {
        name: value for name, value in call.visit.items() if name in VISIT_FIELDS
    }
    record = Call(
        sid=call.sid,
        campaign_id=call.campaign_id,
        start_time=call.start_time,
        duration=call.duration,
        is_first_time_caller=bool(call.is_first_time_caller),
        contact_name=call.contact_name,
        direction=call.direction,
        from_number=call.from_number,
        recording_url=call.recording_url,
        status=call.status,
        to_number=call.to_number,
        user_source=visit.pop("user_source", "") or call.source or campaign.name,
    )
    return dataclasses.replace(record, **visit)


def read_live_call(tx: Connection, sid: str) -> LiveCall | None:
    """The call's state, locked until the transaction ends (on PostgreSQL) so that workers
    applying two of its events at once apply them one after the other."""
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('live-call:' || ?))", (sid,))
    row = tx.fetchone("SELECT state FROM live_calls WHERE sid = ?", (sid,))
    if row is None:
        return None
    state = orjson.loads(row[0])
    return LiveCall(**{**state, "status_rank": tuple(state["status_rank"])})


def account_of_live_call(tx: Connection, sid: str) -> int | None:
    row = tx.fetchone("SELECT account_id FROM live_calls WHERE sid = ?", (sid,))
    return int(row[0]) if row else None


def save_live_call(tx: Connection, call: LiveCall) -> None:
    state = orjson.dumps(dataclasses.asdict(call)).decode()
    tx.execute(
        "INSERT INTO live_calls (sid, account_id, state) VALUES (?, ?, ?)"
        " ON CONFLICT (sid) DO UPDATE SET state = excluded.state",
        (call.sid, call.account_id, state),
    )


def first_time_caller(tx: Connection, call: LiveCall) -> bool:
    """Whether no earlier call came from this number to this company. Two calls from one number
    at once: the unique key lets one insert; the other waits for it and then finds it there."""
    if call.from_number.startswith("+") is False:
        return False  # a hidden caller is nobody in particular
    inserted = tx.execute(
        "INSERT INTO callers (company_id, from_number, first_sid) VALUES (?, ?, ?)"
        " ON CONFLICT (company_id, from_number) DO NOTHING",
        (call.company_id, call.from_number, call.sid),
    )
    if inserted == 1:
        return True
    row = tx.fetchone(
        "SELECT first_sid FROM callers WHERE company_id = ? AND from_number = ?",
        (call.company_id, call.from_number),
    )
    return row is not None and row[0] == call.sid
