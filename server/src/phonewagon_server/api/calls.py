"""`GET /calls`: newest-first pages with a `next` link that resumes exactly where a page ended;
with `updated_since`, the change feed: oldest change first, skipping none (decision 12)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.ownership import require_campaign, require_company
from phonewagon_server.api.params import COMPANY_ID, integer_parser, parse_params, text_parser
from phonewagon_server.api.responses import rendered_json_response
from phonewagon_server.db.calls import change_horizon, read_changes, read_page
from phonewagon_server.db.engine import Connection
from phonewagon_server.documents import render_page
from phonewagon_server.errors import InvalidParameters, ParameterError
from phonewagon_server.models import MAX_EPOCH_MS, MAX_ID, MAX_PAGE_SIZE, CallQuery, ChangeQuery

EPOCH_MS = integer_parser(minimum=0, maximum=MAX_EPOCH_MS, unit="epoch milliseconds")
PARAMETERS = {
    "company_id": COMPANY_ID,
    "campaign_id": text_parser(max_length=200),
    "start_time": EPOCH_MS,
    "end_time": EPOCH_MS,
    "page_size": integer_parser(minimum=1, maximum=MAX_PAGE_SIZE, clamp=True),
    "before_id": integer_parser(minimum=0, maximum=MAX_ID),
    "updated_since": EPOCH_MS,
    "after_id": integer_parser(minimum=0, maximum=MAX_ID),
}


def get_calls(request: Request, account_id: int) -> Response:
    context = context_of(request)
    params = parse_params(request, PARAMETERS)
    if "updated_since" in params:
        return _changes(request, _change_query(account_id, params))
    query = _call_query(account_id, params, now_ms=context.now_ms())
    with context.database.transaction() as tx:
        _require_filters(tx, account_id, query.company_id, query.campaign_id)
        page = read_page(tx, query)
    link = None
    if page.resume_after is not None:
        link = next_link(context.settings.public_url, query, last=page.resume_after)
    return rendered_json_response(request, render_page(page.documents, link))


def _changes(request: Request, query: ChangeQuery) -> Response:
    context = context_of(request)
    with context.database.transaction() as tx:
        horizon = change_horizon(tx, query.account_id)  # first: see its docstring
        _require_filters(tx, query.account_id, query.company_id, query.campaign_id)
        page = read_changes(tx, query, horizon=horizon)
    link = None
    if page.resume_after is not None:
        link = next_change_link(context.settings.public_url, query, last=page.resume_after)
    return rendered_json_response(request, render_page(page.documents, link))


def _require_filters(
    tx: Connection, account_id: int, company_id: int | None, campaign_id: str | None
) -> None:
    if company_id is not None:
        require_company(tx, account_id, company_id)
    if campaign_id is not None:
        require_campaign(tx, account_id, campaign_id)


def _change_query(account_id: int, params: dict[str, Any]) -> ChangeQuery:
    if "before_id" in params:
        detail = "belongs to newest-first pages; the change feed resumes with after_id"
        raise InvalidParameters([ParameterError("before_id", detail)])
    start_time, end_time = params.get("start_time"), params.get("end_time")
    if start_time is not None and end_time is not None and start_time > end_time:
        raise InvalidParameters([ParameterError("start_time", "must not be after end_time")])
    return ChangeQuery(
        account_id=account_id,
        updated_since=params["updated_since"],
        after_id=params.get("after_id"),
        company_id=params.get("company_id"),
        campaign_id=params.get("campaign_id"),
        start_time=start_time,
        end_time=end_time,
        page_size=params.get("page_size", MAX_PAGE_SIZE),
    )


def _call_query(account_id: int, params: dict[str, Any], *, now_ms: int) -> CallQuery:
    if "after_id" in params:
        detail = "belongs to the change feed: give updated_since with it"
        raise InvalidParameters([ParameterError("after_id", detail)])
    start_time = params.get("start_time", 0)
    end_time = params.get("end_time", now_ms)
    if start_time > end_time:
        bound = "end_time" if "end_time" in params else f"end_time (default: now, {now_ms})"
        raise InvalidParameters([ParameterError("start_time", f"must not be after {bound}")])
    return CallQuery(
        account_id=account_id,
        company_id=params.get("company_id"),
        campaign_id=params.get("campaign_id"),
        start_time=start_time,
        end_time=end_time,
        before_id=params.get("before_id"),
        page_size=params.get("page_size", MAX_PAGE_SIZE),
    )


def next_link(public_url: str, query: CallQuery, *, last: tuple[int, int]) -> str:
    """The same query, resumed after `last`, a call's (start_time, id): calls at its millisecond
    with a smaller id, then older.

    `end_time` moves to the last call's time, so a client that ignores `before_id` and pages by
    `end_time` itself still gets a valid (if overlapping) next page.
    """
    start_time, call_id = last[0], last[1]
    params: list[tuple[str, object]] = []
    if query.company_id is not None:
        params.append(("company_id", query.company_id))
    if query.campaign_id is not None:
        params.append(("campaign_id", query.campaign_id))
    params += [
        ("page_size", query.page_size),
        ("start_time", query.start_time),
        ("end_time", start_time),
        ("before_id", call_id),
    ]
    return f"{public_url}/calls?{urlencode(params)}"


def next_change_link(public_url: str, query: ChangeQuery, *, last: tuple[int, int]) -> str:
    """The same feed query, resumed after `last`, a call's (updated_at, id): the changes at its
    millisecond with a larger id, then later ones."""
    params: list[tuple[str, object]] = [
        (name, value)
        for name, value in (
            ("company_id", query.company_id),
            ("campaign_id", query.campaign_id),
            ("start_time", query.start_time),
            ("end_time", query.end_time),
        )
        if value is not None
    ]
    params += [("page_size", query.page_size), ("updated_since", last[0]), ("after_id", last[1])]
    return f"{public_url}/calls?{urlencode(params)}"
