"""The real server on a real port in this process, and the data behind it.

`LiveServer` runs `create_app(settings, database)` under uvicorn; `Accounts` writes accounts,
companies, campaigns and calls with the server's own database functions and reads expectations
back with plain SQL, so no test trusts the code it checks.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

from phonewagon_server.api import create_app
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db.calls import upsert_calls
from phonewagon_server.imports import validate_record
from phonewagon_server.models import Campaign, Company

NOW_MS = 1_700_000_000_000
ROOMY = Rate(limit=100_000, window=60)  # pages as fast as it likes: pacing is tested end to end


class LiveServer:
    """`create_app(settings, database)` under uvicorn on a free loopback port, in a thread."""

    def __init__(self, database: Database, *, rate_limit: Rate = ROOMY) -> None:
        # Bind first and hand uvicorn the socket: the port is ours, with no race to claim it.
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        settings = Settings(database_url=database.url, public_url=self.url, rate_limit=rate_limit)
        config = uvicorn.Config(
            create_app(settings, database),
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            ws="none",  # no websockets import, and none of its deprecation warnings
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@dataclass(frozen=True)
class Tenant:
    """An account with one credential, ready to call the API with."""

    account_id: int
    client_id: str
    secret: str


class Accounts:
    """Writes accounts, companies, campaigns and calls with the server's own db functions."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._sids = 0

    def tenant(self, name: str) -> Tenant:
        with self.database.transaction(write=True) as tx:
            account = account_rows.create_account(tx, name, now=NOW_MS)
            credential, secret = account_rows.issue_credential(tx, account.id, now=NOW_MS)
        return Tenant(account.id, credential.client_id, secret)

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
        self, tenant: Tenant, campaign: Campaign, start_times: Sequence[int], **fields: Any
    ) -> list[str]:
        """One call per start time, every field filled in; their sids."""
        rows, sids = [], []
        for start_time in start_times:
            self._sids += 1
            sid = f"CA{self._sids:032x}"
            values: dict[str, Any] = {
                "sid": sid,
                "campaign_id": campaign.id,
                "start_time": start_time,
                "duration": self._sids % 600,
                "is_first_time_caller": self._sids % 3 == 0,
                "status": "completed",
                "direction": "inbound",
                "from_number": f"+1929555{self._sids % 10_000:04d}",
                "to_number": "+18445551234",
                "user_source": "Google Ads",
                "gclid": f"gclid-{self._sids}",
                "landing_page": "https://example.com/rakes?utm_source=google",
                "contact_name": "Zoë Ångström",
            }
            values |= fields
            rows.append(validate_record(values, {campaign.id: campaign}))  # as an import would
            sids.append(sid)
        for chunk in range(0, len(rows), 1000):
            with self.database.transaction(write=True) as tx:
                upsert_calls(tx, tenant.account_id, rows[chunk : chunk + 1000])
        return sids

    def call_ids(self, tenant: Tenant, where: str = "", params: Sequence[Any] = ()) -> list[int]:
        """Ids of the account's calls matching an SQL condition, newest first, read directly."""
        condition = f" AND {where}" if where else ""
        with self.database.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT id FROM calls WHERE account_id = ?{condition}"
                " ORDER BY start_time DESC, id DESC",
                (tenant.account_id, *params),
            )
        return [int(row[0]) for row in rows]
