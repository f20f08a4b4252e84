"""HTTP Basic auth with client id and secret: one 401 for every failure, quotas untouched."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from server_testkit import FakeClock, Tenant, World

ENDPOINTS = ["/companies", "/campaigns", "/calls"]


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
    from phonewagon_server.db.accounts import revoke_credential

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
    from phonewagon_server.db.accounts import revoke_credential

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
