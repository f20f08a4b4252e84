"""The test kit of every test folder: constants, a fake clock, PostgreSQL schemas, and a `World`
that writes accounts, companies, campaigns and calls straight into the database.

Import from here, never from `conftest`: other test folders have a conftest of their own. The
root conftest and every test folder find this module through `pythonpath` in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx
import psycopg

from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Connection, Database
from phonewagon_server.db import accounts as account_rows
from phonewagon_server.db import companies as company_rows
from phonewagon_server.db import users as user_rows
from phonewagon_server.db.calls import write_calls
from phonewagon_server.models import Call, Campaign, Company
from phonewagon_server.passwords import hash_password

POSTGRES_URL = os.environ.get(
    "PHONEWAGON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PUBLIC_URL = "https://api.phonewagon.test"
NOW_MS = 1_700_000_000_000
PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def clean_env() -> dict[str, str]:
    """This machine's environment without any `PHONEWAGON_*` variable: what a command started
    by a test sees, before the test sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PHONEWAGON_")}


def postgres_schema_url(schema: str) -> str:
    """A URL whose connections live in `schema` of the test database."""
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_schema(prefix: str = "pw_test") -> Iterator[str]:
    """A URL whose connections live in a fresh schema of the test database, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_schema_url(schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


class FakeClock:
    """Wall and monotonic time that move only when a test says so."""

    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.seconds = now_ms / 1000

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class Account:
    """An account with one credential, ready to call the API with."""

    account_id: int
    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.secret)


@dataclass
class Tenant(Account):
    """An account with a company and a campaign as well: what most tests start from."""

    company: Company
    campaign: Campaign


def few_fields(n: int) -> dict[str, Any]:
    """Call number `n` of a world, with the fields the server's tests expect filled in."""
    return {
        "duration": 42,
        "is_first_time_caller": False,
        "status": "completed",
        "direction": "inbound",
        "from_number": "+19295550100",
        "to_number": "+18445551234",
    }


def every_field(n: int) -> dict[str, Any]:
    """Call number `n` of a world with every field filled in, some varying from call to call."""
    return {
        "duration": n % 600,
        "is_first_time_caller": n % 3 == 0,
        "status": "completed",
        "direction": "inbound",
        "from_number": f"+1929555{n % 10_000:04d}",
        "to_number": "+18445551234",
        "user_source": "Google Ads",
        "gclid": f"gclid-{n}",
        "landing_page": "https://example.com/rakes?utm_source=google",
        "contact_name": "Zoë Ångström",
    }


class World:
    """Writes accounts, companies, campaigns and calls with the server's own db functions, and
    reads expectations back with plain SQL, so that no test trusts the code it checks."""

    def __init__(
        self, database: Database, *, call_fields: Callable[[int], dict[str, Any]] = few_fields
    ) -> None:
        self.database = database
        self.call_fields = call_fields
        self._sids = 0

    def account(self, name: str) -> Account:
        """An account with a credential and nothing else."""
        with self.database.transaction(write=True) as tx:
            return self._account(tx, name)

    def tenant(self, name: str = "Acme Agency") -> Tenant:
        with self.database.transaction(write=True) as tx:
            account = self._account(tx, name)
            company = company_rows.create_company(
                tx, account_id=account.account_id, name=f"{name} Co", now=NOW_MS
            )
            campaign = company_rows.create_campaign(
                tx, company=company, name="Google Ads", campaign_id=None, now=NOW_MS
            )
        return Tenant(account.account_id, account.client_id, account.secret, company, campaign)

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

    def credential(self, account: Account) -> tuple[str, str]:
        with self.database.transaction(write=True) as tx:
            return self._credential(tx, account.account_id)

    def company(self, account: Account, name: str) -> Company:
        with self.database.transaction(write=True) as tx:
            return company_rows.create_company(
                tx, account_id=account.account_id, name=name, now=NOW_MS
            )

    def campaign(self, company: Company, name: str, campaign_id: str | None = None) -> Campaign:
        with self.database.transaction(write=True) as tx:
            return company_rows.create_campaign(
                tx, company=company, name=name, campaign_id=campaign_id, now=NOW_MS
            )

    def calls(
        self,
        account: Account,
        start_times: Sequence[int],
        campaign: Campaign | None = None,
        **fields: Any,
    ) -> list[str]:
        """Insert one call per start time, in the tenant's own campaign unless told; their sids."""
        if campaign is None:
            assert isinstance(account, Tenant), "an account without a campaign needs one named"
            campaign = account.campaign
        records = []
        for start_time in start_times:
            self._sids += 1
            sid = f"CA{self._sids:032x}"
            values = {"sid": sid, "campaign_id": campaign.id, "start_time": start_time}
            records.append(Call(**(values | self.call_fields(self._sids) | fields)))
        for chunk in range(0, len(records), 1000):
            with self.database.transaction(write=True, changing=account.account_id) as tx:
                write_calls(tx, records[chunk : chunk + 1000], {campaign.id: campaign})
        return [record.sid for record in records]

    def user(self, account: Account, email: str, password: str = PASSWORD) -> str:
        """A person of the account who signs in to the web app with `password`; their email."""
        with self.database.transaction(write=True) as tx:
            user_rows.create_user(
                tx,
                account_id=account.account_id,
                email=email,
                password_hash=hash_password(password),
                now=NOW_MS,
            )
        return email

    def call_ids(self, account: Account, where: str = "", params: Sequence[Any] = ()) -> list[int]:
        """Ids of the account's calls matching an SQL condition, newest first, read directly."""
        condition = f" AND {where}" if where else ""
        with self.database.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT id FROM calls WHERE account_id = ?{condition}"
                " ORDER BY start_time DESC, id DESC",
                (account.account_id, *params),
            )
        return [int(row[0]) for row in rows]

    def _account(self, tx: Connection, name: str) -> Account:
        account = account_rows.create_account(tx, name, now=NOW_MS)
        return Account(account.id, *self._credential(tx, account.id))

    @staticmethod
    def _credential(tx: Connection, account_id: int) -> tuple[str, str]:
        credential, secret = account_rows.issue_credential(tx, account_id, now=NOW_MS)
        return credential.client_id, secret


class Browser(Protocol):
    """What `sign_in` needs of an HTTP client that keeps cookies: httpx's, or a TestClient."""

    def get(self, url: str, **kwargs: Any) -> httpx.Response: ...

    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...


def csrf_token(page: httpx.Response) -> str:
    """The CSRF token of the (first) form of a web app page."""
    found = CSRF_FIELD.search(page.text)
    assert found, page.text[:500]
    return found[1]


def sign_in(browser: Browser, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in as a browser does: the form first, then post it with its token."""
    form = browser.get("/app/login")
    fields = {"csrf_token": csrf_token(form), "email": email, "password": password}
    return browser.post("/app/login", data=fields, follow_redirects=False)


def with_rate(settings: Settings, text: str) -> Settings:
    return replace(settings, rate_limit=Rate.parse(text))
