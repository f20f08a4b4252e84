"""What the live-call tests share: a deployment with a Twilio account and a tracking number, an
app whose background work the test runs step by step, and a signed sender of webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.twilio.simulator import TwilioSender
from phonewagon_server.twilio.workers import LiveWorkers
from server_testkit import NOW_MS, PUBLIC_URL, Tenant, World

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "f" * 32
OLD_TOKEN = "0123456789abcdef" * 2
TRACKING = "+18445550102"
BUSINESS = "+15035550100"


def live_settings(recordings: Path, *, api_base: str = "https://api.twilio.com") -> Settings:
    return Settings(
        public_url=PUBLIC_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_tokens=(AUTH_TOKEN, OLD_TOKEN),
        twilio_api_base=api_base,
        recordings_dir=recordings,
    )


def add_number(
    database: Database,
    tenant: Tenant,
    number: str = TRACKING,
    *,
    source: str = "",
    forward_to: str = BUSINESS,
) -> TrackingNumber:
    """`number` in the tenant's campaign, forwarding to `forward_to`."""
    tracking = TrackingNumber(
        number=number,
        account_id=tenant.account_id,
        company_id=tenant.company.id,
        campaign_id=tenant.campaign.id,
        forward_to=forward_to,
        source=source,
    )
    with database.transaction(write=True) as tx:
        assert number_rows.add_number(tx, tracking, now=NOW_MS)
    return tracking


@dataclass
class Live:
    """One deployment: its database, a tenant with a number, the app and its workers."""

    database: Database
    tenant: Tenant
    number: TrackingNumber
    client: TestClient
    twilio: TwilioSender
    workers: LiveWorkers

    def calls(self) -> list[dict[str, Any]]:
        response = self.client.get("/calls", auth=self.tenant.auth)
        assert response.status_code == 200, response.text
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def queued(self) -> int:
        with self.workers.queue.storage.transaction() as tx:
            row = tx.fetchone("SELECT COUNT(*) FROM jobs")
        assert row is not None
        return int(row[0])


def live_deployment(database: Database, settings: Settings) -> Iterator[Live]:
    tenant = World(database).tenant()
    number = add_number(database, tenant)
    app = create_app(settings, database, background=False)
    with TestClient(app, base_url=PUBLIC_URL) as client:
        sender = TwilioSender(PUBLIC_URL, auth_token=AUTH_TOKEN, client=client)
        yield Live(database, tenant, number, client, sender, app.state.live_workers)


def without(params: tuple[tuple[str, str], ...], name: str) -> tuple[tuple[str, str], ...]:
    return tuple(pair for pair in params if pair[0] != name)


def replaced(
    params: tuple[tuple[str, str], ...], name: str, value: str
) -> tuple[tuple[str, str], ...]:
    return (*without(params, name), (name, value))
