"""`POST /dni/visits` and `POST /dni/heartbeat`: the script on a customer's page records a page
view and gets the pool numbers to show (docs/dni.md has the contract).

Refused in this order, before anything is written: the address's rate (429), the body (400),
the site key (403), the company's rate (429), the page's Origin (403). Then a bot, or a client
faster than a person, is answered `swaps: []` and not recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.responses import json_response
from phonewagon_server.api.routing import JSONObject
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.pools import Site
from phonewagon_server.dni.bots import Behaviour, is_bot_agent
from phonewagon_server.dni.counters import dni_counters
from phonewagon_server.dni.fields import Heartbeat, PageView, read_heartbeat, read_page_view
from phonewagon_server.dni.page_views import (
    PageViewWrite,
    PageViewWrites,
    page_view_writes,
    visit_of,
)
from phonewagon_server.dni.pools import HoldAsk, Swap
from phonewagon_server.errors import Forbidden, NotFound, RateLimited
from phonewagon_server.ratelimit import Clock, Limiter, build_limiter

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 60
SITE_SECONDS = 5.0  # how long a site read (its key, its origins) is trusted
DAY_MS = 86_400_000
PERSON = "h"  # a visit token's first letter when its visitor may hold numbers


@dataclass(slots=True)
class VisitDesk:
    """What the two endpoints share: the limiters and the key that signs visit tokens."""

    address_limiter: Limiter
    company_limiter: Limiter
    behaviour: Behaviour
    writes: PageViewWrites  # the page views' holds and visits, committed together
    clock: Clock
    _token_key: bytes | None = None
    _sites: dict[str, tuple[float, Site | None]] = field(default_factory=dict)

    @classmethod
    def for_settings(
        cls, settings: Settings, database: Database, *, clock: Clock = time.monotonic
    ) -> VisitDesk:
        return cls(
            address_limiter=build_limiter(settings.dni_visit_limit, settings, clock=clock),
            company_limiter=build_limiter(settings.dni_company_limit, settings, clock=clock),
            behaviour=Behaviour(settings, clock=clock),
            writes=page_view_writes(database),
            clock=clock,
        )

    def site(self, database: Database, key: str) -> Site | None:
        """The site of `key`, read from the database once every few seconds: a new site, or
        origins changed, count within SITE_SECONDS."""
        now = self.clock()
        known = self._sites.get(key)
        if known is not None and now - known[0] < SITE_SECONDS:
            return known[1]
        with database.transaction() as tx:
            site = pool_rows.site_of_key(tx, key)
        if len(self._sites) > 10_000:
            self._sites.clear()  # a flood of made-up keys must not grow it for ever
        self._sites[key] = (now, site)
        return site

    def token(self, database: Database, site: Site, visitor: str, *, holds: bool) -> str:
        """The visit token: names the visitor's holds, or says they may hold none (`holds`)."""
        if self._token_key is None:
            with database.transaction() as tx:
                self._token_key = pool_rows.visit_key(tx).encode()
        flag = PERSON if holds else "n"
        message = f"{flag}:{site.company_id}:{visitor}".encode()
        digest = hmac.digest(self._token_key, message, hashlib.sha256)[:18]
        return flag + base64.urlsafe_b64encode(digest).decode()


def desk_of(request: Request) -> VisitDesk:
    desk: VisitDesk = request.app.state.dni
    return desk


async def record_visit(request: Request, body: JSONObject) -> Response:
    """`POST /dni/visits`: one per page view."""
    context, desk = context_of(request), desk_of(request)
    view, site, address, visitor, token = await context.run_short(_admit_view, request, body)
    if not token.startswith(PERSON):
        return _answer(request, {"visitor": visitor, "visit": token, **_swaps([])})
    now = context.now_ms()
    settings = context.settings
    visit = visit_of(site, visitor, view, now=now, window_ms=settings.attribution_days * DAY_MS)
    write = PageViewWrite(_hold_ask(settings, site, visitor, address, now=now), visit)
    swaps = await desk.writes.run(write, key=(site.company_id, visitor))
    dni_counters().visits.inc()
    return _answer(request, {"visitor": visitor, "visit": token, **_swaps(swaps)})


def _admit_view(request: Request, body: JSONObject) -> tuple[PageView, Site, str, str, str]:
    """The checks before a page view is written (a limiter, a site read now and then): the
    view, its site, address and visitor, and its visit token (a person's starts with PERSON)."""
    context, desk = context_of(request), desk_of(request)
    address = _limit_address(request, desk)
    view = read_page_view(body)
    site = _site(request, desk, view.key)
    visitor = view.visitor or secrets.token_urlsafe(16)
    person = not _is_bot(request, desk, site, view.visitor, address)
    token = desk.token(context.database, site, visitor, holds=person)
    return view, site, address, visitor, token


async def heartbeat(request: Request, body: JSONObject) -> Response:
    """`POST /dni/heartbeat`: the page is still open; its holds are extended (or taken anew)."""
    context, desk = context_of(request), desk_of(request)
    beat, site, address, holds = await context.run_short(_admit_beat, request, body)
    if not holds:
        return _answer(request, _swaps([]))
    write = PageViewWrite(
        _hold_ask(context.settings, site, beat.visitor, address, now=context.now_ms())
    )
    swaps = await desk.writes.run(write, key=(site.company_id, beat.visitor))
    return _answer(request, _swaps(swaps))


def _admit_beat(request: Request, body: JSONObject) -> tuple[Heartbeat, Site, str, bool]:
    """The checks before a heartbeat extends holds: the beat, its site and address, and whether
    its visit may hold numbers (NotFound for a visit token we never gave)."""
    context, desk = context_of(request), desk_of(request)
    address = _limit_address(request, desk)
    beat = read_heartbeat(body)
    site = _site(request, desk, beat.key)
    holds = desk.token(context.database, site, beat.visitor, holds=True)
    if not hmac.compare_digest(beat.visit, holds):
        none = desk.token(context.database, site, beat.visitor, holds=False)
        if not hmac.compare_digest(beat.visit, none):
            raise NotFound("There is no such visit: stop sending heartbeats for it.")
        return beat, site, address, False
    return beat, site, address, not is_bot_agent(request.headers.get("user-agent", ""))


def preflight(request: Request) -> Response:
    """`OPTIONS`: a preflight names no site key, so any origin may ask; the POST itself is where
    a company's origins are enforced."""
    headers = {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    if origin := request.headers.get("origin"):
        headers["Access-Control-Allow-Origin"] = origin
    return Response(status_code=204, headers=headers)


def _limit_address(request: Request, desk: VisitDesk) -> str:
    address = request.client.host if request.client else ""
    decision = desk.address_limiter.hit(f"dni-address:{address}")
    if not decision.allowed:
        raise RateLimited("Too many page views from this address.", retry_after=decision.reset)
    return address


def _site(request: Request, desk: VisitDesk, key: str) -> Site:
    """The key's site, within its company's rate, asked from one of its origins."""
    site = desk.site(context_of(request).database, key)
    if site is None:
        raise Forbidden("This site key is not known here.")
    decision = desk.company_limiter.hit(f"dni-company:{site.company_id}")
    if not decision.allowed:
        raise RateLimited("Too many page views of this site.", retry_after=decision.reset)
    origin = request.headers.get("origin")
    if site.origins and origin not in site.origins:
        raise Forbidden("This site does not record visits from this origin.")
    request.state.dni_origin = origin
    return site


def _is_bot(
    request: Request, desk: VisitDesk, site: Site, visitor: str | None, address: str
) -> bool:
    if is_bot_agent(request.headers.get("user-agent", "")):
        return True
    if desk.behaviour.too_fast(company_id=site.company_id, address=address, visitor=visitor):
        logger.info("dni: page views from one address faster than a person: not recorded")
        return True
    return False


def _hold_ask(settings: Settings, site: Site, visitor: str, address: str, *, now: int) -> HoldAsk:
    return HoldAsk(
        company_id=site.company_id,
        pools=site.pools,
        visitor=visitor,
        address=address,
        now=now,
        until=now + settings.dni_hold_minutes * 60_000,
        max_holders_per_address=settings.dni_holds_per_address,
    )


def _swaps(swaps: list[Swap]) -> JSONObject:
    return {"swaps": [swap.as_json() for swap in swaps], "heartbeat_seconds": HEARTBEAT_SECONDS}


def _answer(request: Request, content: JSONObject) -> Response:
    response = json_response(request, content)
    response.headers.add_vary_header("Origin")
    if origin := getattr(request.state, "dni_origin", None):
        response.headers["Access-Control-Allow-Origin"] = origin
    return response
