"""What the website-visit tests share: a company with a pool of numbers and a site key, an app
on a fake clock seen from a given client address, and page views posted as the script posts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.testclient import TestClient

from live_kit import add_number
from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.db import pools as pool_rows
from server_testkit import NOW_MS, FakeClock, Tenant

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0 Safari/537.36"
)
TARGET = "+15035550100"
POOL = ("+18445550111", "+18445550112", "+18445550113")
KEY = "pwk_" + "k" * 24
PAGE = "https://www.acme-plumbing.example/"


@dataclass(frozen=True)
class Site:
    tenant: Tenant
    key: str
    numbers: tuple[str, ...]


def make_pool(
    database: Database,
    tenant: Tenant,
    numbers: Sequence[str] = POOL,
    *,
    key: str = KEY,
    origins: tuple[str, ...] = (),
) -> Site:
    """The tenant's campaign made a pool swapping TARGET, with `numbers`, and the site's key."""
    with database.transaction(write=True) as tx:
        pool_rows.set_swap_target(tx, tenant.campaign.id, TARGET)
    for number in numbers:
        add_number(database, tenant, number, forward_to=TARGET)
    with database.transaction(write=True) as tx:
        pool_rows.add_site(tx, tenant.company.id, key, now=NOW_MS)
        pool_rows.set_origins(tx, tenant.company.id, origins)
    return Site(tenant, key, tuple(numbers))


def visitor_id(n: int) -> str:
    return f"visitor-{n:015d}"


def app_client(
    database: Database, settings: Settings, clock: FakeClock, *, address: str = "203.0.113.7"
) -> TestClient:
    """The app seen from `address` (no lifespan: no background work)."""
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    return TestClient(app, client=(address, 50000))


def page_view(
    client: TestClient | httpx.Client,
    key: str = KEY,
    *,
    visitor: str | None = None,
    page: str = PAGE,
    referrer: str = "",
    user_agent: str = BROWSER,
    origin: str | None = "https://www.acme-plumbing.example",
    **extra: Any,
) -> httpx.Response:
    """POST /dni/visits as the script sends it: JSON as text/plain."""
    body: dict[str, Any] = {"key": key, "visitor": visitor, "page": page, "referrer": referrer}
    return post(client, "/dni/visits", body | extra, user_agent=user_agent, origin=origin)


def post(
    client: TestClient | httpx.Client,
    path: str,
    body: object,
    *,
    user_agent: str = BROWSER,
    origin: str | None = "https://www.acme-plumbing.example",
) -> httpx.Response:
    headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": user_agent}
    if origin is not None:
        headers["Origin"] = origin
    return client.post(path, content=orjson.dumps(body), headers=headers)


def swapped(response: httpx.Response) -> list[str]:
    """The pool numbers a page view was given."""
    assert response.status_code == 200, response.text
    return [swap["number"] for swap in response.json()["swaps"]]


def count(database: Database, table: str) -> int:
    with database.transaction() as tx:
        row = tx.fetchone(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])
