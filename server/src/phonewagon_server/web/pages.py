"""The Calls and Tracking pages, the redirects into the app, and its static files."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.ownership import require_campaign, require_company
from phonewagon_server.api.recordings import recording_file
from phonewagon_server.db import Connection
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import pools as pool_rows
from phonewagon_server.db.call_browsing import (
    DAY_MS,
    DailySources,
    browse_query,
    count_calls_by_day_and_source,
    distinct_sources,
    read_browse_page,
)
from phonewagon_server.db.numbers import TrackingNumber, list_numbers
from phonewagon_server.dni.snippet import snippet
from phonewagon_server.models import MAX_EPOCH_MS, Company
from phonewagon_server.web.chart import build_chart
from phonewagon_server.web.context import web_context
from phonewagon_server.web.render import render as render_page
from phonewagon_server.web.render import see_other
from phonewagon_server.web.sessions import SignedIn

PAGE_SIZE = 50
CHART_DAYS = 30
CHART_SECONDS = 60.0  # how long a chart is reused before it is counted again
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURSOR = re.compile(r"^(\d{1,15})\.(\d{1,18})$")


def to_app(request: Request) -> Response:
    """`/` and `/app/`: a browser goes to the web app's first page (or to sign in)."""
    return see_other("/app/calls")


def to_settings(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    return see_other("/app/settings/credentials")


def static_file(request: Request) -> Response:
    found = web_context(request).static.get(request.path_params["name"])
    if found is None:
        raise HTTPException(404)
    content, media_type = found
    return Response(content, media_type=media_type)


def calls_page(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    context = context_of(request)
    filters = _filters(request)
    now = context.now_ms()
    company_id = _company_id(filters.get("company"))
    campaign_id = filters.get("campaign") or None
    start_time = _day_start(filters.get("from"), "from") or 0
    end_time = _day_end(filters.get("to")) or now
    with context.database.transaction() as tx:
        if company_id is not None:
            require_company(tx, person.account_id, company_id)
        if campaign_id is not None:
            require_campaign(tx, person.account_id, campaign_id)
        companies = company_rows.list_companies(tx, person.account_id)
        campaigns = company_rows.list_campaigns(tx, person.account_id)
        query = browse_query(
            person.account_id,
            start_time=start_time,
            end_time=end_time,
            page_size=PAGE_SIZE,
            company_id=company_id,
            campaign_id=campaign_id,
            before=_cursor(filters.get("before")),
        )
        page = read_browse_page(tx, query, source=filters.get("source") or None)
    daily = _daily_sources(request, person.account_id, now)
    company_names = {company.id: company.name for company in companies}
    kept = {k: v for k, v in filters.items() if k != "before" and v}
    older = None
    if page.resume_after is not None:
        cursor = f"{page.resume_after[0]}.{page.resume_after[1]}"
        older = "/app/calls?" + urlencode({**kept, "before": cursor})
    sources = distinct_sources(daily)
    if filters.get("source") and filters["source"] not in sources:
        sources.append(filters["source"])
    public_url = context.settings.public_url
    return render_page(
        request,
        "calls.html",
        person=person,
        section="calls",
        calls=[_shown(call, company_names, public_url) for call in page.calls],
        companies=companies,
        campaigns=campaigns,
        sources=sources,
        filters=filters,
        filtered=bool(kept),
        paged="before" in filters,
        older=older,
        newest="/app/calls?" + urlencode(kept) if kept else "/app/calls",
        scanned_out=page.scanned_out,
        chart=build_chart(daily),
        chart_days=CHART_DAYS,
    )


def _filters(request: Request) -> dict[str, str]:
    """The page's filters as the form sent them (unknown ones ignored), each bounded."""
    filters = {}
    for name in ("company", "campaign", "source", "from", "to", "before"):
        value = request.query_params.get(name, "").strip()
        if len(value) > 200:
            raise HTTPException(400, f"The {name} filter is too long.")
        if value:
            filters[name] = value
    return filters


def _company_id(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise HTTPException(404, "This account has no such company.")
    return int(text)


def _day_start(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not _DATE.match(text):
        raise HTTPException(400, f"Give the {name} date as YYYY-MM-DD.")
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise HTTPException(400, f"{text} is not a date.") from exc
    return min(int(day.timestamp() * 1000), MAX_EPOCH_MS)


def _day_end(text: str | None) -> int | None:
    start = _day_start(text, "to")
    return None if start is None else min(start + DAY_MS - 1, MAX_EPOCH_MS)


def _cursor(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    match = _CURSOR.match(text)
    if match is None:
        raise HTTPException(400, "This page link is damaged: start again from the newest calls.")
    return int(match[1]), int(match[2])


def _daily_sources(request: Request, account_id: int, now_ms: int) -> DailySources:
    """The chart's counts, counted at most once a minute per account and process."""
    charts = web_context(request).charts
    cached = charts.get(account_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    with context_of(request).database.transaction() as tx:
        daily = count_calls_by_day_and_source(tx, account_id, days=CHART_DAYS, now_ms=now_ms)
    if len(charts) > 10_000:
        charts.clear()
    charts[account_id] = (time.monotonic() + CHART_SECONDS, daily)
    return daily


def _shown(call: dict[str, Any], companies: dict[int, str], public_url: str) -> dict[str, Any]:
    recording = call.get("recording_url", "")
    ours = recording.startswith(public_url + "/call-recordings/")
    return call | {
        "company_name": companies.get(call["company_id"], ""),
        # Played through the app, signed in: the API's own URL asks for Basic credentials.
        "recording_path": f"/app/calls/{quote(call['sid'], safe='')}/recording" if ours else "",
    }


def recording(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    """A call's recording for the page's player; 404 for another account's call."""
    return recording_file(request, person.account_id, request.path_params["sid"])


def tracking_page(request: Request, person: SignedIn, form: dict[str, str]) -> Response:
    context = context_of(request)
    with context.database.transaction() as tx:
        numbers = list_numbers(tx, person.account_id)
        companies = company_rows.list_companies(tx, person.account_id)
        campaigns = {c.id: c.name for c in company_rows.list_campaigns(tx, person.account_id)}
        sites = [
            _website(tx, company, campaigns, numbers, context.settings.public_url)
            for company in companies
        ]
    return render_page(
        request,
        "tracking.html",
        person=person,
        section="tracking",
        numbers=numbers,
        companies={c.id: c.name for c in companies},
        campaigns=campaigns,
        websites=[site for site in sites if site is not None],
    )


def _website(
    tx: Connection,
    company: Company,
    campaigns: dict[str, str],
    numbers: list[TrackingNumber],
    public_url: str,
) -> dict[str, Any] | None:
    """A company's pools and the snippet for its site; None for a company without pools."""
    pools = pool_rows.list_pools(tx, company.id)
    site = pool_rows.site_of_company(tx, company.id)
    if not pools or site is None:
        return None
    return {
        "company": company,
        "snippet": snippet(public_url, site.key),
        "origins": site.origins,
        "pools": [
            {
                "name": campaigns.get(pool.campaign_id, pool.campaign_id),
                "campaign_id": pool.campaign_id,
                "swap_target": pool.swap_target,
                "numbers": [n.number for n in numbers if n.campaign_id == pool.campaign_id],
            }
            for pool in pools
        ],
    }
