"""Applying what the webhooks said to the calls: through the one write path of calls."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Literal

from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db.calls import write_call
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.numbers import find_number
from phonewagon_server.dni.attribution import visit_of_call
from phonewagon_server.twilio.events import CallEvent
from phonewagon_server.twilio.live_calls import (
    LiveCall,
    account_of_live_call,
    as_call,
    first_time_caller,
    merge,
    read_live_call,
    save_live_call,
    start,
)

logger = logging.getLogger(__name__)
ATTRIBUTION_DAYS = Settings().attribution_days
Applied = Literal["applied", "no such number"]


class CallNotKnownYet(LookupError):
    """A recording arrived before any webhook that says which number the call rang: later."""


def apply_event(
    database: Database, event: CallEvent, *, attribution_days: int = ATTRIBUTION_DAYS
) -> Applied:
    """Fold `event` into its call and write the call; a call to a number we do not have (any
    more) with nothing stored yet is left alone."""
    return apply_events(database, [event], attribution_days=attribution_days)[0]


def apply_events(
    database: Database, events: Sequence[CallEvent], *, attribution_days: int = ATTRIBUTION_DAYS
) -> list[Applied]:
    """`apply_event` for each of `events`, in one transaction per account: what each did."""
    outcomes: list[Applied] = ["no such number"] * len(events)
    by_account: dict[int, list[int]] = {}
    with database.transaction() as tx:
        for index, event in enumerate(events):
            number = find_number(tx, event.to_number)
            account_id = number.account_id if number else account_of_live_call(tx, event.call_sid)
            if account_id is not None:
                by_account.setdefault(account_id, []).append(index)
    for account_id, indexes in by_account.items():
        # In the order they arrived: a caller's first call is the one that rang first. (Two
        # workers locking two calls in opposite orders deadlock, rarely: the database rolls one
        # back, and its worker applies that batch's events one by one.)
        indexes.sort(key=lambda index: (events[index].received_at, events[index].call_sid))
        with database.transaction(write=True, changing=account_id) as tx:
            for index in indexes:
                outcomes[index] = _fold(tx, events[index], attribution_days=attribution_days)
    return outcomes


def _fold(tx: Connection, event: CallEvent, *, attribution_days: int) -> Applied:
    live = read_live_call(tx, event.call_sid)
    if live is None:
        if (number := find_number(tx, event.to_number)) is None:
            return "no such number"
        live = start(event, number)
        visit = visit_of_call(
            tx, number, sid=live.sid, at=live.start_time, attribution_days=attribution_days
        )
        live = dataclasses.replace(live, visit=visit)
    else:
        live = merge(live, event)
    _store(tx, live)
    return "applied"


def attach_recording(
    database: Database,
    *,
    call_sid: str,
    recording_sid: str,
    stored_as: str,
    content_type: str,
    size: int,
    url: str,
) -> None:
    """Keep a fetched recording with its call, whose `recording_url` becomes `url`."""
    with database.transaction() as tx:
        account_id = account_of_live_call(tx, call_sid)
    if account_id is None:
        raise CallNotKnownYet(call_sid)
    with database.transaction(write=True, changing=account_id) as tx:
        live = read_live_call(tx, call_sid)
        if live is None:
            raise CallNotKnownYet(call_sid)
        tx.execute(
            "INSERT INTO call_recordings (account_id, call_sid, recording_sid, stored_as,"
            " content_type, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, call_sid) DO UPDATE SET recording_sid ="
            " excluded.recording_sid, stored_as = excluded.stored_as,"
            " content_type = excluded.content_type, size = excluded.size",
            (account_id, call_sid, recording_sid, stored_as, content_type, size, live.start_time),
        )
        _store(tx, dataclasses.replace(live, recording_url=url))


def _store(tx: Connection, live: LiveCall) -> None:
    if live.is_first_time_caller is None:
        live = dataclasses.replace(live, is_first_time_caller=first_time_caller(tx, live))
    save_live_call(tx, live)
    campaign = company_rows.get_campaign(tx, live.campaign_id)
    if campaign is None:  # campaigns are never deleted; a number always names one
        raise LookupError(f"campaign {live.campaign_id} of call {live.sid} is gone")
    write_call(tx, as_call(live, campaign), campaign)
