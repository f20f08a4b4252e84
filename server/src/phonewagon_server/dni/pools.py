"""Handing pool numbers to visitors: the least recently used free one, kept while it is held."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.pools import Pool
from phonewagon_server.dni.counters import dni_counters

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Swap:
    target: str  # the business number on the page
    number: str  # the pool number the visitor holds instead

    def as_json(self) -> dict[str, str]:
        return {"target": self.target, "number": self.number}


def hold_numbers(
    tx: Connection,
    pools: tuple[Pool, ...],
    *,
    company_id: int,
    visitor: str,
    address: str,
    now: int,
    until: int,
    max_holders_per_address: int,
) -> list[Swap]:
    """A number of each of the company's `pools` for `visitor`, held until `until`: the one they
    hold already, else the least recently used free one. A pool with none free is left out
    (the page keeps the business number), as is every pool for an address whose visitors hold
    numbers already `max_holders_per_address` times over. Call in a write transaction."""
    if not pools:
        return []
    pool_rows.lock_visitor(tx, company_id, visitor)
    swaps: list[Swap] = []
    # A script reloading a page with its storage cleared is a new visitor each time: only so
    # many of one address's visitors may hold numbers at once.
    capped = (
        not pool_rows.holds_of_visitor(tx, company_id, visitor, now=now)
        and pool_rows.live_holds_of_address(tx, company_id, address, now=now)
        >= max_holders_per_address
    )
    if capped:
        logger.info("dni: an address of company %d holds numbers enough; none more", company_id)
        return []
    for pool in pools:
        number = pool_rows.held_number(tx, pool.campaign_id, visitor, now=now)
        if number is not None:
            pool_rows.extend_hold(tx, number, until=until)
            swaps.append(Swap(pool.swap_target, number))
            continue
        number = pool_rows.take_free_number(tx, pool.campaign_id, now=now)
        if number is None:
            dni_counters().fallbacks.inc()
            logger.warning(
                "dni: pool %s of company %d exhausted; the page keeps %s",
                pool.campaign_id,
                company_id,
                pool.swap_target,
            )
            continue
        pool_rows.start_hold(
            tx,
            number,
            company_id=company_id,
            visitor=visitor,
            address=address,
            now=now,
            until=until,
        )
        swaps.append(Swap(pool.swap_target, number))
    return swaps
