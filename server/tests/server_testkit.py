"""What server tests share besides fixtures: constants, a fake clock, and a `World` that writes
accounts, companies, campaigns and calls straight into the database.

Import from here, never from `conftest`: other test folders have a conftest of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Connection, Database
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db.calls import upsert_calls
from phonewagon_server.imports import validate_record
from phonewagon_server.models import Campaign, Company

POSTGRES_URL = os.environ.get(
    "PHONEWAGON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PUBLIC_URL = "https://api.phonewagon.test"
NOW_MS = 1_700_000_000_000


def postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


class FakeClock:
    """Wall and monotonic time that move only when a test says so."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.seconds = now_ms / 1000

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class Tenant:
    """An account with one credential, a company and a campaign, ready to call the API with."""

    account_id: int
    client_id: str
    secret: str
    company: Company
    campaign: Campaign
    next_sid: int = field(default=0)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


class World:
    """Builds accounts, companies, campaigns and calls straight into the database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._sids = 0

    def tenant(self, name: str = "Acme Agency") -> Tenant:
        with self.database.transaction(write=True) as tx:
            account = account_rows.create_account(tx, name, now=NOW_MS)
            client_id, secret = self._credential(tx, account.id)
            company = company_rows.create_company(
                tx, account_id=account.id, name=f"{name} Co", now=NOW_MS
            )
            campaign = company_rows.create_campaign(
                tx, company=company, name="Google Ads", campaign_id=None, now=NOW_MS
            )
        return Tenant(account.id, client_id, secret, company, campaign)

    def spread_tenant(self, name: str) -> tuple[Tenant, list[Company], list[Campaign]]:
        """A tenant with two companies of two campaigns each."""
        tenant = self.tenant(name)
        second = self.company(tenant, "Second Co")
        campaigns = [
            tenant.campaign,
            self.campaign(tenant.company, "Bing Ads"),
            self.campaign(second, "Yelp"),
            self.campaign(second, "Direct"),
        ]
        return tenant, [tenant.company, second], campaigns

    def credential(self, tenant: Tenant) -> tuple[str, str]:
        with self.database.transaction(write=True) as tx:
            return self._credential(tx, tenant.account_id)

    def company(self, tenant: Tenant, name: str) -> Company:
        with self.database.transaction(write=True) as tx:
            return company_rows.create_company(
                tx, account_id=tenant.account_id, name=name, now=NOW_MS
            )

    def campaign(self, company: Company, name: str, campaign_id: str | None = None) -> Campaign:
        with self.database.transaction(write=True) as tx:
            return company_rows.create_campaign(
                tx, company=company, name=name, campaign_id=campaign_id, now=NOW_MS
            )

    def calls(
        self,
        tenant: Tenant,
        start_times: list[int],
        campaign: Campaign | None = None,
        **fields: Any,
    ) -> list[str]:
        """Insert one call per start time; return their sids."""
        campaign = campaign or tenant.campaign
        rows, sids = [], []
        for start_time in start_times:
            self._sids += 1
            sid = f"CA{self._sids:032x}"
            values: dict[str, Any] = {
                "sid": sid,
                "campaign_id": campaign.id,
                "start_time": start_time,
                "duration": 42,
                "is_first_time_caller": False,
                "status": "completed",
                "direction": "inbound",
                "from_number": "+19295550100",
                "to_number": "+18445551234",
            }
            values |= fields
            rows.append(validate_record(values, {campaign.id: campaign}))  # as an import would
            sids.append(sid)
        for chunk in range(0, len(rows), 1000):
            with self.database.transaction(write=True) as tx:
                upsert_calls(tx, tenant.account_id, rows[chunk : chunk + 1000])
        return sids

    @staticmethod
    def _credential(tx: Connection, account_id: int) -> tuple[str, str]:
        credential, secret = account_rows.issue_credential(tx, account_id, now=NOW_MS)
        return credential.client_id, secret


def with_rate(settings: Settings, text: str) -> Settings:
    return replace(settings, rate_limit=Rate.parse(text))
