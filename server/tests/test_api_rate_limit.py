"""50 requests per rolling minute per account, announced in headers, refused with a true
Retry-After."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from server_testkit import FakeClock, Tenant, World, with_rate


def test_fifty_requests_are_admitted_and_the_fifty_first_is_refused(
    api: TestClient, tenant: Tenant
) -> None:
    answers = [api.get("/companies", auth=tenant.auth) for _ in range(51)]
    assert [a.status_code for a in answers] == [200] * 50 + [429]
    assert [a.headers["ratelimit"] for a in answers[:3]] == [
        '"default";r=49;t=60',
        '"default";r=48;t=60',
        '"default";r=47;t=60',
    ]
    refused = answers[-1]
    assert refused.headers["ratelimit-policy"] == '"default";q=50;w=60'
    assert refused.headers["ratelimit"] == '"default";r=0;t=60'
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429


@pytest.mark.parametrize("path", ["/companies", "/campaigns", "/calls", "/calls?page_size=abc"])
def test_every_authenticated_answer_carries_rate_limit_headers(
    api: TestClient, tenant: Tenant, path: str
) -> None:
    response = api.get(path, auth=tenant.auth)
    assert response.headers["ratelimit-policy"] == '"default";q=50;w=60'
    assert response.headers["ratelimit"].startswith('"default";r=49;t=')


def test_retry_after_is_truthful(api: TestClient, tenant: Tenant, clock: FakeClock) -> None:
    api.get("/companies", auth=tenant.auth)
    clock.advance(20.5)
    for _ in range(49):
        api.get("/companies", auth=tenant.auth)
    refused = api.get("/companies", auth=tenant.auth)
    retry_after = int(refused.headers["retry-after"])
    assert retry_after == 40  # the first request leaves the window 39.5 s from now
    clock.advance(retry_after - 1)
    assert api.get("/companies", auth=tenant.auth).status_code == 429
    clock.advance(1)
    assert api.get("/companies", auth=tenant.auth).status_code == 200


def test_the_window_rolls_rather_than_resetting_each_minute(
    api: TestClient, tenant: Tenant, clock: FakeClock
) -> None:
    for _ in range(25):
        api.get("/companies", auth=tenant.auth)
    clock.advance(30)
    for _ in range(25):
        api.get("/companies", auth=tenant.auth)
    clock.advance(29)  # 59 s after the first burst: all 50 still inside the window
    assert api.get("/companies", auth=tenant.auth).status_code == 429
    clock.advance(1)  # the first 25 leave the window
    statuses = [api.get("/companies", auth=tenant.auth).status_code for _ in range(26)]
    assert statuses == [200] * 25 + [429]


def test_accounts_have_separate_quotas(api: TestClient, tenant: Tenant, world: World) -> None:
    other = world.tenant("Other Agency")
    for _ in range(50):
        api.get("/companies", auth=tenant.auth)
    assert api.get("/companies", auth=tenant.auth).status_code == 429
    assert api.get("/companies", auth=other.auth).status_code == 200


def test_credentials_of_one_account_share_its_quota(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    second = world.credential(tenant)
    for _ in range(50):
        api.get("/companies", auth=tenant.auth)
    assert api.get("/companies", auth=second).status_code == 429


def test_the_limit_is_configurable(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    app = create_app(with_rate(settings, "3/10second"), database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as client:
        statuses = [client.get("/companies", auth=tenant.auth).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert client.get("/companies", auth=tenant.auth).headers["ratelimit-policy"] == (
            '"default";q=3;w=10'
        )


def test_health_endpoints_need_no_credentials_and_spend_no_quota(
    api: TestClient, tenant: Tenant
) -> None:
    for _ in range(60):
        assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").json() == {"status": "ready"}
    assert (
        api.get("/companies", auth=tenant.auth).headers["ratelimit"].startswith('"default";r=49;')
    )
