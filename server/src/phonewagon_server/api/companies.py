"""`GET /companies` and `GET /campaigns`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.auth import authorize
from phonewagon_server.api.context import context_of
from phonewagon_server.api.params import integer_parser, parse_params
from phonewagon_server.api.responses import json_response
from phonewagon_server.db import Connection
from phonewagon_server.db.companies import (
    get_campaign,
    get_company,
    list_campaigns,
    list_companies,
)
from phonewagon_server.errors import NotFound
from phonewagon_server.models import MAX_ID

COMPANY_ID = integer_parser(minimum=0, maximum=MAX_ID)


def companies(request: Request) -> Response:
    account_id = authorize(request)
    parse_params(request, {})
    with context_of(request).database.transaction() as tx:
        found = list_companies(tx, account_id)
    return json_response(request, {"companies": [{"id": c.id, "name": c.name} for c in found]})


def campaigns(request: Request) -> Response:
    account_id = authorize(request)
    params = parse_params(request, {"company_id": COMPANY_ID})
    company_id = params.get("company_id")
    with context_of(request).database.transaction() as tx:
        if company_id is not None:
            require_company(tx, account_id, company_id)
        found = list_campaigns(tx, account_id, company_id=company_id)
    return json_response(request, {"campaigns": [{"id": c.id, "name": c.name} for c in found]})


def require_company(tx: Connection, account_id: int, company_id: int) -> None:
    """404 unless the account owns the company: the same answer as for one that does not exist."""
    company = get_company(tx, company_id)
    if company is None or company.account_id != account_id:
        raise NotFound("This account has no company with that company_id.")


def require_campaign(tx: Connection, account_id: int, campaign_id: str) -> None:
    """404 unless the account owns the campaign, as `require_company` does for companies."""
    campaign = get_campaign(tx, campaign_id)
    if campaign is None or campaign.account_id != account_id:
        raise NotFound("This account has no campaign with that campaign_id.")
