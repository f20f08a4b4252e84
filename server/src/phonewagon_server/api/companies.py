"""`GET /companies` and `GET /campaigns`: a few rows each, short enough for `run_short`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.ownership import require_company
from phonewagon_server.api.params import COMPANY_ID, parse_params
from phonewagon_server.api.responses import json_response
from phonewagon_server.db.companies import list_campaigns, list_companies


def get_companies(request: Request, account_id: int) -> Response:
    parse_params(request, {})
    with context_of(request).database.transaction() as tx:
        found = list_companies(tx, account_id)
    return json_response(request, {"companies": [{"id": c.id, "name": c.name} for c in found]})


def get_campaigns(request: Request, account_id: int) -> Response:
    params = parse_params(request, {"company_id": COMPANY_ID})
    company_id = params.get("company_id")
    with context_of(request).database.transaction() as tx:
        if company_id is not None:
            require_company(tx, account_id, company_id)
        found = list_campaigns(tx, account_id, company_id=company_id)
    return json_response(request, {"campaigns": [{"id": c.id, "name": c.name} for c in found]})
