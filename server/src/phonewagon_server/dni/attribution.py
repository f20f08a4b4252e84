"""A call to a pool number takes the fields of the visit that held its number when it began."""

from __future__ import annotations

import logging

from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db import visits as visit_rows
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.dni.counters import dni_counters

logger = logging.getLogger(__name__)
DAY_MS = 86_400_000


def visit_of_call(
    tx: Connection, number: TrackingNumber, *, sid: str, at: int, attribution_days: int
) -> dict[str, str]:
    """The call fields of the visit behind a call to `number` that began at `at` (epoch ms):
    the first touch of the visitor who held the number then, within the attribution window.
    Nothing for a number of no pool, or one nobody held then (the call is ambiguous: a number
    on a cached page, or written down)."""
    if not pool_rows.is_pool(tx, number.campaign_id):
        return {}
    holder = pool_rows.holder_at(tx, number.number, at)
    if holder is None or holder.company_id != number.company_id:
        dni_counters().ambiguous_calls.inc()
        logger.warning("dni: ambiguous call %s to %s: no visit held it", sid, number.number)
        return {}
    visit = visit_rows.first_touch(
        tx, holder.company_id, holder.visitor, since=at - attribution_days * DAY_MS, until=at
    )
    return visit.fields if visit else {}
