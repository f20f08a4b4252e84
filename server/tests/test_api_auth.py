"""HTTP Basic auth with client id and secret: one 401 for every failure, quotas untouched."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.api.context import AppContext
from phonewagon_server.api.routing import Auth
from phonewagon_server.config import Settings
from phonewagon_server.credentials import VerifiedCredentials
from phonewagon_server.db import Database
from phonewagon_server.db.accounts import revoke_credential
from phonewagon_server.errors import ConfigurationError
from server_testkit import FakeClock, Tenant, World

ENDPOINTS = ["/companies", "/campaigns", "/calls", "/call-recordings/{sid}/file"]


def basic(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def assert_unauthenticated(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="phonewagon"'
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert "ratelimit" not in response.headers


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_requires_credentials(api: TestClient, path: str) -> None:
    assert_unauthenticated(api.get(path))


def test_unknown_id_wrong_secret_and_revoked_credential_get_the_same_answer(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    revoked_id, revoked_secret = world.credential(tenant)
    with world.database.transaction(write=True) as tx:
        revoke_credential(tx, revoked_id, now=0)
    answers = [
        api.get("/companies", auth=("pwid_nosuchclient", tenant.secret)),
        api.get("/companies", auth=(tenant.client_id, tenant.secret + "x")),
        api.get("/companies", auth=(revoked_id, revoked_secret)),
        api.get("/companies", auth=(tenant.client_id, "")),
    ]
    for answer in answers:
        assert_unauthenticated(answer)
    same = {(k, v) for k, v in answers[0].headers.items() if k != "x-request-id"}  # one per request
    for answer in answers:
        assert {(k, v) for k, v in answer.headers.items() if k != "x-request-id"} == same
        assert answer.content == answers[0].content


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64!!!"},
        basic("no-colon-here"),
        basic(":secret-without-id"),
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
    ],
)
def test_malformed_authorization_headers_are_refused_cleanly(
    api: TestClient, header: dict[str, str]
) -> None:
    assert_unauthenticated(api.get("/companies", headers=header))


def test_auth_scheme_name_is_case_insensitive(api: TestClient, tenant: Tenant) -> None:
    token = base64.b64encode(f"{tenant.client_id}:{tenant.secret}".encode()).decode()
    assert api.get("/companies", headers={"Authorization": f"basic {token}"}).status_code == 200


def test_several_credentials_of_one_account_work_at_once(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    second = world.credential(tenant)
    first_answer = api.get("/companies", auth=tenant.auth)
    second_answer = api.get("/companies", auth=second)
    assert first_answer.status_code == second_answer.status_code == 200
    assert first_answer.json() == second_answer.json()


def test_revoking_one_credential_leaves_the_others_working(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    second = world.credential(tenant)
    with world.database.transaction(write=True) as tx:
        revoke_credential(tx, tenant.client_id, now=0)
    assert_unauthenticated(api.get("/companies", auth=tenant.auth))
    assert api.get("/companies", auth=second).status_code == 200


def test_credentials_are_prefixed_for_leak_scanners(tenant: Tenant) -> None:
    assert tenant.client_id.startswith("pwid_")
    assert tenant.secret.startswith("pwsk_")
    assert len(tenant.secret) >= len("pwsk_") + 43  # 256 random bits


def test_secrets_are_stored_only_as_hashes(tenant: Tenant, world: World) -> None:
    with world.database.transaction() as tx:
        stored = tx.fetchall("SELECT * FROM credentials")
    assert stored
    assert all(tenant.secret not in str(value) for row in stored for value in row)


def test_failed_authentication_spends_nothing_of_the_named_accounts_quota(
    api: TestClient, tenant: Tenant, clock: FakeClock
) -> None:
    for _ in range(200):
        api.get("/companies", auth=(tenant.client_id, "wrong"))
    first = api.get("/companies", auth=tenant.auth)
    assert first.status_code == 200
    assert first.headers["ratelimit"] == '"default";r=49;t=60'
    admitted = [api.get("/companies", auth=tenant.auth).status_code for _ in range(49)]
    assert admitted == [200] * 49


def test_repeated_failures_from_one_address_are_throttled(
    api: TestClient, tenant: Tenant, clock: FakeClock
) -> None:
    statuses = [
        api.get("/companies", auth=(tenant.client_id, "wrong")).status_code for _ in range(25)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[20:] == [429] * 5
    refused = api.get("/companies", auth=("pwid_other", "wrong"))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 60
    assert api.get("/companies", auth=tenant.auth).status_code == 200  # the owner still gets in
    clock.advance(60)
    assert api.get("/companies", auth=(tenant.client_id, "wrong")).status_code == 401


# Verified credentials are trusted for `credential_cache_seconds` (5 by default) without the
# database: a revocation takes effect within that time, and never sooner than the next request.


def revoke(world: World, client_id: str) -> None:
    with world.database.transaction(write=True) as tx:
        revoke_credential(tx, client_id, now=0)


def test_a_revoked_credential_is_refused_within_the_credential_cache_time(
    api: TestClient, tenant: Tenant, world: World, clock: FakeClock, settings: Settings
) -> None:
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    revoke(world, tenant.client_id)
    clock.advance(settings.credential_cache_seconds - 0.01)
    assert api.get("/companies", auth=tenant.auth).status_code == 200  # verified 4.99 s ago
    clock.advance(0.01)
    assert_unauthenticated(api.get("/companies", auth=tenant.auth))
    clock.advance(600)
    assert_unauthenticated(api.get("/companies", auth=tenant.auth))


def test_a_verified_credential_admits_no_other_secret_for_its_client_id(
    api: TestClient, tenant: Tenant
) -> None:
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    assert_unauthenticated(api.get("/companies", auth=(tenant.client_id, tenant.secret + "x")))
    assert_unauthenticated(api.get("/companies", auth=(tenant.client_id, tenant.secret[:-1])))
    assert_unauthenticated(api.get("/companies", auth=("pwid_other", tenant.secret)))
    assert api.get("/companies", auth=tenant.auth).status_code == 200


def test_requests_with_a_verified_credential_still_spend_the_accounts_quota(
    api: TestClient, tenant: Tenant
) -> None:
    answers = [api.get("/companies", auth=tenant.auth) for _ in range(51)]
    assert [a.status_code for a in answers] == [200] * 50 + [429]
    assert answers[0].headers["ratelimit-policy"] == '"default";q=50;w=60'
    assert answers[0].headers["ratelimit"] == '"default";r=49;t=60'
    assert answers[49].headers["ratelimit"] == '"default";r=0;t=60'
    assert answers[50].headers["retry-after"] == "60"


@pytest.fixture
def uncached_api(database: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    uncached = replace(settings, credential_cache_seconds=0)
    with TestClient(create_app(uncached, database, wall_clock=clock, monotonic=clock)) as client:
        yield client


def test_without_the_credential_cache_a_revocation_is_refused_at_the_next_request(
    uncached_api: TestClient, tenant: Tenant, world: World
) -> None:
    assert uncached_api.get("/companies", auth=tenant.auth).status_code == 200
    revoke(world, tenant.client_id)
    assert_unauthenticated(uncached_api.get("/companies", auth=tenant.auth))


def test_the_credential_cache_time_is_read_from_the_environment() -> None:
    assert Settings().credential_cache_seconds == 5
    assert (
        Settings.from_env({"PHONEWAGON_CREDENTIAL_CACHE_SECONDS": "0"}).credential_cache_seconds
        == 0
    )
    assert (
        Settings.from_env({"PHONEWAGON_CREDENTIAL_CACHE_SECONDS": "30"}).as_env()[
            "PHONEWAGON_CREDENTIAL_CACHE_SECONDS"
        ]
        == "30"
    )
    for bad in ("-1", "five", "1.5"):
        with pytest.raises(ConfigurationError, match="PHONEWAGON_CREDENTIAL_CACHE_SECONDS"):
            Settings.from_env({"PHONEWAGON_CREDENTIAL_CACHE_SECONDS": bad})


def test_the_credential_cache_stays_bounded_and_forgets_expired_entries_first() -> None:
    clock = FakeClock()
    cache = VerifiedCredentials(5, clock=clock, max_entries=3)
    cache.remember("pwid_old", "s", 1)
    clock.advance(5)
    cache.remember("pwid_a", "s", 2)
    cache.remember("pwid_b", "s", 3)
    assert cache.account_of("pwid_old", "s") is None  # expired
    cache.remember("pwid_c", "s", 4)  # full: the expired entry makes room
    assert [cache.account_of(f"pwid_{k}", "s") for k in "abc"] == [2, 3, 4]
    cache.remember("pwid_d", "s", 5)  # full of live entries: all are forgotten
    assert [cache.account_of(f"pwid_{k}", "s") for k in "abcd"] == [None, None, None, 5]


def test_threads_filling_the_credential_cache_together_never_raise() -> None:
    cache = VerifiedCredentials(5, clock=FakeClock(), max_entries=50)
    failures: list[BaseException] = []

    def fill(thread: int) -> None:
        try:
            for n in range(20_000):
                cache.remember(f"pwid_{thread}_{n}", "s", n)
                cache.account_of(f"pwid_{thread}_{n - 1}", "s")
        except BaseException as exc:  # any failure in a thread fails the test
            failures.append(exc)

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(cache) <= 50


def cached_credentials(api: TestClient) -> int:
    context: AppContext = api.app.state.context  # type: ignore[attr-defined]
    return len(context.verified_credentials)


def test_every_spelling_of_one_credential_is_one_cache_entry(
    api: TestClient, tenant: Tenant
) -> None:
    encoded = base64.b64encode(f"{tenant.client_id}:{tenant.secret}".encode()).decode()
    spellings = [f"Basic {encoded}", f"basic {encoded}", f"BASIC  {encoded}", f"Basic {encoded}  "]
    for spelling in spellings:
        assert api.get("/companies", headers={"Authorization": spelling}).status_code == 200
    assert cached_credentials(api) == 1


def test_a_credential_refused_by_the_quota_is_not_remembered(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    statuses = [api.get("/companies", auth=tenant.auth).status_code for _ in range(51)]
    assert statuses[-1] == 429
    second = world.credential(tenant)
    assert api.get("/companies", auth=second).status_code == 429
    assert cached_credentials(api) == 1


def account_paths(api: TestClient) -> list[str]:
    """Every route of the app declared `Auth.ACCOUNT`: Basic credentials, then the quota."""
    table = api.app.routes  # type: ignore[attr-defined]
    return [route.path for route in table if route.policy.auth is Auth.ACCOUNT]


def test_the_endpoints_requiring_credentials_are_every_account_route(api: TestClient) -> None:
    assert sorted(account_paths(api)) == sorted(ENDPOINTS)


def test_credentials_then_the_quota_are_checked_before_any_parameter(
    api: TestClient, tenant: Tenant, clock: FakeClock
) -> None:
    """A bad parameter is answered 401 without credentials, 429 over the quota, else 400."""
    bad = "?compnay_id=1"
    for path in account_paths(api):
        assert_unauthenticated(api.get(path + bad))
    assert [api.get("/companies", auth=tenant.auth).status_code for _ in range(50)] == [200] * 50
    for path in account_paths(api):
        assert api.get(path + bad, auth=tenant.auth).status_code == 429
    clock.advance(60)
    for path in account_paths(api):
        assert api.get(path + bad, auth=tenant.auth).status_code == 400
