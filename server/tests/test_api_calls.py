"""`/calls`: the seed's call shape, filters, inclusive bounds, newest first, and `next` links."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from server_testkit import NOW_MS, PUBLIC_URL, Tenant, World

SEED_CALL_TYPES: dict[str, type] = {
    "account_id": int,
    "ad_position": str,
    "campaign_name": str,
    "company_id": int,
    "contact_name": str,
    "device": str,
    "direction": str,
    "duration": int,
    "fbclid": str,
    "from_number": str,
    "gclid": str,
    "id": int,
    "is_first_time_caller": bool,
    "keyword": str,
    "landing_page": str,
    "match_type": str,
    "msclkid": str,
    "network": str,
    "recording_url": str,
    "referral_value": str,
    "sid": str,
    "start_time": int,
    "status": str,
    "to_number": str,
    "unbounce_page_id": str,
    "unbounce_variant_id": str,
    "unbounce_visitor_id": str,
    "user_source": str,
    "utm_campaign": str,
    "utm_content": str,
    "utm_medium": str,
    "utm_source": str,
    "utm_term": str,
}


@pytest.fixture
def api(roomy_api: TestClient) -> TestClient:
    """Paging takes many requests: these tests get a roomy rate limit."""
    return roomy_api


def get_calls(api: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = api.get("/calls", params=params, auth=tenant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def follow(api: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every call of a query, following `next` until it is absent."""
    body = get_calls(api, tenant, **params)
    calls = body["calls"]
    while "next" in body:
        assert body["next"].startswith(PUBLIC_URL + "/calls?")
        response = api.get(body["next"].removeprefix(PUBLIC_URL), auth=tenant.auth)
        body = response.json()
        calls += body["calls"]
    return calls


def test_a_call_has_every_field_of_the_seed_with_its_type(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(
        tenant,
        [1575322416000],
        user_source="Yahoo organic",
        landing_page="http://tommy123.com/staging.html",
        contact_name="Bronx        Ny",
        is_first_time_caller=True,
    )
    (call,) = get_calls(api, tenant)["calls"]
    assert set(call) == {*SEED_CALL_TYPES, "campaign_id", "updated_at"}  # ours, additive
    assert type(call["updated_at"]) is int
    for name, kind in SEED_CALL_TYPES.items():
        assert type(call[name]) is kind, name
    assert call["campaign_id"] == tenant.campaign.id
    assert call["campaign_name"] == tenant.campaign.name
    assert call["account_id"] == tenant.account_id
    assert call["company_id"] == tenant.company.id
    assert call["start_time"] == 1575322416000
    assert call["is_first_time_caller"] is True
    assert call["contact_name"] == "Bronx        Ny"
    assert call["gclid"] == ""  # unknown is "", never null
    assert call["keyword"] == ""


def test_calls_come_newest_first_with_id_breaking_ties(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [3000, 1000, 2000, 2000, 1000, 2000])
    calls = get_calls(api, tenant)["calls"]
    keys = [(c["start_time"], c["id"]) for c in calls]
    assert keys == sorted(keys, reverse=True)
    assert [c["start_time"] for c in calls] == [3000, 2000, 2000, 2000, 1000, 1000]


def test_time_bounds_are_inclusive(api: TestClient, tenant: Tenant, world: World) -> None:
    world.calls(tenant, [999, 1000, 1500, 2000, 2001])
    calls = get_calls(api, tenant, start_time=1000, end_time=2000)["calls"]
    assert [c["start_time"] for c in calls] == [2000, 1500, 1000]


def test_end_time_defaults_to_now_and_start_time_to_zero(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [0, NOW_MS, NOW_MS + 1])
    calls = get_calls(api, tenant)["calls"]
    assert [c["start_time"] for c in calls] == [NOW_MS, 0]


def test_page_size_defaults_to_1000_and_is_truncated_to_1000(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, list(range(1, 1202)))
    default = get_calls(api, tenant)
    assert len(default["calls"]) == 1000
    assert parse_qs(urlsplit(default["next"]).query)["page_size"] == ["1000"]
    huge = get_calls(api, tenant, page_size=10**30)
    assert len(huge["calls"]) == 1000
    assert len(get_calls(api, tenant, page_size=7)["calls"]) == 7


def test_next_appears_only_when_more_calls_match(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [1000, 2000, 3000, 4000])
    assert "next" in get_calls(api, tenant, page_size=3)
    assert "next" not in get_calls(api, tenant, page_size=4)
    assert "next" not in get_calls(api, tenant, page_size=5)
    last_page = get_calls(api, tenant, page_size=1, end_time=1000)
    assert "next" not in last_page
    assert len(last_page["calls"]) == 1


def test_next_is_absolute_and_keeps_every_filter_and_the_page_size(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [1000, 2000, 3000])
    params = {
        "company_id": tenant.company.id,
        "campaign_id": tenant.campaign.id,
        "start_time": 500,
        "end_time": 5000,
        "page_size": 1,
    }
    next_url = get_calls(api, tenant, **params)["next"]
    parts = urlsplit(next_url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    assert parts.path == "/calls"
    query = parse_qs(parts.query)
    assert query["company_id"] == [str(tenant.company.id)]
    assert query["campaign_id"] == [tenant.campaign.id]
    assert query["start_time"] == ["500"]
    assert query["page_size"] == ["1"]
    assert query["end_time"] == ["3000"]


def test_next_never_comes_from_the_host_header(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    world.calls(tenant, [1000, 2000])
    response = api.get(
        "/calls?page_size=1",
        auth=tenant.auth,
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.json()["next"].startswith(PUBLIC_URL + "/calls?")


def test_following_next_returns_calls_sharing_one_millisecond_exactly_once(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    sids = world.calls(tenant, [5000] * 25 + [4000] * 5)
    for page_size in (1, 2, 7, 10, 25, 30):
        calls = follow(api, tenant, page_size=page_size)
        assert sorted(c["sid"] for c in calls) == sorted(sids), page_size


def test_calls_inserted_while_paging_do_not_disturb_the_pages(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    before = world.calls(tenant, [3000] * 6 + [2000] * 6)
    body = get_calls(api, tenant, page_size=4)
    seen = [c["sid"] for c in body["calls"]]
    while "next" in body:
        world.calls(tenant, [3000, 2000, 9000])  # new calls at the boundary and newer
        body = api.get(body["next"].removeprefix(PUBLIC_URL), auth=tenant.auth).json()
        seen += [c["sid"] for c in body["calls"]]
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)


@pytest.mark.parametrize("filter_name", ["company_id", "campaign_id"])
def test_filters_select_one_company_or_campaign(
    api: TestClient, tenant: Tenant, world: World, filter_name: str
) -> None:
    other_company = world.company(tenant, "Second")
    other_campaign = world.campaign(other_company, "Yelp")
    mine = world.calls(tenant, [1000, 2000, 3000])
    world.calls(tenant, [1500, 2500], campaign=other_campaign)
    value = tenant.company.id if filter_name == "company_id" else tenant.campaign.id
    calls = follow(api, tenant, page_size=2, **{filter_name: value})
    assert sorted(c["sid"] for c in calls) == sorted(mine)


def test_another_accounts_campaign_is_answered_like_a_missing_one(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    stranger = world.tenant("Someone Else")
    world.calls(stranger, [1000])
    theirs = api.get(f"/calls?campaign_id={stranger.campaign.id}", auth=tenant.auth)
    missing = api.get("/calls?campaign_id=s999999", auth=tenant.auth)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    company = api.get(f"/calls?company_id={stranger.company.id}", auth=tenant.auth)
    assert company.status_code == 404


def test_an_account_never_sees_another_accounts_calls(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    stranger = world.tenant("Someone Else")
    theirs = world.calls(stranger, [1000, 2000])
    mine = world.calls(tenant, [1500])
    assert [c["sid"] for c in follow(api, tenant, page_size=1)] == mine
    assert not set(theirs) & {c["sid"] for c in follow(api, stranger, page_size=5)} ^ set(theirs)


def test_a_client_paging_by_end_time_itself_still_works(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    """The seed's own scheme (end_time = last start_time - 1) stays valid, if lossy on ties."""
    world.calls(tenant, [1000, 2000, 3000, 4000])
    times, end_time = [], NOW_MS
    while True:
        calls = get_calls(api, tenant, page_size=1, end_time=end_time)["calls"]
        if not calls:
            break
        times.append(calls[0]["start_time"])
        end_time = calls[0]["start_time"] - 1
    assert times == [4000, 3000, 2000, 1000]


def test_unusual_strings_survive_the_round_trip(
    api: TestClient, tenant: Tenant, world: World
) -> None:
    odd = 'quote " backslash \\ tab \t newline \n nul-free \u0001 é 漢字 📞 </script>'
    world.calls(tenant, [1000], contact_name=odd, keyword="'; DROP TABLE calls; --")
    (call,) = get_calls(api, tenant)["calls"]
    assert call["contact_name"] == odd
    assert call["keyword"] == "'; DROP TABLE calls; --"
