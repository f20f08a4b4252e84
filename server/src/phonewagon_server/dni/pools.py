"""Handing pool numbers to visitors: the least recently used free one, kept while it is held.

A batch of page views (`dni.page_views`) asks at once, and is answered in a fixed number of
statements, however many views it holds: the visitors' holds read together, the free numbers
of every pool asked for read together, the new holds written together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.pools import NewHold, Pool
from phonewagon_server.dni.counters import dni_counters

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Swap:
    target: str  # the business number on the page
    number: str  # the pool number the visitor holds instead

    def as_json(self) -> dict[str, str]:
        return {"target": self.target, "number": self.number}


@dataclass(frozen=True, slots=True)
class HoldAsk:
    """A page view's (or a heartbeat's) ask: a number of each of its company's `pools`."""

    company_id: int
    pools: tuple[Pool, ...]
    visitor: str
    address: str
    now: int
    until: int  # how long a number given or kept is held
    max_holders_per_address: int


Visitor = tuple[int, str]  # (company, visitor)


def hold_numbers(tx: Connection, asks: Sequence[HoldAsk]) -> list[list[Swap]]:
    """For each ask, a number of each pool, held until its `until`: the one its visitor holds
    already, else the least recently used free one. A pool with none free is left out (the
    page keeps the business number), as is every pool for an address whose visitors hold
    numbers already `max_holders_per_address` times over. Call in a write transaction."""
    asking = [ask for ask in asks if ask.pools]
    if not asking:
        return [[] for _ in asks]
    companies = {ask.company_id for ask in asking}
    pool_rows.lock_visitors(tx, {(ask.company_id, ask.visitor) for ask in asking})
    now = min(ask.now for ask in asking)
    held: dict[Visitor, dict[str, tuple[str, int]]] = {}  # campaign → (number, held until)
    for hold in pool_rows.holds_of_visitors(tx, companies, {a.visitor for a in asking}, now=now):
        held.setdefault((hold.company_id, hold.visitor), {})[hold.campaign_id] = (
            hold.number,
            hold.held_until,
        )
    lacking = {ask.address for ask in asking if (ask.company_id, ask.visitor) not in held}
    plan = _Plan(tx, held, companies, lacking, now=now)
    chosen = [plan.choose(ask) for ask in asks]
    given = plan.write(tx)
    swaps: list[list[Swap]] = [[] for _ in asks]
    for ask, pools, answer in zip(asks, chosen, swaps, strict=True):
        for pool, kept in pools:
            number = kept or given.get((ask.company_id, ask.visitor, pool.campaign_id))
            if number:
                answer.append(Swap(pool.swap_target, number))
                continue
            dni_counters().fallbacks.inc()
            logger.warning(
                "dni: pool %s of company %d exhausted; the page keeps %s",
                pool.campaign_id,
                ask.company_id,
                pool.swap_target,
            )
    return swaps


class _Plan:
    """What a batch keeps (holds extended), and what it wants (free numbers, per pool)."""

    def __init__(
        self,
        tx: Connection,
        held: dict[Visitor, dict[str, tuple[str, int]]],
        companies: set[int],
        addresses: set[str],
        *,
        now: int,
    ) -> None:
        self.held = held
        self.now = now
        self.holders: dict[tuple[int, str], set[str]] = {}  # (company, address) → visitors
        if addresses:  # those of the visitors holding nothing: the only ones capped
            for hold in pool_rows.holds_of_addresses(tx, companies, addresses, now=now):
                self.holders.setdefault((hold.company_id, hold.address), set()).add(hold.visitor)
        self.extended: dict[str, int] = {}  # number → until
        self.wanted: dict[tuple[int, str, str], NewHold] = {}  # (company, visitor, campaign)

    def choose(self, ask: HoldAsk) -> list[tuple[Pool, str | None]]:
        """Each pool with the number the visitor keeps, or None: a number to take."""
        if not ask.pools:
            return []
        visitor = (ask.company_id, ask.visitor)
        mine = {
            campaign_id: number
            for campaign_id, (number, held_until) in self.held.get(visitor, {}).items()
            if held_until > ask.now
        }
        holders = self.holders.setdefault((ask.company_id, ask.address), set())
        # A script reloading a page with its storage cleared is a new visitor each time: only
        # so many of one address's visitors may hold numbers at once.
        if not mine and ask.visitor not in holders and len(holders) >= ask.max_holders_per_address:
            logger.info(
                "dni: an address of company %d holds numbers enough; none more", ask.company_id
            )
            return []
        holders.add(ask.visitor)
        chosen: list[tuple[Pool, str | None]] = []
        for pool in ask.pools:
            number = mine.get(pool.campaign_id)
            if number is not None:
                self.extended[number] = max(self.extended.get(number, 0), ask.until)
            else:
                key = (ask.company_id, ask.visitor, pool.campaign_id)
                wanted = self.wanted.get(key)
                until = max(wanted.held_until, ask.until) if wanted else ask.until
                start = wanted.started_at if wanted else ask.now
                # Its number is known once the batch's free numbers are read (`write`).
                self.wanted[key] = NewHold(
                    "", ask.company_id, ask.visitor, ask.address, start, until
                )
            chosen.append((pool, number))
        return chosen

    def write(self, tx: Connection) -> dict[tuple[int, str, str], str]:
        """Extend what is kept, take what is wanted; the numbers taken."""
        by_until: dict[int, list[str]] = {}
        for number, until in self.extended.items():
            by_until.setdefault(until, []).append(number)
        for until, numbers in by_until.items():
            pool_rows.extend_holds(tx, numbers, until=until)
        if not self.wanted:
            return {}
        campaigns = [campaign_id for _, _, campaign_id in self.wanted]
        most = max(campaigns.count(campaign_id) for campaign_id in set(campaigns))
        free = pool_rows.free_numbers(tx, set(campaigns), now=self.now, most=most)
        given: dict[tuple[int, str, str], str] = {}
        holds: list[NewHold] = []
        for key, wanted in self.wanted.items():
            _, _, campaign_id = key
            numbers = free.get(campaign_id, [])
            if not numbers:
                continue  # the pool is exhausted
            given[key] = numbers.pop(0)
            holds.append(replace(wanted, number=given[key]))
        pool_rows.start_holds(tx, holds)
        return given
