"""The real client against the real server over a real port, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from live_server import LiveServer
from phonewagon import (
    AuthenticationError,
    BadRequestError,
    Call,
    Client,
    NotFoundError,
    Page,
)
from phonewagon.export import read_calls
from phonewagon.models import CALL_FIELDS as CLIENT_CALL_FIELDS
from phonewagon.sync import STATE_FILE, sync_calls
from phonewagon_server.config import Rate
from phonewagon_server.db import Database
from phonewagon_server.db.calls import read_call, write_call
from phonewagon_server.models import CALL_FIELDS as SERVER_CALL_FIELDS
from phonewagon_server.models import Campaign, Company
from server_testkit import Account, World

TIED_MS = 1_600_000_000_000  # the millisecond that many calls share
SMALL_PAGE = 7  # so that page boundaries fall inside the shared millisecond


@dataclass(frozen=True)
class Catalog:
    """An account with two companies of two campaigns each, and a neighbour account."""

    tenant: Account
    companies: list[Company]
    campaigns: list[Campaign]
    neighbour: Account
    neighbours_company: Company
    neighbours_campaign: Campaign


@pytest.fixture
def catalog(world: World) -> Catalog:
    tenant = world.account("Acme Agency")
    rakes, hoes = world.company(tenant, "Rakes"), world.company(tenant, "Hoes & Co")
    campaigns = [
        world.campaign(rakes, "Facebook", "s2212"),
        world.campaign(rakes, "Google Ads"),
        world.campaign(hoes, "Yelp"),
        world.campaign(hoes, "Direct"),
    ]
    facebook, google, yelp, direct = campaigns
    world.calls(tenant, [TIED_MS] * 40 + [TIED_MS - n * 1000 for n in range(1, 31)], facebook)
    world.calls(tenant, [TIED_MS] * 9 + [TIED_MS + n * 7 for n in range(1, 17)], google)
    world.calls(tenant, [TIED_MS + 1] * 12 + [TIED_MS - 1] * 8, yelp)
    world.calls(tenant, [1_575_322_416_000, 1_575_322_416_000, 1], direct)

    neighbour = world.account("Other Agency")
    theirs = world.company(neighbour, "Theirs")
    their_campaign = world.campaign(theirs, "Bing")
    world.calls(neighbour, [TIED_MS] * 10 + [TIED_MS + 1] * 5, their_campaign)
    return Catalog(tenant, [rakes, hoes], campaigns, neighbour, theirs, their_campaign)


@pytest.fixture
def client(server: LiveServer, catalog: Catalog) -> Iterator[Client]:
    with Client(catalog.tenant.client_id, catalog.tenant.secret, base_url=server.url) as client:
        yield client


def server_json(server: LiveServer, tenant: Account, path: str) -> Any:
    """What the server answers over plain HTTP, with no client library in between."""
    answer = httpx.get(f"{server.url}{path}", auth=(tenant.client_id, tenant.secret))
    answer.raise_for_status()
    return answer.json()


def test_companies_are_the_accounts_own_in_id_order(client: Client, catalog: Catalog) -> None:
    companies = list(client.companies())

    assert [(c.id, c.name) for c in companies] == [(c.id, c.name) for c in catalog.companies]
    assert all(isinstance(c.id, int) for c in companies)


def test_campaigns_are_the_accounts_own_with_string_ids(
    client: Client, catalog: Catalog, server: LiveServer
) -> None:
    campaigns = list(client.campaigns())

    assert {(c.id, c.name) for c in campaigns} == {(c.id, c.name) for c in catalog.campaigns}
    assert [c.to_dict() for c in campaigns] == server_json(server, catalog.tenant, "/campaigns")[
        "campaigns"
    ]
    assert all(isinstance(c.id, str) for c in campaigns)


def test_campaigns_of_one_company_are_only_that_companys(client: Client, catalog: Catalog) -> None:
    for company in catalog.companies:
        campaigns = list(client.campaigns(company_id=company.id))

        expected = {(c.id, c.name) for c in catalog.campaigns if c.company_id == company.id}
        assert {(c.id, c.name) for c in campaigns} == expected


def filters(catalog: Catalog, name: str) -> tuple[dict[str, Any], str, tuple[Any, ...]]:
    """A filter as the client takes it, and the same as an SQL condition on `calls`."""
    rakes = catalog.companies[0]
    yelp = catalog.campaigns[2]
    match name:
        case "none":
            return {}, "", ()
        case "company":
            return {"company_id": rakes.id}, "company_id = ?", (rakes.id,)
        case "campaign":
            return {"campaign_id": yelp.id}, "campaign_id = ?", (yelp.id,)
        case "start_time":
            return {"start_time": TIED_MS}, "start_time >= ?", (TIED_MS,)
        case "end_time":
            return {"end_time": TIED_MS}, "start_time <= ?", (TIED_MS,)
        case "one_millisecond":
            return (
                {"start_time": TIED_MS, "end_time": TIED_MS},
                "start_time = ?",
                (TIED_MS,),
            )
        case "everything":
            return (
                {
                    "company_id": rakes.id,
                    "campaign_id": "s2212",
                    "start_time": TIED_MS - 10_000,
                    "end_time": TIED_MS,
                },
                "company_id = ? AND campaign_id = ? AND start_time BETWEEN ? AND ?",
                (rakes.id, "s2212", TIED_MS - 10_000, TIED_MS),
            )
    raise AssertionError(name)


FILTERS = ["none", "company", "campaign", "start_time", "end_time", "one_millisecond", "everything"]


@pytest.mark.parametrize("name", FILTERS)
def test_calls_are_exactly_the_servers_matching_calls_newest_first(
    client: Client, catalog: Catalog, world: World, name: str
) -> None:
    arguments, where, params = filters(catalog, name)
    expected = world.call_ids(catalog.tenant, where, params)
    assert expected, "the filter should match some calls"

    paged = [call.id for call in client.calls(**arguments, page_size=SMALL_PAGE)]
    whole = [call.id for call in client.calls(**arguments)]

    assert paged == expected
    assert whole == expected


def test_forty_calls_in_one_millisecond_come_through_small_pages_exactly_once(
    client: Client, catalog: Catalog, world: World
) -> None:
    expected = world.call_ids(catalog.tenant, "start_time = ?", (TIED_MS,))
    assert len(expected) == 49

    ids = [call.id for call in client.calls(start_time=TIED_MS, end_time=TIED_MS, page_size=3)]

    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == len(ids)


def test_pages_follow_next_until_it_is_absent(
    client: Client, catalog: Catalog, world: World
) -> None:
    expected = world.call_ids(catalog.tenant)

    pages = list(client.pages(page_size=SMALL_PAGE))

    assert all(isinstance(page, Page) for page in pages)
    assert len(pages) == math.ceil(len(expected) / SMALL_PAGE)
    assert all(len(page.calls) == SMALL_PAGE and page.next_url for page in pages[:-1])
    assert pages[-1].next_url is None
    assert [call.id for page in pages for call in page.calls] == expected


def test_times_may_be_aware_datetimes_in_any_zone(
    client: Client, catalog: Catalog, world: World
) -> None:
    start = datetime(2020, 9, 13, 12, 26, 30, tzinfo=UTC)  # TIED_MS - 10 s
    end = datetime(2020, 9, 13, 7, 26, 40, tzinfo=timezone(timedelta(hours=-5)))  # TIED_MS
    expected = world.call_ids(
        catalog.tenant, "start_time BETWEEN ? AND ?", (TIED_MS - 10_000, TIED_MS)
    )

    ids = [call.id for call in client.calls(start_time=start, end_time=end)]

    assert ids == expected


def test_calls_carry_every_field_the_server_sends_with_its_type(
    client: Client, catalog: Catalog, server: LiveServer
) -> None:
    raw = server_json(server, catalog.tenant, "/calls")["calls"]

    calls = list(client.calls())

    assert CLIENT_CALL_FIELDS == SERVER_CALL_FIELDS
    assert [call.to_dict() for call in calls] == raw
    for call in calls:
        assert isinstance(call, Call)
        for field in ("id", "account_id", "company_id", "duration", "start_time", "updated_at"):
            assert type(getattr(call, field)) is int, field
        assert type(call.is_first_time_caller) is bool
        assert isinstance(call.sid, str)
        assert isinstance(call.campaign_id, str)
    assert {call.is_first_time_caller for call in calls} == {True, False}
    assert {call.contact_name for call in calls} == {"Zoë Ångström"}


def test_credentials_come_from_the_environment(
    server: LiveServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONEWAGON_CLIENT_ID", catalog.tenant.client_id)
    monkeypatch.setenv("PHONEWAGON_CLIENT_SECRET", catalog.tenant.secret)
    monkeypatch.setenv("PHONEWAGON_BASE_URL", server.url)

    with Client() as client:
        assert [c.id for c in client.companies()] == [c.id for c in catalog.companies]


def test_a_wrong_secret_is_an_authentication_error(server: LiveServer, catalog: Catalog) -> None:
    with (
        Client(catalog.tenant.client_id, "pwsk_wrong", base_url=server.url) as client,
        pytest.raises(AuthenticationError) as raised,
    ):
        list(client.calls())

    assert raised.value.status == 401
    assert raised.value.problem is not None
    assert raised.value.problem["status"] == 401


@pytest.mark.parametrize("whose", ["neighbours", "nobodys"])
def test_a_campaign_of_another_account_is_not_found_like_one_that_does_not_exist(
    client: Client, catalog: Catalog, whose: str
) -> None:
    campaign_id = catalog.neighbours_campaign.id if whose == "neighbours" else "s999999"

    with pytest.raises(NotFoundError) as raised:
        list(client.calls(campaign_id=campaign_id))

    assert raised.value.status == 404
    assert raised.value.problem is not None
    assert raised.value.problem["status"] == 404
    assert catalog.neighbours_campaign.name not in str(raised.value)


def test_a_company_of_another_account_is_not_found(client: Client, catalog: Catalog) -> None:
    company_id = catalog.neighbours_company.id

    with pytest.raises(NotFoundError):
        list(client.campaigns(company_id=company_id))
    with pytest.raises(NotFoundError):
        list(client.calls(company_id=company_id))


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"page_size": 0}, "page_size"),
        ({"start_time": TIED_MS, "end_time": TIED_MS - 1}, "start_time"),
    ],
    ids=["page_size_zero", "start_after_end"],
)
def test_a_bad_parameter_is_refused_naming_it(
    client: Client, arguments: dict[str, Any], parameter: str
) -> None:
    """Refused by the library before asking, or by the server as a BadRequestError."""
    with pytest.raises((BadRequestError, ValueError)) as raised:
        list(client.calls(**arguments))

    if isinstance(raised.value, BadRequestError):
        assert raised.value.status == 400
        assert [error["name"] for error in raised.value.errors] == [parameter]
    assert parameter in str(raised.value)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # it is about HTTP only
def test_a_pull_larger_than_the_rate_limit_waits_instead_of_failing(
    database: Database, world: World
) -> None:
    tenant = world.account("Tight Agency")
    campaign = world.campaign(world.company(tenant, "Rakes"), "Google Ads")
    world.calls(tenant, [TIED_MS - n // 2 for n in range(60)], campaign)
    waits: list[object] = []

    with (
        LiveServer(database, rate_limit=Rate(limit=5, window=1)) as server,
        Client(
            tenant.client_id, tenant.secret, base_url=server.url, on_wait=waits.append
        ) as client,
    ):
        ids = [call.id for call in client.calls(page_size=4)]  # 15 pages, at 5 a second

    assert ids == world.call_ids(tenant)
    assert waits, "the client should have waited for the rate limit"
    assert [wait.cause for wait in waits if "429" in wait.cause] == [], "paced, never refused"


# --- the change feed ----------------------------------------------------------------------------


def let_the_database_clock_pass() -> None:
    """The feed shows a change once the database's clock has passed its millisecond."""
    time.sleep(0.002)


def change_call(world: World, catalog: Catalog, sid: str, **fields: Any) -> None:
    """Change a call through the server's one write path, as an import or a webhook would."""
    account_id = catalog.tenant.account_id
    with world.database.transaction(write=True, changing=account_id) as tx:
        stored = read_call(tx, account_id, sid)
        assert stored is not None
        changed = dataclasses.replace(stored, **fields)
        campaign = next(c for c in catalog.campaigns if c.id == stored.campaign_id)
        assert write_call(tx, changed, campaign) == "updated"


@pytest.mark.parametrize("name", ["none", "campaign", "everything"])
def test_changes_give_every_matching_call_once_oldest_change_first(
    client: Client, catalog: Catalog, world: World, name: str
) -> None:
    """Calls written in one batch share their `updated_at` milliseconds: pages of 7 end inside
    them, and `next` resumes after the last call sent, losing and repeating none. Asked again
    from the largest `updated_at`, the feed gives the calls of that millisecond once more."""
    arguments, where, params = filters(catalog, name)
    expected = world.call_ids(catalog.tenant, where, params)

    changed = list(client.changes(0, **arguments, page_size=SMALL_PAGE))

    ids = [call.id for call in changed]
    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == len(ids)
    order = [(call.updated_at, call.id) for call in changed]
    assert order == sorted(order)
    latest = changed[-1].updated_at
    assert [c.id for c in client.changes(latest, **arguments)] == [
        c.id for c in changed if c.updated_at == latest
    ]


def test_changes_since_a_call_was_changed_bring_it_alone_in_its_new_version(
    client: Client, catalog: Catalog, world: World
) -> None:
    before = list(client.changes(0))
    oldest = min(before, key=lambda call: (call.start_time, call.id))
    let_the_database_clock_pass()
    change_call(world, catalog, oldest.sid, duration=305, recording_url="https://r.test/1")
    let_the_database_clock_pass()

    after = list(client.changes(before[-1].updated_at + 1))

    assert [(c.sid, c.duration, c.recording_url) for c in after] == [
        (oldest.sid, 305, "https://r.test/1")
    ]
    assert after[0].updated_at > before[-1].updated_at


def test_a_call_changed_after_a_sync_comes_back_in_the_next_one_however_old(
    client: Client, catalog: Catalog, world: World, tmp_path: Path
) -> None:
    """Its recording arrives years after the call (2019): no look-back window could reach it."""
    first = sync_calls(client, tmp_path)
    expected = world.call_ids(catalog.tenant)
    assert first.new == len(expected)
    late = next(call for call in client.calls(end_time=1_575_322_416_000))
    assert late.started_at.year == 2019
    let_the_database_clock_pass()
    change_call(
        world, catalog, late.sid, status="completed", duration=305, recording_url="https://r.test/1"
    )
    let_the_database_clock_pass()

    second = sync_calls(client, tmp_path)

    assert (second.new, second.updated) == (0, 1)
    assert second.days_touched == ["2019-12-02"]
    synced = [
        call
        for path in sorted((tmp_path / "calls").iterdir())
        for call in read_calls(path, "jsonl")
    ]
    assert sorted(call.id for call in synced) == sorted(expected)
    assert [call for call in synced if call.sid == late.sid] == [
        next(call for call in client.calls() if call.sid == late.sid)
    ]
    newest = max(call.updated_at for call in client.changes(0))
    assert json.loads((tmp_path / STATE_FILE).read_text())["newest_updated_at"] == newest
