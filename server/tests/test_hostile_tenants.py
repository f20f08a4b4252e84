"""Account A probing every id of account B: nothing of B comes back, and B's ids look nonexistent.

Each of B's ids (companies, campaigns, calls as `before_id`) is sent with A's credentials in every
parameter and combination the API takes, next to an id of the same kind that no account has. The
two answers must be byte-identical (status, body, content headers) and carry none of B's data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from phonewagon_server.models import Campaign, Company
from server_testkit import NOW_MS, Tenant, World

# Every call of both accounts shares this millisecond, so `before_id` alone picks the page.
AT = NOW_MS - 60_000
B_MARKERS = {
    "from_number": "+15557770001",
    "to_number": "+15557770002",
    "contact_name": "BRAVO SECRET CALLER",
    "user_source": "Bravo Only Source",
    "landing_page": "https://bravo-only.example/landing",
}
COMPARED_HEADERS = ("content-type", "content-length", "cache-control", "www-authenticate")


@dataclass
class Probe:
    """A request with one of B's ids and the same request with an id nobody has."""

    label: str
    with_b: str
    with_nobody: str


@dataclass
class Accounts:
    a: Tenant
    b: Tenant
    a_companies: list[Company]
    a_campaigns: list[Campaign]
    b_companies: list[Company]
    b_campaigns: list[Campaign]
    b_call_ids: list[int]
    ghost_call_ids: list[int]  # ids that were B's calls' neighbours and no longer exist
    b_texts: set[str]


def call_ids(world: World, sids: list[str]) -> list[int]:
    with world.database.transaction() as tx:
        marks = ", ".join("?" for _ in sids)
        rows = tx.fetchall(f"SELECT id FROM calls WHERE sid IN ({marks}) ORDER BY id", sids)
    return [int(row[0]) for row in rows]


@pytest.fixture
def accounts(world: World) -> Accounts:
    a, a_companies, a_campaigns = world.spread_tenant("Alpha Agency")
    b = world.tenant("Bravo Agency")
    b_companies = [b.company, world.company(b, "Bravo Hidden Co")]
    b_campaigns = [
        world.campaign(b_companies[0], "Bravo Hidden Campaign One"),
        world.campaign(b_companies[0], "Bravo Hidden Campaign Two"),
        world.campaign(b_companies[1], "Bravo Hidden Campaign Three", campaign_id="bravo-3"),
        b.campaign,
    ]
    b_texts = {company.name for company in b_companies} | set(B_MARKERS.values())
    b_texts |= {campaign.name for campaign in b_campaigns[:3]} | {"bravo-3"}

    # Ids interleave: A's call, B's call, a ghost (deleted below), A's call, ... so that a
    # nonexistent `before_id` sits between the same two of A's calls as each of B's does.
    b_sids, ghost_sids = [], []
    for n, (a_campaign, b_campaign) in enumerate(zip(a_campaigns, b_campaigns, strict=True)):
        world.calls(a, [AT], a_campaign)
        b_sids += world.calls(b, [AT], b_campaign, **B_MARKERS)
        ghost_sids += world.calls(b, [AT], b_campaign, **B_MARKERS)
        world.calls(a, [AT, AT - n - 1], a_campaign)
    b_texts |= set(b_sids)
    b_call_ids, ghost_call_ids = call_ids(world, b_sids), call_ids(world, ghost_sids)
    with world.database.transaction(write=True) as tx:
        for ghost in ghost_call_ids:
            tx.execute("DELETE FROM calls WHERE id = ?", (ghost,))
    return Accounts(
        a,
        b,
        a_companies,
        a_campaigns,
        b_companies,
        b_campaigns,
        b_call_ids,
        ghost_call_ids,
        b_texts,
    )


def unused_company_ids(accounts: Accounts, count: int) -> list[int]:
    highest = max(c.id for c in [*accounts.a_companies, *accounts.b_companies])
    return [highest + 1000 + n for n in range(count)]


def probes(accounts: Accounts) -> Iterator[Probe]:
    a_company, a_campaign = accounts.a_companies[0], accounts.a_campaigns[0]
    nobody_companies = unused_company_ids(accounts, len(accounts.b_companies))
    nobody_campaigns = [f"s9{n:04d}" for n in range(len(accounts.b_campaigns))]
    window = f"start_time=0&end_time={NOW_MS}&page_size=3"

    for b, nobody in zip(accounts.b_companies, nobody_companies, strict=True):
        for text_b, text_nobody in [(str(b.id), str(nobody)), (f"000{b.id}", f"000{nobody}")]:
            for path in ["/campaigns?company_id={}", "/calls?company_id={}"]:
                yield Probe(path, path.format(text_b), path.format(text_nobody))
            for path in [
                "/calls?company_id={}&campaign_id=" + a_campaign.id,
                "/calls?company_id={}&" + window,
                "/calls?company_id={}&campaign_id=" + accounts.b_campaigns[0].id,
                "/calls?campaign_id=" + a_campaign.id + "&company_id={}&company_id={}",
            ]:
                yield Probe(
                    path, path.format(text_b, text_b), path.format(text_nobody, text_nobody)
                )

    for b, nobody in zip(accounts.b_campaigns, nobody_campaigns, strict=True):
        for path in [
            "/calls?campaign_id={}",
            f"/calls?company_id={a_company.id}&campaign_id={{}}",
            "/calls?campaign_id={}&" + window,
            f"/calls?campaign_id={{}}&before_id={accounts.b_call_ids[0]}&end_time={AT}",
        ]:
            yield Probe(path, path.format(b.id), path.format(nobody))
        # Both ids B's, against both ids nobody's.
        yield Probe(
            "/calls?company_id=B&campaign_id=B",
            f"/calls?company_id={b.company_id}&campaign_id={b.id}",
            f"/calls?company_id={nobody_companies[0]}&campaign_id={nobody}",
        )

    for b, ghost in zip(accounts.b_call_ids, accounts.ghost_call_ids, strict=True):
        for path in [
            "/calls?before_id={}&end_time=" + str(AT),
            "/calls?before_id={}&end_time=" + str(AT) + "&page_size=1",
            f"/calls?before_id={{}}&end_time={AT}&company_id={a_company.id}",
            f"/calls?before_id={{}}&end_time={AT}&campaign_id={a_campaign.id}",
            f"/calls?before_id={{}}&start_time={AT}&end_time={AT}",
        ]:
            yield Probe(path, path.format(b), path.format(ghost))


def seen(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {name: response.headers.get(name, "") for name in COMPARED_HEADERS}
    return response.status_code, response.content, headers


def assert_nothing_of_b(response: httpx.Response, accounts: Accounts) -> None:
    leaked = [text for text in accounts.b_texts if text in response.text]
    assert not leaked, f"{response.request.url} returned B's {leaked}"


def test_b_ids_are_answered_exactly_like_ids_nobody_has(
    roomy_api: TestClient, accounts: Accounts
) -> None:
    checked = 0
    for probe in probes(accounts):
        for method in ("GET", "HEAD"):
            with_b = roomy_api.request(method, probe.with_b, auth=accounts.a.auth)
            with_nobody = roomy_api.request(method, probe.with_nobody, auth=accounts.a.auth)
            assert seen(with_b) == seen(with_nobody), probe
            assert with_b.status_code in (200, 400, 404), probe
            assert_nothing_of_b(with_b, accounts)
            checked += 1
    assert checked >= 100


def test_b_ids_answer_404_not_found_for_companies_and_campaigns(
    roomy_api: TestClient, accounts: Accounts
) -> None:
    for company in accounts.b_companies:
        for path in (f"/campaigns?company_id={company.id}", f"/calls?company_id={company.id}"):
            response = roomy_api.get(path, auth=accounts.a.auth)
            assert response.status_code == 404
            assert "company" in response.json()["detail"]
    for campaign in accounts.b_campaigns:
        response = roomy_api.get(f"/calls?campaign_id={campaign.id}", auth=accounts.a.auth)
        assert response.status_code == 404
        assert "campaign" in response.json()["detail"]


def test_before_id_of_b_pages_only_through_a_own_calls(
    roomy_api: TestClient, accounts: Accounts
) -> None:
    """A keyset cursor is a position, not a key: B's call id moves A's page, never reveals B."""
    everything = roomy_api.get(f"/calls?end_time={AT}", auth=accounts.a.auth).json()["calls"]
    assert {call["account_id"] for call in everything} == {accounts.a.account_id}
    at_ms = [call for call in everything if call["start_time"] == AT]
    for b in accounts.b_call_ids:
        page = roomy_api.get(f"/calls?end_time={AT}&before_id={b}", auth=accounts.a.auth).json()
        expected = [call for call in at_ms if call["id"] < b]
        assert page["calls"][: len(expected)] == expected
        assert all(call["account_id"] == accounts.a.account_id for call in page["calls"])


def test_unfiltered_answers_hold_only_the_caller_own_data(
    roomy_api: TestClient, accounts: Accounts
) -> None:
    paths = ["/companies", "/campaigns", "/calls", f"/calls?end_time={AT}&page_size=1000"]
    for path in paths:
        response = roomy_api.get(path, auth=accounts.a.auth)
        assert response.status_code == 200
        assert_nothing_of_b(response, accounts)
    companies = roomy_api.get("/companies", auth=accounts.a.auth).json()["companies"]
    assert [c["id"] for c in companies] == [c.id for c in accounts.a_companies]
    campaigns = roomy_api.get("/campaigns", auth=accounts.a.auth).json()["campaigns"]
    assert sorted(c["id"] for c in campaigns) == sorted(c.id for c in accounts.a_campaigns)
    calls = following_next(roomy_api, "/calls?page_size=2", accounts.a.auth)
    assert {call["account_id"] for call in calls} == {accounts.a.account_id}
    assert len(calls) == 12


def following_next(api: TestClient, url: str, auth: tuple[str, str]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    while url:
        body = api.get(url, auth=auth).json()
        calls += body["calls"]
        url = body.get("next", "")
    return calls


def test_b_ids_are_real_and_b_still_sees_all_its_data(
    roomy_api: TestClient, accounts: Accounts
) -> None:
    for company in accounts.b_companies:
        response = roomy_api.get(f"/campaigns?company_id={company.id}", auth=accounts.b.auth)
        assert response.status_code == 200
        assert response.json()["campaigns"]
    for campaign in accounts.b_campaigns:
        response = roomy_api.get(f"/calls?campaign_id={campaign.id}", auth=accounts.b.auth)
        assert response.status_code == 200
        assert [call["sid"] for call in response.json()["calls"]]
    calls = following_next(roomy_api, "/calls?page_size=1", accounts.b.auth)
    assert sorted(call["id"] for call in calls) == accounts.b_call_ids
