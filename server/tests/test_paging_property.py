"""Following `next` returns every matching call exactly once, newest first, whatever the data.

Hypothesis draws calls crowded onto a few milliseconds, two companies of two campaigns, any mix of
filters and page sizes, and new calls written between pages; the pages must add up to exactly the
calls that matched when paging began (plus, at most once, new ones that match).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from phonewagon_server.db import Database
from phonewagon_server.models import MAX_PAGE_SIZE, Campaign
from server_testkit import NOW_MS, PUBLIC_URL, Tenant, World

# Few distinct milliseconds, so most calls share theirs with others; the edges of the API's
# range (0, now) and neighbours that catch off-by-one bounds.
MOMENTS = [0, 1, 999, 1000, 1001, 86_400_000, NOW_MS - 1, NOW_MS]
BIG_PAGE_SIZES = {21: MAX_PAGE_SIZE + 1, 22: 4096, 23: 10**6, 24: 10**30}

Key = tuple[int, int]  # (start_time, id): the page order, newest first


@dataclass(frozen=True)
class Insert:
    """A call written between two pages: newer than all, at a used millisecond, or older."""

    kind: str
    offset: int
    campaign: int


@dataclass(frozen=True)
class Scenario:
    moments: list[int]
    calls: list[tuple[int, int]]  # (start_time, campaign index), in insertion order
    company: int | None  # index into the tenant's two companies
    campaign: int | None  # index into its four campaigns (maybe of the other company)
    start_time: int | None
    end_time: int | None
    page_size: int
    inserts: list[list[Insert]]  # one batch after each page, while batches last


def _often_none(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Absent two times in three: filters that match nothing would make most examples empty."""
    return st.one_of(st.none(), st.none(), strategy)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    moments = sorted(draw(st.lists(st.sampled_from(MOMENTS), min_size=1, max_size=5, unique=True)))
    count = draw(st.integers(0, 50))
    calls = draw(
        st.lists(
            st.tuples(st.sampled_from(moments), st.integers(0, 3)), min_size=count, max_size=count
        )
    )
    near = sorted({max(0, m + d) for m in moments for d in (-1, 0, 1)})
    start_time = draw(_often_none(st.sampled_from([t for t in near if t <= NOW_MS])))
    end_time = draw(_often_none(st.sampled_from(near)))
    if start_time is not None and end_time is not None and start_time > end_time:
        start_time, end_time = end_time, start_time
    size = draw(st.one_of(st.integers(1, 4), st.integers(1, 24)))
    inserts = draw(
        st.lists(
            st.lists(
                st.builds(
                    Insert,
                    kind=st.sampled_from(["newer", "used", "older"]),
                    offset=st.integers(0, 2),
                    campaign=st.integers(0, 3),
                ),
                max_size=4,
            ),
            max_size=8,
        )
    )
    return Scenario(
        moments=moments,
        calls=calls,
        company=draw(_often_none(st.integers(0, 1))),
        campaign=draw(_often_none(st.integers(0, 3))),
        start_time=start_time,
        end_time=end_time,
        page_size=BIG_PAGE_SIZES.get(size, size),
        inserts=inserts,
    )


@dataclass
class Setup:
    """A fresh tenant with 2 companies x 2 campaigns, and what the query under test asks."""

    tenant: Tenant
    campaigns: list[Campaign]
    params: dict[str, Any]
    company_id: int | None
    campaign_id: str | None
    start_time: int
    end_time: int

    def matches(self, call: dict[str, Any]) -> bool:
        return (
            self.company_id in (None, call["company_id"])
            and self.campaign_id in (None, call["campaign_id"])
            and self.start_time <= call["start_time"] <= self.end_time
        )


def _set_up(world: World, scenario: Scenario) -> Setup:
    tenant, spread, campaigns = world.spread_tenant("Paging Agency")
    companies = [company.id for company in spread]
    params: dict[str, Any] = {"page_size": scenario.page_size}
    company_id = campaign_id = None
    if scenario.company is not None:
        company_id = params["company_id"] = companies[scenario.company]
    if scenario.campaign is not None:
        campaign_id = params["campaign_id"] = campaigns[scenario.campaign].id
    if scenario.start_time is not None:
        params["start_time"] = scenario.start_time
    if scenario.end_time is not None:
        params["end_time"] = scenario.end_time
    setup = Setup(
        tenant=tenant,
        campaigns=campaigns,
        params=params,
        company_id=company_id,
        campaign_id=campaign_id,
        start_time=scenario.start_time or 0,
        end_time=NOW_MS if scenario.end_time is None else scenario.end_time,
    )
    _write(world, setup, scenario.calls)
    return setup


def _write(world: World, setup: Setup, calls: list[tuple[int, int]]) -> None:
    """Insert calls in the given order (ids follow it), one transaction per run of a campaign."""
    for campaign, run in groupby(calls, key=lambda call: call[1]):
        world.calls(setup.tenant, [t for t, _ in run], campaign=setup.campaigns[campaign])


def _stored(database: Database, tenant: Tenant) -> dict[int, dict[str, Any]]:
    """The ground truth, straight from the database: every call of the tenant by id."""
    with database.transaction() as tx:
        rows = tx.fetchall(
            "SELECT id, start_time, company_id, campaign_id FROM calls WHERE account_id = ?",
            [tenant.account_id],
        )
    return {
        int(r[0]): {"id": int(r[0]), "start_time": r[1], "company_id": r[2], "campaign_id": r[3]}
        for r in rows
    }


def _key(call: dict[str, Any]) -> Key:
    return (call["start_time"], call["id"])


def _insert_time(insert: Insert, moments: list[int]) -> int:
    if insert.kind == "newer":
        return moments[-1] + 1 + insert.offset
    if insert.kind == "used":
        return moments[insert.offset % len(moments)]
    return max(0, moments[0] - 1 - insert.offset)


def _page(api: TestClient, tenant: Tenant, path: str, params: Any = None) -> dict[str, Any]:
    response = api.get(path, params=params, auth=tenant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_next_keeps_the_query(link: str, setup: Setup, effective_size: int) -> None:
    """Same filters, start and (truncated) page size; the end may only move earlier."""
    assert link.startswith(f"{PUBLIC_URL}/calls?"), link
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query, strict_parsing=True).items()}
    assert query.get("page_size") == str(effective_size), link
    assert query.get("start_time", "0") == str(setup.start_time), link
    assert int(query.get("end_time", NOW_MS)) <= setup.end_time, link
    for name in ("company_id", "campaign_id"):
        value = getattr(setup, name)
        assert query.get(name) == (None if value is None else str(value)), link


def _page_the_seeds_way(api: TestClient, setup: Setup, page_size: int) -> list[dict[str, Any]]:
    """A client of the seed's scheme: ignore `next`, ask again with end_time = last - 1."""
    params, received = dict(setup.params), []
    while True:
        calls = _page(api, setup.tenant, "/calls", params)["calls"]
        received += calls
        if len(calls) < page_size or calls[-1]["start_time"] - 1 < setup.start_time:
            return received
        params["end_time"] = calls[-1]["start_time"] - 1


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_following_next_returns_each_matching_call_exactly_once_while_calls_arrive(
    roomy_api: TestClient, database: Database, world: World, scenario: Scenario
) -> None:
    """Pages add up to the calls that matched at the start, once each, newest first."""
    setup = _set_up(world, scenario)
    tenant, size = setup.tenant, min(scenario.page_size, MAX_PAGE_SIZE)
    before = _stored(database, tenant)
    truth = sorted((c for c in before.values() if setup.matches(c)), key=_key, reverse=True)

    seeds_way = _page_the_seeds_way(roomy_api, setup, scenario.page_size)
    assert [_key(c) for c in seeds_way] == sorted({_key(c) for c in seeds_way}, reverse=True)
    assert {c["id"] for c in seeds_way} <= {c["id"] for c in truth}

    body = _page(roomy_api, tenant, "/calls", setup.params)
    received, pages = list(body["calls"]), 1
    while "next" in body:
        assert len(body["calls"]) == size  # a page short of full is the last one
        _assert_next_keeps_the_query(body["next"], setup, size)
        if pages <= len(scenario.inserts):
            batch = scenario.inserts[pages - 1]
            _write(world, setup, [(_insert_time(i, scenario.moments), i.campaign) for i in batch])
        body = _page(roomy_api, tenant, body["next"].removeprefix(PUBLIC_URL))
        assert body["calls"], "`next` promised more calls"
        received += body["calls"]
        pages += 1
        assert pages <= len(truth) + sum(map(len, scenario.inserts)) + 1, "paging never ends"
    assert len(body["calls"]) <= size

    keys = [_key(c) for c in received]
    assert keys == sorted(set(keys), reverse=True), "newest first, no call twice"
    assert all(setup.matches(c) for c in received)
    assert [c["id"] for c in received if c["id"] in before] == [c["id"] for c in truth]
    after = _stored(database, tenant)
    assert {c["id"] for c in received} <= after.keys()
    event(f"pages: {_bucket(pages)}")
    event(f"matching calls: {_bucket(len(truth))}")
    event(f"new calls received: {_bucket(len(received) - len(truth))}")


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1" if n == 1 else "2-9" if n < 10 else "10+"
