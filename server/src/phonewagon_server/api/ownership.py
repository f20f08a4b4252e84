"""404 unless the account owns what a request names: the same answer as for what does not exist,
so no account can learn another's ids."""

from __future__ import annotations

from phonewagon_server.db import Connection
from phonewagon_server.db.companies import get_campaign, get_company
from phonewagon_server.errors import NotFound


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
