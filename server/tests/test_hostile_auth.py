"""1,000 wrong secrets against one account: the attacker is throttled, the owner keeps its quota.

The clock never moves during these tests, so nothing in the attacker's rolling window expires
before the owner asks: every admission the owner gets is one the attack could have spent.
"""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from server_testkit import FakeClock, Tenant, World

ATTEMPTS = 1_000
QUOTA = 50  # the default rate limit: 50 in any rolling 60 s
ADDRESS_FAILURES = 20  # the default failed-authentication limit per address


def wrong_secrets(tenant: Tenant, other: Tenant) -> Iterator[dict[str, str]]:
    """Authorization headers that name the tenant's client id with every kind of wrong secret."""
    secret = tenant.secret
    variants = [
        "wrong",
        "",
        secret[:-1],
        secret + "x",
        secret.upper(),
        secret.swapcase(),
        other.secret,
        " " + secret,
        secret[: len(secret) // 2],
        "pwsk_" + "A" * 43,
    ]
    for n in itertools.count():
        # Later rounds are marked with `~`, which no secret holds (`secret[:-1]` and a digit
        # might be the secret itself).
        round_, variant = divmod(n, len(variants))
        wrong = variants[variant] + (f"~{round_}" if round_ else "")
        assert wrong != secret
        token = f"{tenant.client_id}:{wrong}"
        yield {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}


def owner_admissions(api: TestClient, tenant: Tenant, requests: int) -> Counter[int]:
    return Counter(api.get("/companies", auth=tenant.auth).status_code for _ in range(requests))


@pytest.fixture
def victim(world: World) -> tuple[Tenant, Tenant]:
    return world.tenant("Victim Agency"), world.tenant("Other Agency")


def test_a_thousand_wrong_secrets_leave_the_owner_its_full_quota(
    api: TestClient, victim: tuple[Tenant, Tenant]
) -> None:
    tenant, other = victim
    attack = wrong_secrets(tenant, other)
    statuses = Counter(
        api.get("/companies", headers=next(attack)).status_code for _ in range(ATTEMPTS)
    )
    assert statuses == {401: ADDRESS_FAILURES, 429: ATTEMPTS - ADDRESS_FAILURES}

    first = api.get("/companies", auth=tenant.auth)  # from the attacking address itself
    assert first.status_code == 200
    assert first.headers["ratelimit"] == f'"default";r={QUOTA - 1};t=60'
    rest = owner_admissions(api, tenant, QUOTA)
    assert rest == {200: QUOTA - 1, 429: 1}


def test_the_attacker_is_still_throttled_after_the_owner_used_its_quota(
    api: TestClient, victim: tuple[Tenant, Tenant], clock: FakeClock
) -> None:
    tenant, other = victim
    attack = wrong_secrets(tenant, other)
    for _ in range(ATTEMPTS):
        api.get("/companies", headers=next(attack))
    assert owner_admissions(api, tenant, QUOTA) == {200: QUOTA}
    refused = api.get("/companies", headers=next(attack))
    assert refused.status_code == 429
    assert "ratelimit" not in refused.headers  # the answer says nothing about the account
    clock.advance(60)
    assert api.get("/companies", headers=next(attack)).status_code == 401
    assert owner_admissions(api, tenant, QUOTA + 1) == {200: QUOTA, 429: 1}


def test_wrong_secrets_spread_over_many_addresses_spend_nothing_of_the_account(
    database: Database, settings: Settings, clock: FakeClock, victim: tuple[Tenant, Tenant]
) -> None:
    """An attacker under the per-address limit everywhere is never throttled, and still costs
    the owner nothing."""
    tenant, other = victim
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    attack = wrong_secrets(tenant, other)
    addresses = ATTEMPTS // ADDRESS_FAILURES
    statuses: Counter[int] = Counter()
    for n in range(addresses):
        with TestClient(app, client=(f"198.51.100.{n + 1}", 40000)) as attacker:
            for _ in range(ADDRESS_FAILURES):
                statuses[attacker.get("/companies", headers=next(attack)).status_code] += 1
    assert statuses == {401: ATTEMPTS}
    with TestClient(app, client=("203.0.113.7", 50000)) as owner:
        assert owner_admissions(owner, tenant, QUOTA + 1) == {200: QUOTA, 429: 1}


def test_unknown_ids_and_malformed_headers_spend_nothing_of_any_account(
    api: TestClient, victim: tuple[Tenant, Tenant]
) -> None:
    tenant, _ = victim
    garbage = [
        {"Authorization": "Basic " + base64.b64encode(b"pwid_nosuch:" + bytes([n % 256])).decode()}
        for n in range(ATTEMPTS // 2)
    ] + [{"Authorization": f"Basic {'!' * (n % 40)}"} for n in range(ATTEMPTS // 2)]
    statuses = Counter(api.get("/calls", headers=headers).status_code for headers in garbage)
    assert statuses == {401: ADDRESS_FAILURES, 429: ATTEMPTS - ADDRESS_FAILURES}
    assert owner_admissions(api, tenant, QUOTA + 1) == {200: QUOTA, 429: 1}
