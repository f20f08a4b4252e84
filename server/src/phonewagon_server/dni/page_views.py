"""What a page view (or a heartbeat) writes, and how a batch of them is written together.

Page views are answered on the event loop; their writes go to one writer thread that commits
those waiting together (`db.group_writes.GroupWrites`), each batch in a fixed number of
statements (`write_page_views`).
"""

from __future__ import annotations

from dataclasses import dataclass

from phonewagon_server.db import Connection, Database
from phonewagon_server.db import visits as visit_rows
from phonewagon_server.db.group_writes import GroupWrites
from phonewagon_server.db.pools import Site
from phonewagon_server.db.visits import NewVisit
from phonewagon_server.dni.fields import PageView
from phonewagon_server.dni.pools import HoldAsk, Swap, hold_numbers
from phonewagon_server.dni.sources import is_paid, referrer_host, user_source

# The page's parameters that make a touch, and those a call keeps.
TOUCH_FIELDS = frozenset(
    {"gclid", "gbraid", "wbraid", "fbclid", "msclkid"}
    | {f"utm_{part}" for part in ("source", "medium", "campaign", "term", "content")}
)
CALL_FIELDS = frozenset(
    {"gclid", "fbclid", "msclkid", "keyword", "match_type", "network", "ad_position"}
    | {f"utm_{part}" for part in ("source", "medium", "campaign", "term", "content")}
)


@dataclass(frozen=True, slots=True)
class VisitToKeep:
    """A page view's visit: kept if it carries a touch, or is the visitor's first since `since`
    (internal navigation only extends the hold)."""

    visit: NewVisit
    touch: bool
    since: int


@dataclass(frozen=True, slots=True)
class PageViewWrite:
    hold: HoldAsk
    visit: VisitToKeep | None = None  # a heartbeat records none


PageViewWrites = GroupWrites[PageViewWrite, list[Swap]]


def page_view_writes(database: Database) -> PageViewWrites:
    return GroupWrites(database, write_page_views)


def visit_of(site: Site, visitor: str, view: PageView, *, now: int, window_ms: int) -> VisitToKeep:
    """The visit a page view would keep: the call fields it gives, and whether it is a touch."""
    query = view.query
    host = referrer_host(view.referrer, view.page)
    fields = {name: value for name, value in query.items() if name in CALL_FIELDS}
    fields |= {f"unbounce_{name}": value for name, value in view.unbounce.items() if value}
    device = query.get("ad_device") or view.device
    fields |= {
        "landing_page": view.page,
        "referral_value": view.referrer,
        "user_source": user_source(query, host),
        **({"device": device} if device else {}),
    }
    visit = NewVisit(site.company_id, visitor, now, is_paid(query), fields)
    touch = bool(host) or any(name in query for name in TOUCH_FIELDS)
    return VisitToKeep(visit, touch=touch, since=now - window_ms)


def write_page_views(tx: Connection, writes: list[PageViewWrite]) -> list[list[Swap]]:
    """The batch's visits kept, and its numbers held: each write's swaps, in order."""
    _keep_visits(tx, [write.visit for write in writes if write.visit is not None])
    return hold_numbers(tx, [write.hold for write in writes])


def _keep_visits(tx: Connection, visits: list[VisitToKeep]) -> None:
    plain = [kept.visit for kept in visits if not kept.touch]
    last = (
        visit_rows.last_visits(
            tx, {visit.company_id for visit in plain}, {visit.visitor for visit in plain}
        )
        if plain
        else {}
    )
    kept: list[NewVisit] = []
    for candidate in visits:
        visit = candidate.visit
        visitor = (visit.company_id, visit.visitor)
        if candidate.touch or last.get(visitor, -1) < candidate.since:
            kept.append(visit)
            last[visitor] = visit.created_at  # the next of the batch sees it
    visit_rows.insert_visits(tx, kept)
