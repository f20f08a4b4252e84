"""`/companies` and `/campaigns`: the seed's shapes, the account's own objects only."""

from __future__ import annotations

from starlette.testclient import TestClient

from server_testkit import Tenant, World


def test_companies_are_the_accounts_own_ordered_by_id(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    second = world.company(tenant, "Jake's rake company")
    world.tenant("Someone Else")
    response = api.get("/companies", auth=tenant.auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "companies": [
            {"id": tenant.company.id, "name": tenant.company.name},
            {"id": second.id, "name": "Jake's rake company"},
        ]
    }


def test_an_account_without_companies_gets_an_empty_list(api: TestClient, world: World) -> None:
    from phonewagon_server.credentials import generate_secret, hash_secret
    from phonewagon_server.db.accounts import create_account, insert_credential

    secret = generate_secret()
    with world.database.transaction(write=True) as tx:
        account = create_account(tx, "Empty", now=0)
        insert_credential(
            tx,
            account_id=account.id,
            client_id="pwid_empty",
            secret_hash=hash_secret(secret),
            now=0,
        )
    assert api.get("/companies", auth=("pwid_empty", secret)).json() == {"companies": []}
    assert api.get("/campaigns", auth=("pwid_empty", secret)).json() == {"campaigns": []}
    assert api.get("/calls", auth=("pwid_empty", secret)).json() == {"calls": []}


def test_campaigns_of_a_company_have_string_ids(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    facebook = world.campaign(tenant.company, "Facebook", campaign_id="s2212")
    other_company = world.company(tenant, "Second")
    world.campaign(other_company, "Yelp")
    response = api.get(f"/campaigns?company_id={tenant.company.id}", auth=tenant.auth)
    assert response.status_code == 200
    campaigns = response.json()["campaigns"]
    assert {"id": "s2212", "name": "Facebook"} in campaigns
    assert {c["id"] for c in campaigns} == {tenant.campaign.id, facebook.id}
    assert all(isinstance(c["id"], str) for c in campaigns)


def test_campaigns_without_company_id_lists_every_campaign_of_the_account(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    other_company = world.company(tenant, "Second")
    yelp = world.campaign(other_company, "Yelp")
    stranger = world.tenant("Someone Else")
    ids = {c["id"] for c in api.get("/campaigns", auth=tenant.auth).json()["campaigns"]}
    assert ids == {tenant.campaign.id, yelp.id}
    assert stranger.campaign.id not in ids


def test_another_accounts_company_is_answered_like_a_missing_one(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    stranger = world.tenant("Someone Else")
    theirs = api.get(f"/campaigns?company_id={stranger.company.id}", auth=tenant.auth)
    missing_id = stranger.company.id + 1000
    missing = api.get(f"/campaigns?company_id={missing_id}", auth=tenant.auth)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    assert stranger.campaign.id not in theirs.text
    assert theirs.content == missing.content
